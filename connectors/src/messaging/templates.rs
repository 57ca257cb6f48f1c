//! Message templates (`templates/messages/templates.toml`, compiled in): a subject and a body in
//! fi, sv and en with `{name}` placeholders filled from the caller's parameters (plain text).

use std::collections::BTreeMap;

const SOURCE: &str = include_str!("../../../templates/messages/templates.toml");

/// Subject and body of one language.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub fi: Text,
    pub sv: Text,
    pub en: Text,
}

/// Every template by name, parsed once per process (the file is compiled in).
pub fn all() -> Result<&'static BTreeMap<String, Template>, String> {
    static PARSED: std::sync::OnceLock<Result<BTreeMap<String, Template>, String>> =
        std::sync::OnceLock::new();
    PARSED
        .get_or_init(|| {
            toml::from_str(SOURCE).map_err(|e| format!("templates/messages/templates.toml: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The placeholders a text uses.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let name = &after[..close];
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push(name.to_owned());
        }
        rest = &after[close + 1..];
    }
    out.sort();
    out.dedup();
    out
}

/// Fills a text; an error names the first missing parameter.
pub fn fill(text: &str, params: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = text.to_owned();
    for name in placeholders(text) {
        let value = params
            .get(&name)
            .ok_or_else(|| format!("parameter {name:?} is missing"))?;
        out = out.replace(&format!("{{{name}}}"), value);
    }
    Ok(out)
}

impl Template {
    pub fn text(&self, lang: &str) -> &Text {
        match lang {
            "sv" => &self.sv,
            "en" => &self.en,
            _ => &self.fi,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_of_a_template_uses_the_same_parameters() {
        let all = all().unwrap();
        assert!(all.len() >= 4);
        for (name, t) in all {
            let of = |x: &Text| {
                let mut p = placeholders(&x.subject);
                p.extend(placeholders(&x.body));
                p.sort();
                p.dedup();
                p
            };
            assert_eq!(of(&t.fi), of(&t.sv), "{name}");
            assert_eq!(of(&t.fi), of(&t.en), "{name}");
        }
        let mut params = BTreeMap::new();
        params.insert("resource".to_owned(), "Sali 1".to_owned());
        assert!(fill("{resource} {time}", &params).is_err());
        params.insert("time".to_owned(), "klo 18".to_owned());
        assert_eq!(fill("{resource} {time}", &params).unwrap(), "Sali 1 klo 18");
    }
}
