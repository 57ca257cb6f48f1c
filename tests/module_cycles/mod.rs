//! No circles between modules: for each crate of the workspace, reads every source file, builds
//! the graph "module A names module B" and fails when modules name each other in a circle
//! (directly or through others). Runs with the other tests (`cargo nextest run --workspace`).
//!
//! What counts as a module: a file. `idp/src/saml/sso.rs` is `saml::sso`, `idp/src/saml/mod.rs`
//! (or `saml.rs`) is `saml`; modules written inline in a file belong to that file. An arrow runs
//! from a file to the deepest file module a path of it names: `use` trees (`crate::`, `super::`,
//! `self::` and paths relative to the module, such as a child's name), paths in code that start
//! with one of those, and paths through a name a `use` brought in for a module. Comments, string
//! literals and `#[cfg(test)]` modules are left out: unit tests may reach anywhere.
//!
//! The crate root (`lib.rs`, `main.rs`) declares and mounts every module, so it is left out of
//! the graph: it sits above every module, even when they use what it defines (`IdpState`).
//!
//! A folder is allowed one circle of its own: its module (`mod.rs`) mounts its files and keeps
//! what they share (`super::`). So a circle whose modules all lie in one of its members' folder
//! (`saml`, `saml::sso`, `saml::slo`) is reported only when its files still form a circle without
//! their arrows to the folder module (`saml::slo` → `saml::sso` → `saml::slo`). A circle that
//! leaves the folder (`saml::slo` → `saml` → `session::logout` → `saml::slo`) is always reported.
//!
//! This is a reading of the text, not of the compiler's name resolution; it errs towards seeing
//! an arrow (a glob import of a module counts as naming it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod graph;
mod reader;

use graph::*;
use reader::*;

/// The crates checked, as folders of the workspace holding a `src/`.
const CRATES: &[&str] = &[
    "schema",
    "metadata",
    "federation",
    "idp",
    "connectors",
    "services",
    ".",
];

/// Circles known and not yet cut: (crate, the modules of the circle). A circle listed here does
/// not fail the check; every other one does. Keep it empty.
const PENDING: &[(&str, &[&str])] = &[];

#[test]
pub(super) fn module_cycles_none_between_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf();
    let mut failures = Vec::new();
    let mut seen_pending = BTreeSet::new();
    for krate in CRATES {
        let graph = crate_graph(&root, &root.join(krate).join("src"));
        assert!(!graph.is_empty(), "no modules found in {krate}/src");
        for circle in reported_circles(&graph) {
            let names: Vec<&str> = circle.iter().map(String::as_str).collect();
            let pending = PENDING.iter().position(|(k, members)| {
                k == krate && {
                    let mut m: Vec<&str> = members.to_vec();
                    m.sort_unstable();
                    m == names
                }
            });
            if let Some(i) = pending {
                seen_pending.insert(i);
                continue;
            }
            let within = without_folder_arrows(&graph);
            let example = circle
                .iter()
                .find_map(|start| example_path(&within, &circle, start))
                .or_else(|| example_path(&graph, &circle, &circle[0]))
                .unwrap_or_default();
            failures.push(format!(
                "{krate}: {}\n    for example {example}",
                names.join(", ")
            ));
        }
    }
    for (i, (krate, members)) in PENDING.iter().enumerate() {
        if !seen_pending.contains(&i) {
            eprintln!(
                "module_cycles: PENDING entry {krate} {members:?} is no longer a circle; remove it"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "modules that name each other in a circle (cut one arrow: move what both need to a \
         lower module, or let the lower one define a trait the higher one implements):\n  {}",
        failures.join("\n  ")
    );
}

/// A graph: module → modules it names, with one place each arrow comes from.
pub(super) type Graph = BTreeMap<String, BTreeMap<String, String>>;

pub(super) fn crate_graph(root: &Path, src: &Path) -> Graph {
    let mut files = Vec::new();
    walk(src, &mut files);
    let modules: BTreeMap<String, PathBuf> = files
        .iter()
        .filter_map(|f| module_of(src, f).map(|m| (m, f.clone())))
        .collect();
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    let mut graph = Graph::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("a readable source file");
        let arrows = graph.entry(module.clone()).or_default();
        if module.is_empty() {
            continue; // the crate root
        }
        for (path, line) in named_paths(&strip(&text), module, &known) {
            if let Some(target) = deepest_module(&path, &known) {
                if target != *module {
                    arrows.entry(target).or_insert_with(|| {
                        let shown = file.strip_prefix(root).unwrap_or(file);
                        format!("{}:{line}", shown.display())
                    });
                }
            }
        }
    }
    graph
}

pub(super) fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("a readable folder")
        .map(|e| e.expect("a folder entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            // `src/bin/` holds crates of their own.
            if path.file_name().is_some_and(|n| n != "bin") || path.parent() != Some(dir) {
                walk(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `saml/sso.rs` → `saml::sso`; `saml/mod.rs` → `saml`; `lib.rs` → `` (the root).
pub(super) fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    match stem {
        "mod" => {}
        "lib" | "main" if parts.is_empty() => {}
        _ => parts.push(stem.to_owned()),
    }
    Some(parts.join("::"))
}

/// The longest prefix of `path` that is a file module other than the root.
pub(super) fn deepest_module(path: &[String], known: &BTreeSet<String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| known.contains(m))
}

/// Blanks out comments, string and character literals (keeping line breaks).

#[test]
fn module_cycles_reader_sees_arrows() {
    let known: BTreeSet<String> = ["", "a", "a::b", "a::c", "d"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let text = strip(
        "use super::{c::{self, X}, b as bee};\n// crate::d\nfn f() { let s = \"crate::d\"; d_x(); crate::d::g(); c::h(); }\n#[cfg(test)]\nmod tests { use crate::d; }\n",
    );
    let named: BTreeSet<String> = named_paths(&text, "a::b", &known)
        .into_iter()
        .filter_map(|(p, _)| deepest_module(&p, &known))
        .collect();
    assert_eq!(
        named,
        ["a::b", "a::c", "d"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}

#[test]
fn module_cycles_folder_keeps_its_own_circle_only() {
    let graph = |arrows: &[(&str, &str)]| -> Graph {
        let mut g = Graph::new();
        for (from, to) in arrows {
            g.entry(from.to_string())
                .or_default()
                .insert(to.to_string(), String::new());
            g.entry(to.to_string()).or_default();
        }
        g
    };
    // mod.rs mounts its files, they use what it keeps: allowed.
    let folder = graph(&[("saml", "saml::sso"), ("saml::sso", "saml")]);
    assert!(reported_circles(&folder).is_empty());
    // Its files naming each other: reported.
    let siblings = graph(&[
        ("saml", "saml::sso"),
        ("saml::sso", "saml::slo"),
        ("saml::slo", "saml::sso"),
    ]);
    assert_eq!(
        reported_circles(&siblings),
        vec![vec!["saml::slo", "saml::sso"]]
    );
    // A circle through a module outside the folder: reported whole.
    let leaving = graph(&[
        ("saml::slo", "saml"),
        ("saml", "session::logout"),
        ("session::logout", "saml::slo"),
    ]);
    assert_eq!(
        reported_circles(&leaving),
        vec![vec!["saml", "saml::slo", "session::logout"]]
    );
}
