//! What every pipeline shares: where training runs (backend), the training kit (fit), the files
//! read and written (io), L2 logistic regression (logistic), the one patient split (split) and
//! the seeded synthetic cohort (synthetic).

pub mod backend;
pub mod fit;
pub mod io;
pub mod logistic;
pub mod split;
pub mod synthetic;
