//! Languages (fi, sv, en), language negotiation and the translation tables from
//! `templates/i18n/*.toml`, compiled into the binary.

use actix_web::HttpRequest;
use serde::Deserialize;

/// A user-interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fi,
    Sv,
    En,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Fi, Lang::Sv, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Fi => "fi",
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fi" | "fi-fi" => Some(Lang::Fi),
            "sv" | "sv-fi" | "sv-se" => Some(Lang::Sv),
            "en" | "en-gb" | "en-us" => Some(Lang::En),
            _ => None,
        }
    }
}

/// Name of the cookie that remembers an explicit language choice.
pub const LANG_COOKIE: &str = "kl_lang";

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

/// The language chosen explicitly in this request (`?lang=sv`), if any.
pub fn requested(req: &HttpRequest) -> Option<Lang> {
    actix_web::web::Query::<LangQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.lang.as_deref().and_then(Lang::parse))
}

/// The language for this request: `?lang=`, then the language cookie, then `Accept-Language`
/// (first supported tag in order of quality), then Finnish.
pub fn negotiate(req: &HttpRequest) -> Lang {
    if let Some(l) = requested(req) {
        return l;
    }
    if let Some(l) = req.cookie(LANG_COOKIE).and_then(|c| Lang::parse(c.value())) {
        return l;
    }
    req.headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(from_accept_language)
        .unwrap_or(Lang::Fi)
}

fn from_accept_language(header: &str) -> Option<Lang> {
    let mut tags: Vec<(f32, Lang)> = header
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';');
            let tag = it.next()?.trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next()?;
            Lang::parse(primary).map(|l| (q, l))
        })
        .filter(|(q, _)| *q > 0.0)
        .collect();
    tags.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    tags.first().map(|(_, l)| *l)
}

/// The translation tables, one JSON value per language, ready to hand to templates as `tr`.
pub struct Translations {
    fi: serde_json::Value,
    sv: serde_json::Value,
    en: serde_json::Value,
}

pub const SOURCES: [(&str, &str); 3] = [
    ("fi", include_str!("../../templates/i18n/fi.toml")),
    ("sv", include_str!("../../templates/i18n/sv.toml")),
    ("en", include_str!("../../templates/i18n/en.toml")),
];

impl Translations {
    pub fn load() -> Result<Translations, String> {
        let parse = |i: usize| -> Result<serde_json::Value, String> {
            let (code, src) = SOURCES[i];
            let table: toml::Table =
                toml::from_str(src).map_err(|e| format!("templates/i18n/{code}.toml: {e}"))?;
            serde_json::to_value(table).map_err(|e| e.to_string())
        };
        Ok(Translations {
            fi: parse(0)?,
            sv: parse(1)?,
            en: parse(2)?,
        })
    }

    pub fn table(&self, lang: Lang) -> &serde_json::Value {
        match lang {
            Lang::Fi => &self.fi,
            Lang::Sv => &self.sv,
            Lang::En => &self.en,
        }
    }

    /// One text by dotted key (`login.error_invalid`); the key itself when missing, so a gap is
    /// visible rather than blank (the key-parity test keeps gaps out of releases).
    pub fn text(&self, lang: Lang, key: &str) -> String {
        let mut v = self.table(lang);
        for part in key.split('.') {
            match v.get(part) {
                Some(next) => v = next,
                None => return key.to_owned(),
            }
        }
        v.as_str().map_or_else(|| key.to_owned(), str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        if let Some(map) = v.as_object() {
            for (k, child) in map {
                keys(child, &format!("{prefix}{k}."), out);
            }
        } else {
            out.push(prefix.trim_end_matches('.').to_owned());
        }
    }

    #[test]
    fn every_language_has_every_key() {
        let t = Translations::load().unwrap();
        let mut sets = Lang::ALL.iter().map(|l| {
            let mut k = Vec::new();
            keys(t.table(*l), "", &mut k);
            k.sort();
            k
        });
        let fi = sets.next().unwrap();
        for other in sets {
            assert_eq!(fi, other);
        }
        assert!(fi.len() > 40);
        assert_eq!(t.text(Lang::Sv, "login.title"), "Logga in");
    }

    #[test]
    fn accept_language_quality_order() {
        assert_eq!(
            from_accept_language("de, sv;q=0.8, en;q=0.9"),
            Some(Lang::En)
        );
        assert_eq!(from_accept_language("sv-FI"), Some(Lang::Sv));
        assert_eq!(from_accept_language("de, fr"), None);
        assert_eq!(from_accept_language("en;q=0"), None);
    }
}
