//! No numeric check in the repository folds a NaN away. `f32::max(0.0, NaN)` is `0.0`, Python's
//! `max(0.0, nan)` is `0.0`, and a JavaScript `null` reads as 0: a largest difference accumulated
//! that way lets a backend that returned NaN pass. Every such check goes through one helper instead
//! (`bedside::compare::max_abs_diff` in Rust, `maxAbsDiff` in `tests/node/helpers.mjs`). This test
//! scans the sources for the common one-line folding shapes (a fold split over lines, or
//! `if d > worst { worst = d }`, escapes it: review still has to catch those); a line that folds
//! on purpose (a softmax's running maximum, a chart's axis) says why with `nan-ok:` on it.

use std::path::{Path, PathBuf};

/// The folding shapes on one line, or `None`.
fn folds_nan_away(line: &str) -> Option<&'static str> {
    let code = line.split("//").next().unwrap_or(line);
    if line.contains("nan-ok:") {
        return None;
    }
    for f in [
        "f32::max)",
        "f64::max)",
        "f32::min)",
        "f64::min)",
        "f32::max(",
        "f64::max(",
        "f32::min(",
        "f64::min(",
    ] {
        if code.contains(f) {
            return Some("f32/f64 max or min drops NaN");
        }
    }
    // `.fold(0.0, |m, d| m.max(d))`
    if code.contains("fold(") && (code.contains(".max(") || code.contains(".min(")) {
        return Some("a fold through max or min drops NaN");
    }
    // `worst = worst.max(d)`, `worst = max(worst, d)`, `worst = Math.max(worst, d)`
    let (lhs, rhs) = code.split_once(" = ")?;
    let name = lhs
        .trim()
        .trim_start_matches("let ")
        .trim_start_matches("mut ");
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let rhs = rhs.trim();
    for shape in [
        format!("{name}.max("),
        format!("{name}.min("),
        format!("max({name},"),
        format!("min({name},"),
        format!("Math.max({name},"),
        format!("Math.min({name},"),
    ] {
        // an integer bound (`bins = bins.max(1)`) cannot be NaN
        if let Some(arg) = rhs.strip_prefix(shape.as_str())
            && !arg.trim_start().starts_with(|c: char| c.is_ascii_digit())
        {
            return Some("a running max/min drops NaN (or reads null as 0)");
        }
    }
    None
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !["node_modules", "target", "fixtures", ".next", "dist", "pkg"]
                .contains(&name.as_str())
            {
                sources(&path, out);
            }
        } else if [".rs", ".py", ".mjs", ".js"]
            .iter()
            .any(|e| name.ends_with(e))
            && !name.ends_with(".min.js")
        {
            out.push(path);
        }
    }
}

#[test]
fn no_numeric_check_folds_nan_away() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        "src",
        "cpu",
        "tests",
        "training",
        "bench",
        "pkg-config",
        "www",
        "tools",
        "fuzz",
    ] {
        sources(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "only {} source files found", files.len());
    let mut found = Vec::new();
    for file in &files {
        if file.ends_with("tests/numeric_checks.rs") {
            continue; // its own examples
        }
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            if let Some(why) = folds_nan_away(line) {
                let file = file.strip_prefix(root).unwrap_or(file).display();
                found.push(format!("{file}:{}: {why}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "use bedside::compare::max_abs_diff (Rust) or maxAbsDiff (tests/node/helpers.mjs):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_each_shape() {
    for line in [
        "    .fold(0.0, f32::max);",
        "let top = xs.iter().copied().fold(0f64, f64::max);",
        "            worst = worst.max((a - b).abs());",
        "        worst = max(worst, float(abs(a - b).max()))",
        "    worst = Math.max(worst, Math.abs(a - b));",
        "    let worst = f64::max(worst, d);",
        "    .fold(0.0, |m, d| m.max(d))",
    ] {
        assert!(folds_nan_away(line).is_some(), "{line}");
    }
    for line in [
        "    let bins = bins.max(1);",
        "let d = (a - b).abs();",
        "    .fold(f32::NEG_INFINITY, f32::max); // nan-ok: non-finite logits are dropped next",
        "let worst = bedside::compare::max_abs_diff(&a, &b);",
    ] {
        assert!(folds_nan_away(line).is_none(), "{line}");
    }
}
