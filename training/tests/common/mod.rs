//! What the integration tests of `bedside-train` share: the binary, and a scratch directory.

use std::path::PathBuf;
use std::process::Command;

/// `bedside-train`, with a runtime directory wgpu can use.
pub fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bedside-train"));
    command.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    command
}

/// An empty directory of this test process.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bedside-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
