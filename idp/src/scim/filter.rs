//! SCIM filters (RFC 7644 §3.4.2.2) over a resource's JSON representation: `attrPath op value`
//! with `eq ne co sw ew gt ge lt le pr`, `and`, `or`, `not (…)` and parentheses. Attribute names
//! are case-insensitive, and so are string comparisons except of the identifiers `id` and
//! `externalId` (every other string attribute we serve has `caseExact: false`). Value filters inside brackets (`emails[type eq "work"]`) are used by PATCH
//! paths ([`PathSpec`]), not by list filters.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare(String, Op, Value),
    Present(String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// Why a filter was refused (answered as `400 invalidFilter`).
#[derive(Debug, PartialEq, Eq)]
pub struct FilterError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Open,
    Close,
}

fn lex(s: &str) -> Result<Vec<Tok>, FilterError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::Open);
            }
            ')' => {
                chars.next();
                out.push(Tok::Close);
            }
            '"' => {
                // A JSON string: read to the closing quote, honouring escapes.
                let mut raw = String::from('"');
                chars.next();
                let mut escaped = false;
                loop {
                    let Some(c) = chars.next() else {
                        return Err(FilterError("unterminated string".into()));
                    };
                    raw.push(c);
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                let v: String = serde_json::from_str(&raw)
                    .map_err(|_| FilterError("bad string escape".into()))?;
                out.push(Tok::Str(v));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek_word(&self) -> Option<String> {
        match self.toks.get(self.at) {
            Some(Tok::Word(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.and()?;
        while self.peek_word().as_deref() == Some("or") {
            self.at += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.term()?;
        while self.peek_word().as_deref() == Some("and") {
            self.at += 1;
            let right = self.term()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Filter, FilterError> {
        self.depth += 1;
        if self.depth > 32 {
            return Err(FilterError("the filter is nested too deeply".into()));
        }
        let r = self.term_inner();
        self.depth -= 1;
        r
    }

    fn term_inner(&mut self) -> Result<Filter, FilterError> {
        if self.peek_word().as_deref() == Some("not") {
            self.at += 1;
            if self.toks.get(self.at) != Some(&Tok::Open) {
                return Err(FilterError("not must be followed by (".into()));
            }
            return Ok(Filter::Not(Box::new(self.group()?)));
        }
        if self.toks.get(self.at) == Some(&Tok::Open) {
            return self.group();
        }
        let Some(Tok::Word(attr)) = self.toks.get(self.at).cloned() else {
            return Err(FilterError("expected an attribute name".into()));
        };
        if attr.contains('[') {
            return Err(FilterError(
                "complex attribute filters are not supported in list filters".into(),
            ));
        }
        self.at += 1;
        let op = self
            .peek_word()
            .ok_or_else(|| FilterError(format!("expected an operator after {attr}")))?;
        self.at += 1;
        let op = match op.as_str() {
            "pr" => return Ok(Filter::Present(attr)),
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            other => return Err(FilterError(format!("unknown operator {other:?}"))),
        };
        let value = match self.toks.get(self.at).cloned() {
            Some(Tok::Str(s)) => Value::String(s),
            Some(Tok::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => serde_json::from_str::<serde_json::Number>(&w)
                    .map(Value::Number)
                    .map_err(|_| FilterError(format!("bad value {w:?}")))?,
            },
            _ => return Err(FilterError(format!("expected a value after {attr}"))),
        };
        self.at += 1;
        Ok(Filter::Compare(attr, op, value))
    }

    fn group(&mut self) -> Result<Filter, FilterError> {
        self.at += 1; // (
        let inner = self.or()?;
        if self.toks.get(self.at) != Some(&Tok::Close) {
            return Err(FilterError("missing )".into()));
        }
        self.at += 1;
        Ok(inner)
    }
}

/// Parses a filter expression.
pub fn parse(s: &str) -> Result<Filter, FilterError> {
    if s.len() > 4096 {
        return Err(FilterError("the filter is too long".into()));
    }
    let mut p = Parser {
        toks: lex(s)?,
        at: 0,
        depth: 0,
    };
    let f = p.or()?;
    if p.at != p.toks.len() {
        return Err(FilterError("unexpected text after the filter".into()));
    }
    Ok(f)
}

/// The schema URN prefixes an attribute path may carry.
const CORE_PREFIXES: [&str; 2] = [
    "urn:ietf:params:scim:schemas:core:2.0:user:",
    "urn:ietf:params:scim:schemas:core:2.0:group:",
];

/// The values an attribute path names in `doc` (several for multi-valued attributes).
pub fn resolve<'a>(doc: &'a Value, path: &str) -> Vec<&'a Value> {
    let lower = path.to_ascii_lowercase();
    let mut base = doc;
    let mut rest = path;
    if let Some(p) = CORE_PREFIXES.iter().find(|p| lower.starts_with(*p)) {
        rest = &path[p.len()..];
    } else if lower.starts_with("urn:") {
        // An extension: the longest key of the document that prefixes the path.
        let Some((key, v)) = doc.as_object().and_then(|o| {
            o.iter()
                .filter(|(k, _)| lower.starts_with(&format!("{}:", k.to_ascii_lowercase())))
                .max_by_key(|(k, _)| k.len())
        }) else {
            return Vec::new();
        };
        base = v;
        rest = &path[key.len() + 1..];
    }
    let mut current = vec![base];
    for part in rest.split('.') {
        let mut next = Vec::new();
        for v in current {
            let field = v.as_object().and_then(|o| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(part))
                    .map(|(_, v)| v)
            });
            match field {
                Some(Value::Array(items)) => next.extend(items.iter()),
                Some(v) => next.push(v),
                None => {}
            }
        }
        current = next;
    }
    // A multi-valued attribute of complex values compares by its `value` sub-attribute.
    current
        .into_iter()
        .flat_map(|v| match v {
            Value::Object(o) if o.contains_key("value") => o.get("value").into_iter().collect(),
            other => vec![other],
        })
        .collect()
}

fn compare(v: &Value, op: Op, want: &Value) -> bool {
    match (v, want) {
        (Value::String(a), Value::String(b)) => {
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            match op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                Op::Co => a.contains(&b),
                Op::Sw => a.starts_with(&b),
                Op::Ew => a.ends_with(&b),
                Op::Gt => a > b,
                Op::Ge => a >= b,
                Op::Lt => a < b,
                Op::Le => a <= b,
            }
        }
        (Value::Bool(a), Value::Bool(b)) => match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            _ => false,
        },
        (Value::Number(a), Value::Number(b)) => {
            let (Some(a), Some(b)) = (a.as_f64(), b.as_f64()) else {
                return false;
            };
            match op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                Op::Gt => a > b,
                Op::Ge => a >= b,
                Op::Lt => a < b,
                Op::Le => a <= b,
                _ => false,
            }
        }
        _ => false,
    }
}

/// Identifiers compare case-exactly (`caseExact: true`, RFC 7643 §3.1): `id` and `externalId`.
fn case_exact(path: &str) -> bool {
    let last = path.rsplit([':', '.']).next().unwrap_or(path);
    last.eq_ignore_ascii_case("id") || last.eq_ignore_ascii_case("externalId")
}

/// Whether `doc` matches the filter.
pub fn matches(f: &Filter, doc: &Value) -> bool {
    match f {
        Filter::Present(p) => resolve(doc, p)
            .iter()
            .any(|v| !v.is_null() && v.as_str() != Some("")),
        Filter::Compare(p, op, want) if case_exact(p) => {
            let found = resolve(doc, p);
            match op {
                Op::Eq => found.contains(&want),
                Op::Ne => !found.contains(&want),
                // Ordering and substrings of identifiers: as for any string, but case-exact.
                _ => found.iter().any(|v| match (v, want) {
                    (Value::String(a), Value::String(b)) => match op {
                        Op::Co => a.contains(b.as_str()),
                        Op::Sw => a.starts_with(b.as_str()),
                        Op::Ew => a.ends_with(b.as_str()),
                        Op::Gt => a > b,
                        Op::Ge => a >= b,
                        Op::Lt => a < b,
                        Op::Le => a <= b,
                        Op::Eq | Op::Ne => false,
                    },
                    _ => false,
                }),
            }
        }
        Filter::Compare(p, op, want) => {
            let found = resolve(doc, p);
            if *op == Op::Ne {
                // Not equal: no value equals it (an absent attribute is not equal).
                !found.iter().any(|v| compare(v, Op::Eq, want))
            } else if want.is_null() {
                *op == Op::Eq && found.iter().all(|v| v.is_null())
            } else {
                found.iter().any(|v| compare(v, *op, want))
            }
        }
        Filter::And(a, b) => matches(a, doc) && matches(b, doc),
        Filter::Or(a, b) => matches(a, doc) || matches(b, doc),
        Filter::Not(a) => !matches(a, doc),
    }
}

/// A PATCH path: `attr`, `attr.sub`, `attr[filter]` or `attr[filter].sub` (RFC 7644 §3.5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct PathSpec {
    pub attr: String,
    pub filter: Option<Filter>,
    pub sub: Option<String>,
}

/// Parses a PATCH path.
pub fn parse_path(path: &str) -> Result<PathSpec, FilterError> {
    let path = path.trim();
    let lower = path.to_ascii_lowercase();
    let path = CORE_PREFIXES
        .iter()
        .find(|p| lower.starts_with(*p))
        .map_or(path, |p| &path[p.len()..]);
    if let Some(open) = path.find('[') {
        let close = path
            .rfind(']')
            .filter(|c| *c > open)
            .ok_or_else(|| FilterError("missing ] in path".into()))?;
        let filter = parse(&path[open + 1..close])?;
        let after = &path[close + 1..];
        let sub = match after.strip_prefix('.') {
            Some(s) if !s.is_empty() => Some(s.to_owned()),
            None if after.is_empty() => None,
            _ => return Err(FilterError("bad text after ] in path".into())),
        };
        return Ok(PathSpec {
            attr: path[..open].to_owned(),
            filter: Some(filter),
            sub,
        });
    }
    if path.is_empty() {
        return Err(FilterError("empty path".into()));
    }
    // `urn:…:attr` of an extension keeps its URN in `attr`; core paths split at the first dot.
    if path.starts_with("urn:") {
        return Ok(PathSpec {
            attr: path.to_owned(),
            filter: None,
            sub: None,
        });
    }
    Ok(match path.split_once('.') {
        Some((a, s)) => PathSpec {
            attr: a.to_owned(),
            filter: None,
            sub: Some(s.to_owned()),
        },
        None => PathSpec {
            attr: path.to_owned(),
            filter: None,
            sub: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u1",
            "externalId": "Ext-7",
            "userName": "Maija",
            "name": { "givenName": "Maija", "familyName": "Meikäläinen" },
            "emails": [{ "value": "maija@example.fi", "primary": true }],
            "active": true,
            "urn:kuntalaistili:params:scim:schemas:extension:municipal:2.0:User": { "homeMunicipality": "091" },
        })
    }

    #[test]
    fn filters_match_like_the_rfc_examples() {
        let u = user();
        for (f, want) in [
            (r#"userName eq "maija""#, true),
            (r#"USERNAME Eq "MAIJA""#, true),
            (r#"userName sw "ma""#, true),
            (r#"name.familyName co "käläi""#, true),
            (r#"emails co "example.fi""#, true),
            (r#"emails.value ew ".fi""#, true),
            (r#"userName sw "ma" and active eq true"#, true),
            (r#"userName sw "ma" and active eq false"#, false),
            (
                r#"userName eq "x" or (active eq true and name.givenName pr)"#,
                true,
            ),
            (r#"not (userName eq "maija")"#, false),
            (r#"title pr"#, false),
            (r#"userName ne "x""#, true),
            (r#"id eq "u1""#, true),
            (r#"id eq "U1""#, false),
            (r#"externalId eq "Ext-7""#, true),
            (r#"externalid eq "ext-7""#, false),
            (r#"externalId sw "Ext""#, true),
            (r#"externalId ne "Ext-7""#, false),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "maija""#,
                true,
            ),
            (
                r#"urn:kuntalaistili:params:scim:schemas:extension:municipal:2.0:User:homeMunicipality eq "091""#,
                true,
            ),
        ] {
            assert_eq!(matches(&parse(f).unwrap(), &u), want, "{f}");
        }
    }

    #[test]
    fn bad_filters_are_refused() {
        for f in [
            "",
            "userName",
            r#"userName zz "a""#,
            r#"userName eq "a"#,
            r#"userName eq "a" and"#,
            r#"(userName eq "a""#,
            r#"userName eq "a" )"#,
            r#"emails[type eq "work"] pr"#,
            "userName eq bare",
        ] {
            assert!(parse(f).is_err(), "{f}");
        }
        let deep = format!("{}userName pr{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn patch_paths() {
        assert_eq!(
            parse_path("name.givenName").unwrap(),
            PathSpec {
                attr: "name".into(),
                filter: None,
                sub: Some("givenName".into())
            }
        );
        let p = parse_path(r#"members[value eq "u1"]"#).unwrap();
        assert_eq!(p.attr, "members");
        assert!(p.filter.is_some() && p.sub.is_none());
        let p = parse_path(r#"emails[primary eq true].value"#).unwrap();
        assert_eq!(p.sub.as_deref(), Some("value"));
        assert!(parse_path(r#"members[value eq "u1""#).is_err());
    }
}
