//! What a test does when a layer it needs is not on this machine — the real data in
//! `../shared/data`, a wgpu adapter, root for the tmpfs, the language-model server. In a user's
//! plain clone the test passes without it, says so, and appends the layer and the reason to the
//! file `BEDSIDE_SKIPPED` names, which `make test` prints at its end. Under CI (`CI=true`), or with
//! `BEDSIDE_REQUIRE_<LAYER>=1`, a missing layer fails the test instead. One rule for every test in
//! the workspace; the Node and browser tests follow it in `tests/node/helpers.mjs`.
//!
//! Test support, not part of the model's API; native only.

use std::io::Write;
use std::path::PathBuf;

/// Whether a missing `layer` (`"data"`, `"wgpu"`, `"root"`, `"llm"`) fails rather than skips.
pub fn required(layer: &str) -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    var("CI") == "true" || var(&format!("BEDSIDE_REQUIRE_{}", layer.to_uppercase())) == "1"
}

/// A test could not run the part that needs `layer`, because of `why`: panics where the layer is
/// required, else records the skip and returns, so the caller can `return`.
pub fn unavailable(layer: &str, why: &str) {
    assert!(
        !required(layer),
        "{layer} layer required here but missing: {why}"
    );
    eprintln!("skipped ({layer}): {why}");
    // the list at the end of `make test` keeps the first line of it
    let why: String = why.lines().next().unwrap_or("").chars().take(200).collect();
    if let Ok(path) = std::env::var("BEDSIDE_SKIPPED")
        && !path.is_empty()
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
    {
        // one line per skip in one write (tests run in parallel threads and processes, and an
        // append of a short line is atomic); `make test` sorts and counts them
        let _ = file.write_all(format!("{layer}: {why}\n").as_bytes());
    }
}

/// An engine (or anything) loaded on wgpu, or, where that failed for want of an adapter, the
/// wgpu layer [`unavailable`] and `None`.
pub fn on_wgpu<T>(loaded: crate::Result<T>) -> Option<T> {
    match loaded {
        Ok(engine) => Some(engine),
        Err(e) => {
            unavailable(
                "wgpu",
                &format!("no wgpu adapter ({e}); install mesa-vulkan-drivers for lavapipe"),
            );
            None
        }
    }
}

/// `../shared/data/<part>` beside the repository (or under `BEDSIDE_SHARED_DATA`) when it exists;
/// otherwise the data layer is [`unavailable`] and `None`.
pub fn shared_data(part: &str) -> Option<PathBuf> {
    let root = std::env::var_os("BEDSIDE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let path = root.join(part);
    if path.exists() {
        return Some(path);
    }
    unavailable(
        "data",
        &format!(
            "{} is absent (the real data beside the repository, as README.md's \"Cohorts\" says)",
            path.display()
        ),
    );
    None
}
