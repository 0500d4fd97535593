//! The one error type of the library. Every error has a stable machine-readable `code` (what the
//! JS API puts on its `Error` objects) and a message that names the field or file at fault.

use thiserror::Error;

/// A problem found in a record, with the JSON path of the field at fault.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldProblem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, Error)]
pub enum BedsideError {
    /// The record is not JSON, or not a PatientRecord.
    #[error("invalid record JSON at {path}: {message}")]
    RecordJson { path: String, message: String },
    /// The record parsed but breaks the schema's rules; every problem is listed.
    #[error("invalid record: {}", join(.0))]
    InvalidRecord(Vec<FieldProblem>),
    /// A FHIR resource that cannot be read as a patient record.
    #[error("invalid FHIR at {path}: {message}")]
    Fhir { path: String, message: String },
    /// A bundle file is missing, malformed or does not match its manifest.
    #[error("bundle {file}: {message}")]
    Bundle { file: String, message: String },
    /// A bundle file's bytes do not hash to the manifest's sha256.
    #[error("bundle {file}: sha256 {actual} does not match the manifest's {expected}")]
    HashMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    /// The bundle was made for another format version or knowledge base.
    #[error("bundle {file}: {message}")]
    Incompatible { file: String, message: String },
    /// The compute backend failed (device lost, readback failed, no adapter).
    #[error("backend {backend}: {message}")]
    Backend { backend: String, message: String },
    /// The caller stopped the call (an aborted signal, a stream it left) before it finished.
    #[error("{0} stopped by the caller")]
    Aborted(&'static str),
}

fn join(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl BedsideError {
    /// Stable code, part of the public API: never rename one.
    pub fn code(&self) -> &'static str {
        match self {
            Self::RecordJson { .. } => "RECORD_JSON",
            Self::InvalidRecord(_) => "RECORD_INVALID",
            Self::Fhir { .. } => "RECORD_FHIR",
            Self::Bundle { .. } => "BUNDLE_INVALID",
            Self::HashMismatch { .. } => "BUNDLE_HASH_MISMATCH",
            Self::Incompatible { .. } => "BUNDLE_INCOMPATIBLE",
            Self::Backend { .. } => "BACKEND_FAILED",
            Self::Aborted(_) => "ABORTED",
        }
    }

    pub(crate) fn bundle(file: &str, message: impl std::fmt::Display) -> Self {
        Self::Bundle {
            file: file.to_string(),
            message: message.to_string(),
        }
    }

    pub(crate) fn backend(backend: &str, message: impl std::fmt::Display) -> Self {
        Self::Backend {
            backend: backend.to_string(),
            message: message.to_string(),
        }
    }
}

pub type Result<T, E = BedsideError> = std::result::Result<T, E>;
