//! Services in the directory: the JSON exchange format (import and export are the same shape),
//! validation, and search by sub-region and text.

use std::collections::HashMap;

use kuntalaistili_schema::directory::{self, Municipality, Service};
use kuntalaistili_schema::pool::AnyConnection;
use kuntalaistili_schema::DbError;
use serde::{Deserialize, Serialize};

/// Authentication levels a service may require.
pub const AUTH_LEVELS: [&str; 3] = ["none", "password", "strong"];

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("the services file is not valid JSON of the expected shape: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("invalid service {id:?}: {reason}")]
    Invalid { id: String, reason: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A text in the three languages every user-facing text needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    pub fi: String,
    pub sv: String,
    pub en: String,
}

/// One service as exchanged in JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDoc {
    pub id: String,
    pub name: Texts,
    pub description: Texts,
    pub provider: String,
    pub channel_url: String,
    pub auth_level: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub target_groups: Vec<String>,
    /// Municipality codes; empty means every municipality.
    #[serde(default)]
    pub municipalities: Vec<String>,
    #[serde(default)]
    pub built_in: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub services: Vec<ServiceDoc>,
}

fn list(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

impl ServiceDoc {
    pub fn from_row(s: &Service) -> ServiceDoc {
        ServiceDoc {
            id: s.id.clone(),
            name: Texts {
                fi: s.name_fi.clone(),
                sv: s.name_sv.clone(),
                en: s.name_en.clone(),
            },
            description: Texts {
                fi: s.description_fi.clone(),
                sv: s.description_sv.clone(),
                en: s.description_en.clone(),
            },
            provider: s.provider.clone(),
            channel_url: s.channel_url.clone(),
            auth_level: s.auth_level.clone(),
            keywords: list(&s.keywords),
            target_groups: list(&s.target_groups),
            municipalities: list(&s.municipalities),
            built_in: s.built_in,
        }
    }

    fn check(&self, known: &HashMap<String, String>) -> Result<(), CatalogueError> {
        let bad = |reason: String| {
            Err(CatalogueError::Invalid {
                id: self.id.clone(),
                reason,
            })
        };
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return bad("id must be 1-64 characters of a-z, 0-9, '-' and '_'".into());
        }
        for (what, t) in [("name", &self.name), ("description", &self.description)] {
            if [&t.fi, &t.sv, &t.en]
                .iter()
                .any(|s| s.trim().is_empty() || s.chars().count() > 2000)
            {
                return bad(format!(
                    "{what} is needed in fi, sv and en (at most 2000 characters)"
                ));
            }
        }
        if self.provider.trim().is_empty() {
            return bad("provider is required".into());
        }
        let https = self.channel_url.starts_with("https://") && self.channel_url.len() > 8;
        let local = self.channel_url.starts_with('/') && !self.channel_url.starts_with("//");
        if !(https || local)
            || self
                .channel_url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return bad("channel_url must be an https URL or a path on this site".into());
        }
        if !AUTH_LEVELS.contains(&self.auth_level.as_str()) {
            return bad(format!(
                "auth_level must be one of {}",
                AUTH_LEVELS.join(", ")
            ));
        }
        if let Some(m) = self.municipalities.iter().find(|m| !known.contains_key(*m)) {
            return bad(format!("municipality {m:?} is not in the classification"));
        }
        Ok(())
    }

    fn into_row(self, now: chrono::NaiveDateTime) -> Service {
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned());
        Service {
            keywords: json(&self.keywords),
            target_groups: json(&self.target_groups),
            municipalities: json(&self.municipalities),
            id: self.id,
            name_fi: self.name.fi,
            name_sv: self.name.sv,
            name_en: self.name.en,
            description_fi: self.description.fi,
            description_sv: self.description.sv,
            description_en: self.description.en,
            provider: self.provider,
            channel_url: self.channel_url,
            auth_level: self.auth_level,
            built_in: self.built_in,
            updated_at: now,
        }
    }
}

/// Validates every service of `json` against the stored classification and upserts them by id;
/// all or nothing. Returns how many were stored.
pub fn import(
    conn: &mut AnyConnection,
    json: &str,
    now: chrono::NaiveDateTime,
) -> Result<usize, CatalogueError> {
    let cat: Catalogue = serde_json::from_str(json)?;
    store(conn, cat.services, now)
}

/// Validates services against the stored classification and upserts them by id; all or nothing.
pub fn store(
    conn: &mut AnyConnection,
    services: Vec<ServiceDoc>,
    now: chrono::NaiveDateTime,
) -> Result<usize, CatalogueError> {
    let (_, municipalities) = directory::classification(conn)?;
    let known = region_of(&municipalities);
    let mut seen = std::collections::HashSet::new();
    for s in &services {
        s.check(&known)?;
        if !seen.insert(s.id.clone()) {
            return Err(CatalogueError::Invalid {
                id: s.id.clone(),
                reason: "listed twice".into(),
            });
        }
    }
    let rows: Vec<Service> = services.into_iter().map(|s| s.into_row(now)).collect();
    directory::upsert_services(conn, &rows)?;
    Ok(rows.len())
}

/// Checks one service against the stored classification (without storing it).
pub fn validate(conn: &mut AnyConnection, s: &ServiceDoc) -> Result<(), CatalogueError> {
    let (_, municipalities) = directory::classification(conn)?;
    s.check(&region_of(&municipalities))
}

/// Every service in the exchange format.
pub fn export(conn: &mut AnyConnection) -> Result<Catalogue, DbError> {
    Ok(Catalogue {
        services: directory::services(conn)?
            .iter()
            .map(ServiceDoc::from_row)
            .collect(),
    })
}

fn region_of(municipalities: &[Municipality]) -> HashMap<String, String> {
    municipalities
        .iter()
        .map(|m| (m.code.clone(), m.seutukunta_code.clone()))
        .collect()
}

/// Services offered in sub-region `seutukunta` (in any of its municipalities, or everywhere) whose
/// names, descriptions or keywords contain `q` in any language (case-insensitive).
pub fn search(
    services: &[Service],
    municipalities: &[Municipality],
    seutukunta: Option<&str>,
    q: Option<&str>,
) -> Vec<ServiceDoc> {
    let regions = region_of(municipalities);
    let needle = q.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty());
    services
        .iter()
        .map(ServiceDoc::from_row)
        .filter(|s| match seutukunta {
            None => true,
            Some(code) => {
                s.municipalities.is_empty()
                    || s.municipalities
                        .iter()
                        .any(|m| regions.get(m).is_some_and(|r| r == code))
            }
        })
        .filter(|s| match &needle {
            None => true,
            Some(n) => [
                &s.name.fi,
                &s.name.sv,
                &s.name.en,
                &s.description.fi,
                &s.description.sv,
                &s.description.en,
            ]
            .into_iter()
            .chain(s.keywords.iter())
            .any(|t| t.to_lowercase().contains(n.as_str())),
        })
        .collect()
}
