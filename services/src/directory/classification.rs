//! Parsing, validating and loading the seutukunta classification file.

use kuntalaistili_schema::directory::{self, Municipality, Seutukunta};
use kuntalaistili_schema::pool::AnyConnection;
use kuntalaistili_schema::DbError;
use serde::Deserialize;

/// The classification shipped with this release.
pub const BUNDLED: &str = include_str!("../../data/seutukunnat-2025.json");

#[derive(Debug, thiserror::Error)]
pub enum ClassificationError {
    #[error("the classification file is not valid JSON of the expected shape: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("invalid classification: {0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    source: String,
    seutukunnat: Vec<Region>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Region {
    code: String,
    name_fi: String,
    name_sv: String,
    municipalities: Vec<Member>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Member {
    code: String,
    name_fi: String,
}

fn three_digits(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses and checks a classification: three-digit codes, unique, every region non-empty, every
/// municipality in exactly one region, names present.
pub fn parse(json: &str) -> Result<(Vec<Seutukunta>, Vec<Municipality>), ClassificationError> {
    let file: File = serde_json::from_str(json)?;
    let bad = |m: String| Err(ClassificationError::Invalid(m));
    if file.source.trim().is_empty() {
        return bad("the source of the classification must be recorded".into());
    }
    let mut regions = Vec::new();
    let mut municipalities = Vec::new();
    let mut seen_regions = std::collections::HashSet::new();
    let mut seen_munis = std::collections::HashSet::new();
    for r in file.seutukunnat {
        if !three_digits(&r.code) || !seen_regions.insert(r.code.clone()) {
            return bad(format!(
                "seutukunta code {:?} is not a unique three-digit code",
                r.code
            ));
        }
        if r.name_fi.trim().is_empty() || r.name_sv.trim().is_empty() {
            return bad(format!(
                "seutukunta {} needs Finnish and Swedish names",
                r.code
            ));
        }
        if r.municipalities.is_empty() {
            return bad(format!("seutukunta {} has no municipalities", r.code));
        }
        for m in r.municipalities {
            if !three_digits(&m.code) || !seen_munis.insert(m.code.clone()) {
                return bad(format!(
                    "municipality code {:?} is not a unique three-digit code",
                    m.code
                ));
            }
            if m.name_fi.trim().is_empty() {
                return bad(format!("municipality {} needs a name", m.code));
            }
            municipalities.push(Municipality {
                code: m.code,
                name_fi: m.name_fi,
                seutukunta_code: r.code.clone(),
            });
        }
        regions.push(Seutukunta {
            code: r.code,
            name_fi: r.name_fi,
            name_sv: r.name_sv,
            source: file.source.clone(),
        });
    }
    if regions.is_empty() {
        return bad("no seutukunnat".into());
    }
    Ok((regions, municipalities))
}

/// Validates `json` and replaces the stored classification with it; returns (regions,
/// municipalities) loaded.
pub fn import(conn: &mut AnyConnection, json: &str) -> Result<(usize, usize), ClassificationError> {
    let (regions, municipalities) = parse(json)?;
    directory::replace_classification(conn, &regions, &municipalities)?;
    Ok((regions.len(), municipalities.len()))
}

/// Loads the bundled classification when none is stored yet (first start).
pub fn ensure_loaded(conn: &mut AnyConnection) -> Result<bool, ClassificationError> {
    if directory::count_regions(conn)? > 0 {
        return Ok(false);
    }
    import(conn, BUNDLED)?;
    Ok(true)
}

/// The API document: regions by code with their municipalities.
pub fn to_json(regions: &[Seutukunta], municipalities: &[Municipality]) -> serde_json::Value {
    let list: Vec<_> = regions
        .iter()
        .map(|r| {
            let members: Vec<_> = municipalities
                .iter()
                .filter(|m| m.seutukunta_code == r.code)
                .map(|m| serde_json::json!({ "code": m.code, "name_fi": m.name_fi }))
                .collect();
            serde_json::json!({ "code": r.code, "name_fi": r.name_fi, "name_sv": r.name_sv, "municipalities": members })
        })
        .collect();
    serde_json::json!({
        "source": regions.first().map(|r| r.source.as_str()),
        "seutukunnat": list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_classification_is_complete() {
        let (regions, munis) = parse(BUNDLED).unwrap();
        assert_eq!((regions.len(), munis.len()), (69, 308));
        let helsinki = munis.iter().find(|m| m.code == "091").unwrap();
        assert_eq!(
            (helsinki.name_fi.as_str(), helsinki.seutukunta_code.as_str()),
            ("Helsinki", "011")
        );
        assert!(regions[0].source.contains("Statistics Finland"));
    }

    #[test]
    fn broken_files_are_refused() {
        assert!(parse("{").is_err());
        let dup = r#"{"source":"s","seutukunnat":[{"code":"011","name_fi":"a","name_sv":"b","municipalities":[{"code":"091","name_fi":"H"}]},
                     {"code":"012","name_fi":"a","name_sv":"b","municipalities":[{"code":"091","name_fi":"H"}]}]}"#;
        assert!(matches!(parse(dup), Err(ClassificationError::Invalid(_))));
        let empty = r#"{"source":"s","seutukunnat":[{"code":"011","name_fi":"a","name_sv":"b","municipalities":[]}]}"#;
        assert!(parse(empty).is_err());
        let bad_code = r#"{"source":"s","seutukunnat":[{"code":"11","name_fi":"a","name_sv":"b","municipalities":[{"code":"091","name_fi":"H"}]}]}"#;
        assert!(parse(bad_code).is_err());
        let no_source = r#"{"source":" ","seutukunnat":[{"code":"011","name_fi":"a","name_sv":"b","municipalities":[{"code":"091","name_fi":"H"}]}]}"#;
        assert!(parse(no_source).is_err());
    }
}
