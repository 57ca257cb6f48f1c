//! Reading a source file: comments, strings and test modules blanked out, then the module paths
//! its `use` trees and code name.

use super::*;

pub(super) fn strip(text: &str) -> String {
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
pub(super) fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize)> {
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
pub(super) enum Tok {
    Ident(String),
    Colons,
    Punct(char),
}

pub(super) fn tokens(text: &str) -> Vec<(Tok, usize)> {
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

pub(super) fn ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

/// Every path the file names that may lead into the crate, made absolute (from the root), with
/// its line.
pub(super) fn named_paths(
    text: &str,
    module: &str,
    known: &BTreeSet<String>,
) -> Vec<(Vec<String>, usize)> {
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

pub(super) fn scope_of(here: &[String], inline: &[(String, usize)]) -> Vec<String> {
    here.iter()
        .cloned()
        .chain(inline.iter().map(|(n, _)| n.clone()))
        .collect()
}

/// `#[cfg(test)]` at `i`.
pub(super) fn is_cfg_test(toks: &[(Tok, usize)], i: usize) -> bool {
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
pub(super) fn skip_item(toks: &[(Tok, usize)], i: usize) -> usize {
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

pub(super) fn skip_to_semicolon(toks: &[(Tok, usize)], mut j: usize) -> usize {
    while j < toks.len() && toks[j].0 != Tok::Punct(';') {
        j += 1;
    }
    j + 1
}

/// Reads a use tree at `*j`: each leaf path with the name it brings in (none for `*`).
pub(super) fn use_tree(
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
pub(super) fn absolute(
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
