//! Metadata from the network: fetching it (HTTPS, or HTTP on the loopback interface; bounded; no
//! redirects) and refreshing the SPs added from a URL and every aggregate; a refresh that fails
//! keeps the last good copy.

use chrono::NaiveDateTime;
use kuntalaistili_metadata::saml::metadata as md;
use kuntalaistili_schema::saml::{self as store, Aggregate};

use super::{add_aggregate, replace_metadata, RegistryError, MAX_METADATA_BYTES};

/// Fetches metadata over HTTPS (plain HTTP only from the loopback interface): no redirects
/// followed, at most [`MAX_METADATA_BYTES`], 20 seconds. The server's certificate must chain to
/// the built-in web roots or, when `ca_pem` is given (a federation publishing from its own CA,
/// `[saml] metadata_ca_file`), to one of its certificates.
pub async fn fetch(url: &str, ca_pem: Option<&[u8]>) -> Result<String, RegistryError> {
    if !md::acceptable_url(url) {
        return Err(RegistryError::Fetch(format!(
            "{url}: only https URLs (or http on the loopback interface) are fetched"
        )));
    }
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20));
    if let Some(pem) = ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| RegistryError::Fetch(format!("the metadata CA file: {e}")))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder
        .build()
        .map_err(|e| RegistryError::Fetch(e.to_string()))?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| RegistryError::Fetch(format!("{url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(RegistryError::Fetch(format!(
            "{url}: HTTP {}",
            resp.status()
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| RegistryError::Fetch(format!("{url}: {e}")))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_METADATA_BYTES {
            return Err(RegistryError::Fetch(format!(
                "{url}: larger than {MAX_METADATA_BYTES} bytes"
            )));
        }
    }
    String::from_utf8(body).map_err(|_| RegistryError::Fetch(format!("{url}: not UTF-8")))
}

/// What a refresh did.
#[derive(Debug, Default, serde::Serialize)]
pub struct RefreshReport {
    pub refreshed: Vec<String>,
    /// Entity (or aggregate URL) and why it kept its last good copy.
    pub failed: Vec<(String, String)>,
}

/// Refreshes SPs added from a URL and every aggregate (all of them, or the one SP named).
/// Failures keep the last good copy and are reported.
pub async fn refresh(
    db: &kuntalaistili_schema::Db,
    only: Option<&str>,
    actor: &str,
    now: NaiveDateTime,
    ca_pem: Option<&[u8]>,
) -> Result<RefreshReport, RegistryError> {
    let mut report = RefreshReport::default();
    let (sps, aggregates) = {
        let mut conn = db.conn()?;
        (store::list_sps(&mut conn)?, store::aggregates(&mut conn)?)
    };
    if let Some(id) = only {
        if !sps.iter().any(|s| s.entity_id == id) {
            return Err(RegistryError::NotFound(id.into()));
        }
    }
    for sp in sps.iter().filter(|s| only.is_none_or(|o| o == s.entity_id)) {
        let Some(url) = &sp.source_url else {
            continue;
        };
        let result = match fetch(url, ca_pem).await {
            Ok(xml) => replace_metadata(&mut *db.conn()?, &sp.entity_id, &xml, actor, now),
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => report.refreshed.push(sp.entity_id.clone()),
            Err(e) => report.failed.push((sp.entity_id.clone(), e.to_string())),
        }
    }
    let wanted_aggregates: Vec<&Aggregate> = aggregates
        .iter()
        .filter(|a| {
            only.is_none_or(|o| {
                sps.iter()
                    .any(|s| s.entity_id == o && s.aggregate_url.as_deref() == Some(&a.url))
            })
        })
        .collect();
    for a in wanted_aggregates {
        let result = match fetch(&a.url, ca_pem).await {
            Ok(xml) => add_aggregate(&mut *db.conn()?, &a.url, &a.cert_pem, &xml, actor, now),
            Err(e) => Err(e),
        };
        match result {
            Ok(ids) => report.refreshed.extend(ids),
            Err(e) => report.failed.push((a.url.clone(), e.to_string())),
        }
    }
    Ok(report)
}
