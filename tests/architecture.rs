//! The module import graph of every crate in the workspace has no circles: a module that uses
//! another's items is never used back by it, through any chain. Read from the source the way a
//! newcomer reads it (`use` statements and `crate::`/`super::` paths, re-exports followed to
//! where the item is defined; test modules aside), so that a circle fails here, naming its files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// A crate's module files by module path, from its root file.
fn modules(root: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let dir = root.parent().unwrap();
    for entry in walk(dir) {
        let rel = entry.strip_prefix(dir).unwrap();
        let mut parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let file = parts.pop().unwrap();
        let stem = file.trim_end_matches(".rs");
        if rel == root.strip_prefix(dir).unwrap() {
            out.insert(vec![], entry);
            continue;
        }
        if matches!(stem, "lib" | "main") && parts.is_empty() {
            continue; // another target's root
        }
        if stem != "mod" {
            parts.push(stem.to_string());
        }
        out.insert(parts, entry);
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The code of a file without comments and without its test modules.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::{b, c::{d, e as f}}` → `a::b`, `a::c::d`, `a::c::e` (aliases dropped, `self` kept as the
/// prefix).
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap().trim();
        return vec![path.trim_end_matches("::self").to_string()];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|i| !i.trim().is_empty())
        .flat_map(expand)
        .map(|p| match p.as_str() {
            "self" => prefix.to_string(),
            _ => format!("{prefix}::{p}"),
        })
        .collect()
}

/// The `use` paths of a file, and whether each is a re-export (`pub use`).
fn uses(code: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim_start();
        let public = trimmed.starts_with("pub");
        // `use`, `pub use`, `pub(crate) use`
        let body = match trimmed.strip_prefix("pub") {
            Some(r) if r.starts_with('(') => r.split_once(')').map_or(r, |(_, t)| t).trim_start(),
            Some(r) => r.trim_start(),
            None => trimmed,
        };
        if !body.starts_with("use ") {
            continue;
        }
        let from = start + line.len() - body.len() + 4;
        let statement = code[from..].split(';').next().unwrap_or("");
        out.extend(expand(statement).into_iter().map(|p| (p, public)));
    }
    // paths written in place, outside the `use` statements read above: `crate::a::b::f(...)`
    let code: String = {
        let mut kept = String::new();
        let mut rest = code;
        while let Some(i) = rest.find("use ") {
            let starts_line = rest[..i].rsplit('\n').next().is_some_and(|l| {
                let l = l.trim();
                l.is_empty() || l.starts_with("pub")
            });
            let end = rest[i..].find(';').map_or(rest.len(), |e| i + e);
            kept.push_str(&rest[..i]);
            if !starts_line {
                kept.push_str(&rest[i..end]);
            }
            rest = &rest[end..];
        }
        kept + rest
    };
    let code = code.as_str();
    for prefix in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            out.push((tail[..end].trim_end_matches(':').to_string(), false));
            rest = &rest[i + prefix.len()..];
        }
    }
    out
}

struct Crate {
    files: BTreeMap<Module, PathBuf>,
    /// Per module: re-exported name → the full path it names.
    exports: BTreeMap<Module, BTreeMap<String, Module>>,
}

impl Crate {
    fn read(root: &Path) -> Self {
        let files = modules(root);
        let mut exports = BTreeMap::new();
        for (module, path) in &files {
            let mut names = BTreeMap::new();
            for (p, public) in uses(&code(path)) {
                if public && let Some(full) = absolute(module, &p, &files) {
                    names.insert(full.last().cloned().unwrap_or_default(), full);
                }
            }
            exports.insert(module.clone(), names);
        }
        Self { files, exports }
    }

    /// The module file an absolute path's item is defined in (re-exports followed).
    fn owner(&self, path: &[String], depth: usize) -> Option<Module> {
        let mut module: Module = vec![];
        for (i, segment) in path.iter().enumerate() {
            let mut next = module.clone();
            next.push(segment.clone());
            if self.files.contains_key(&next) {
                module = next;
                continue;
            }
            // an item of `module`, or one it re-exports
            return match self.exports.get(&module).and_then(|e| e.get(segment)) {
                Some(full) if depth < 8 && full.as_slice() != &path[..=i] => {
                    self.owner(full, depth + 1)
                }
                _ => Some(module),
            };
        }
        Some(module)
    }
}

/// A `crate::`, `super::` or `self::` path as a path from the crate root; other paths (other
/// crates, std) are `None`.
fn absolute(module: &Module, path: &str, files: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    let mut parts = path.split("::").map(str::to_string);
    let mut base = match parts.next()?.as_str() {
        "crate" => vec![],
        "self" => module.clone(),
        "super" => {
            let mut m = module.clone();
            m.pop()?;
            m
        }
        // a child module named from its parent (`use b::Thing;` in lib.rs)
        first if files.contains_key(&[module.clone(), vec![first.to_string()]].concat()) => {
            [module.clone(), vec![first.to_string()]].concat()
        }
        _ => return None,
    };
    for p in parts {
        match p.as_str() {
            "super" => {
                base.pop()?;
            }
            "*" => {}
            _ => base.push(p),
        }
    }
    Some(base)
}

/// Strongly connected components of more than one module (Tarjan).
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Module) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// Each module's edges to the modules whose items it uses.
fn graph(root: &Path) -> (Crate, BTreeMap<Module, BTreeSet<Module>>) {
    let krate = Crate::read(root);
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, path) in &krate.files {
        let targets = edges.entry(module.clone()).or_default();
        for (p, public) in uses(&code(path)) {
            // a facade's re-export (lib.rs, mod.rs) names, it does not use; a leaf file's
            // re-export keeps an old path and is used in the file itself
            let facade = path
                .file_name()
                .is_some_and(|n| n == "lib.rs" || n == "main.rs" || n == "mod.rs");
            if public && facade {
                continue;
            }
            let Some(full) = absolute(module, &p, &krate.files) else {
                continue;
            };
            if let Some(owner) = krate.owner(&full, 0)
                && owner != *module
                && !owner.is_empty()
            {
                targets.insert(owner);
            }
        }
    }
    (krate, edges)
}

fn roots() -> Vec<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        "src/lib.rs",
        "cpu/src/lib.rs",
        "training/src/main.rs",
        "training/cohort/src/lib.rs",
    ]
    .iter()
    .map(|r| here.join(r))
    .chain(std::iter::once(here.join("training/src/lib.rs")).filter(|p| p.exists()))
    .collect()
}

#[test]
fn no_module_imports_itself_through_others() {
    let mut found = Vec::new();
    for root in roots() {
        let (krate, edges) = graph(&root);
        for circle in circles(&edges) {
            let files: Vec<String> = circle
                .iter()
                .map(|m| krate.files[m].display().to_string())
                .collect();
            found.push(files.join(" ↔ "));
        }
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

/// The reader finds what it is meant to: the known edges of this crate, and a circle made on
/// purpose in a scratch crate.
#[test]
fn the_graph_sees_uses_re_exports_and_circles() {
    let (_, edges) = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"));
    let m = |s: &str| s.split("::").map(str::to_string).collect::<Module>();
    assert!(edges[&m("model::t5::attention")].contains(&m("kernels")));
    // `crate::PatientRecord` is re-exported by the root: the edge goes to where it is defined
    assert!(edges[&m("engine::diagnose")].contains(&m("record")));
    let dir = std::env::temp_dir().join(format!("bedside-architecture-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod a;\nmod b;\npub use b::Thing;\n").unwrap();
    std::fs::write(dir.join("a/mod.rs"), "pub mod c;\nuse crate::Thing;\n").unwrap();
    std::fs::write(dir.join("a/c.rs"), "pub struct C;\n").unwrap();
    std::fs::write(
        dir.join("b.rs"),
        "use super::a::{c::C, self};\npub struct Thing;\n",
    )
    .unwrap();
    let (_, edges) = graph(&dir.join("lib.rs"));
    let found = circles(&edges);
    assert_eq!(found.len(), 1, "{found:?} in {edges:?}");
    std::fs::remove_dir_all(&dir).ok();
}
