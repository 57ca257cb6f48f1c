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
fn module_cycles_none_between_modules() {
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
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn crate_graph(root: &Path, src: &Path) -> Graph {
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

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
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
fn module_of(src: &Path, file: &Path) -> Option<String> {
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
fn deepest_module(path: &[String], known: &BTreeSet<String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| known.contains(m))
}

/// Blanks out comments, string and character literals (keeping line breaks).
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if (c[i] == 'r' || c[i] == 'b')
            && !c
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
            && raw_string_start(&c, i).is_some()
        {
            let (hashes, body) = raw_string_start(&c, i).unwrap_or((0, i));
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            for _ in i..body {
                out.push(' ');
            }
            i = body;
            while i < c.len() && !c[i..].starts_with(&close) {
                blank(&mut out, c[i]);
                i += 1;
            }
            for _ in 0..close.len().min(c.len() - i) {
                out.push(' ');
            }
            i += close.len();
        } else if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c[i] == '\'' {
            // A character literal ('x', '\n', '\u{..}'), or a lifetime ('a) left as it is.
            let end = if next == Some('\\') {
                c[i + 2..]
                    .iter()
                    .position(|&x| x == '\'')
                    .map(|p| i + 2 + p)
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(e) => {
                    for _ in i..=e {
                        out.push(' ');
                    }
                    i = e + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// At `r"`, `r#"`, `br"`…: the number of `#` and where the body starts.
fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if c[j] == 'b' {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some((hashes, j + 1))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Colons,
    Punct(char),
}

fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let word = word.strip_prefix("r#").map(str::to_owned).unwrap_or(word);
            out.push((Tok::Ident(word), line));
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::Colons, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

fn ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

/// Every path the file names that may lead into the crate, made absolute (from the root), with
/// its line.
fn named_paths(text: &str, module: &str, known: &BTreeSet<String>) -> Vec<(Vec<String>, usize)> {
    let toks = tokens(text);
    let here: Vec<String> = module.split("::").map(str::to_owned).collect();
    // Names a `use` brought in for a module, per inline module scope (by brace depth).
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut out = Vec::new();
    let mut depth = 0usize;
    // Inline modules: (name, brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::Punct('#') if is_cfg_test(&toks, i) => {
                i = skip_item(&toks, i);
            }
            Tok::Ident(w) if w == "mod" => {
                if let (Some(name), Some((Tok::Punct('{'), _))) =
                    (ident(toks.get(i + 1)), toks.get(i + 2))
                {
                    inline.push((name.to_owned(), depth + 1));
                    depth += 1;
                    i += 3;
                } else {
                    i += 1;
                }
            }
            Tok::Ident(w) if w == "use" => {
                let line = toks[i].1;
                let mut trees = Vec::new();
                let mut j = i + 1;
                if toks.get(j).is_some_and(|t| t.0 == Tok::Colons) {
                    j += 1; // `use ::extern_crate`
                    i = skip_to_semicolon(&toks, j);
                    continue;
                }
                use_tree(&toks, &mut j, Vec::new(), &mut trees);
                let scope = scope_of(&here, &inline);
                for (path, alias) in trees {
                    if let Some(abs) = absolute(&path, &scope, known, &aliases, true) {
                        if let Some(name) = alias {
                            if known.contains(&abs.join("::")) {
                                aliases.insert(name, abs.clone());
                            }
                        }
                        out.push((abs, line));
                    }
                }
                i = skip_to_semicolon(&toks, j);
            }
            Tok::Ident(first)
                if !matches!(toks.get(i.wrapping_sub(1)), Some((Tok::Colons, _)))
                    && toks.get(i + 1).is_some_and(|t| t.0 == Tok::Colons) =>
            {
                let line = toks[i].1;
                let mut path = vec![first.clone()];
                let mut j = i + 1;
                while toks.get(j).is_some_and(|t| t.0 == Tok::Colons) {
                    match ident(toks.get(j + 1)) {
                        Some(s) => path.push(s.to_owned()),
                        None => break,
                    }
                    j += 2;
                }
                let scope = scope_of(&here, &inline);
                if let Some(abs) = absolute(&path, &scope, known, &aliases, false) {
                    out.push((abs, line));
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    out
}

fn scope_of(here: &[String], inline: &[(String, usize)]) -> Vec<String> {
    here.iter()
        .cloned()
        .chain(inline.iter().map(|(n, _)| n.clone()))
        .collect()
}

/// `#[cfg(test)]` at `i`.
fn is_cfg_test(toks: &[(Tok, usize)], i: usize) -> bool {
    let want = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    toks.len() >= i + want.len() && toks[i..i + want.len()].iter().map(|t| &t.0).eq(want.iter())
}

/// Past the item after an attribute at `i`: its `;` or its braces.
fn skip_item(toks: &[(Tok, usize)], i: usize) -> usize {
    let mut j = i;
    let mut depth = 0usize;
    // Past the attribute's brackets.
    while j < toks.len() {
        match toks[j].0 {
            Tok::Punct('[') => depth += 1,
            Tok::Punct(']') => {
                depth -= 1;
                if depth == 0 {
                    j += 1;
                    break;
                }
            }
            _ => {}
        }
        j += 1;
    }
    while j < toks.len() {
        match toks[j].0 {
            Tok::Punct(';') if depth == 0 => return j + 1,
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    j
}

fn skip_to_semicolon(toks: &[(Tok, usize)], mut j: usize) -> usize {
    while j < toks.len() && toks[j].0 != Tok::Punct(';') {
        j += 1;
    }
    j + 1
}

/// Reads a use tree at `*j`: each leaf path with the name it brings in (none for `*`).
fn use_tree(
    toks: &[(Tok, usize)],
    j: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut path = prefix;
    loop {
        match toks.get(*j).map(|t| &t.0) {
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                *j += 1;
                if toks.get(*j).is_some_and(|t| t.0 == Tok::Colons) {
                    *j += 1;
                    continue;
                }
                let mut name = path.last().cloned();
                if name.as_deref() == Some("self") {
                    path.pop();
                    name = path.last().cloned();
                }
                if ident(toks.get(*j)) == Some("as") {
                    name = ident(toks.get(*j + 1)).map(str::to_owned);
                    *j += 2;
                }
                out.push((path, name));
                return;
            }
            Some(Tok::Punct('*')) => {
                *j += 1;
                out.push((path, None));
                return;
            }
            Some(Tok::Punct('{')) => {
                *j += 1;
                loop {
                    match toks.get(*j).map(|t| &t.0) {
                        Some(Tok::Punct('}')) => {
                            *j += 1;
                            return;
                        }
                        Some(Tok::Punct(',')) => *j += 1,
                        None | Some(Tok::Punct(';')) => return,
                        Some(_) => use_tree(toks, j, path.clone(), out),
                    }
                }
            }
            _ => return,
        }
    }
}

/// Makes `path`, named in module `scope`, absolute; `None` when it leads out of the crate.
fn absolute(
    path: &[String],
    scope: &[String],
    known: &BTreeSet<String>,
    aliases: &BTreeMap<String, Vec<String>>,
    in_use: bool,
) -> Option<Vec<String>> {
    let mut rest = path;
    let mut base: Vec<String> = match path.first()?.as_str() {
        "crate" => {
            rest = &path[1..];
            Vec::new()
        }
        "self" => {
            rest = &path[1..];
            scope.to_vec()
        }
        "super" => {
            let mut b = scope.to_vec();
            while rest.first().is_some_and(|s| s == "super") {
                b.pop();
                rest = &rest[1..];
            }
            b
        }
        first => {
            if let Some(target) = aliases.get(first) {
                rest = &path[1..];
                target.clone()
            } else {
                // A child module of the file named without `self::`.
                let mut child = scope.to_vec();
                child.push(first.to_owned());
                if !known.contains(&child.join("::")) || (!in_use && path.len() < 2) {
                    return None;
                }
                scope.to_vec()
            }
        }
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

fn under(module: &str, folder: &str) -> bool {
    module.starts_with(&format!("{folder}::"))
}

/// The graph without the arrows from files to their folder modules.
fn without_folder_arrows(full: &Graph) -> Graph {
    let mut within = full.clone();
    for (module, arrows) in within.iter_mut() {
        arrows.retain(|target, _| !under(module, target));
    }
    within
}

/// The circles to report: each strongly connected component that leaves a folder, and within a
/// folder the components that remain without the arrows from files to their folder modules.
fn reported_circles(full: &Graph) -> Vec<Vec<String>> {
    let inner = circles(&without_folder_arrows(full));
    let mut out = Vec::new();
    for comp in circles(full) {
        let one_folder = comp
            .iter()
            .any(|root| comp.iter().all(|m| m == root || under(m, root)));
        if one_folder {
            out.extend(
                inner
                    .iter()
                    .filter(|c| c.iter().all(|m| comp.contains(m)))
                    .cloned(),
            );
        } else {
            out.push(comp);
        }
    }
    out.sort();
    out
}

/// The strongly connected components with more than one module, each sorted.
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    // Tarjan's algorithm, iteratively small enough to be recursive here.
    struct T<'g> {
        g: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on: BTreeSet<&'g str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(t: &mut T<'g>, v: &'g str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        let g = t.g;
        for w in g.get(v).into_iter().flat_map(|a| a.keys()) {
            let w = w.as_str();
            if !g.contains_key(w) {
                continue;
            }
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(lw));
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(iw));
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out.sort();
    t.out
}

/// One circle through `start` in the component, each arrow with where it comes from.
fn example_path(graph: &Graph, comp: &[String], start: &str) -> Option<String> {
    let inside: BTreeSet<&str> = comp.iter().map(String::as_str).collect();
    // Shortest way back to `start`, breadth first.
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut end = None;
    while let Some(v) = queue.pop_front() {
        for w in graph[v].keys().map(String::as_str) {
            if !inside.contains(w) {
                continue;
            }
            if w == start {
                end = Some(v);
                break;
            }
            if !prev.contains_key(w) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
        if end.is_some() {
            break;
        }
    }
    let mut back = Vec::new();
    let mut v = end?;
    while v != start {
        back.push(v);
        v = prev[v];
    }
    let chain: Vec<&str> = std::iter::once(start)
        .chain(back.into_iter().rev())
        .chain(std::iter::once(start))
        .collect();
    Some(
        chain
            .windows(2)
            .map(|w| format!("{} → {} ({})", w[0], w[1], graph[w[0]][w[1]]))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

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
