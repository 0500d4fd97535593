//! A distillation run: its directory and its configuration, the paths in it resolved against the
//! run.toml's directory. The stages ([`super`]), the data, the checkpoints and the report each
//! add what they do to it.

use super::config::RunConfig;
use anyhow::Result;
use std::path::{Path, PathBuf};

pub struct Run {
    pub dir: PathBuf,
    pub config: RunConfig,
    /// The directory of the run.toml, which relative paths in it are relative to.
    pub(super) base: PathBuf,
}

impl Run {
    pub fn new(config_path: Option<&Path>, dir: PathBuf) -> Result<Self> {
        let config = match config_path {
            Some(path) => RunConfig::read(path)?,
            None => RunConfig::default(),
        };
        let base = config_path
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let base = std::path::absolute(&base).unwrap_or(base);
        Ok(Self { dir, config, base })
    }

    /// Starts the language model from the checkpoint in `dir` (`--init-from`, relative to the
    /// working directory), in place of the config's `init_from`.
    pub fn init_from(&mut self, dir: &Path) -> Result<()> {
        self.config.init_from = Some(std::path::absolute(dir)?);
        self.config.check()
    }

    /// A path of the configuration, resolved against the run.toml's directory.
    pub fn resolve(&self, path: &Option<PathBuf>) -> Option<PathBuf> {
        path.as_ref().map(|p| self.base.join(p))
    }
}
