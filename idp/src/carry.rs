//! Requests that wait for the resident's login travel through the login page themselves: the
//! request (JSON) and its start time, base64url, MAC'd under the master key for one purpose, valid
//! for a limited time — so anonymous traffic stores nothing. Used by OIDC authorization requests
//! and SAML AuthnRequests.

use chrono::{Duration, NaiveDateTime};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use crate::IdpState;

/// The resume link `{path}?r=…&m=…` for `value`, when it is at most `max_len` long (the login
/// page's `next` is bounded; longer requests must be stored instead).
pub fn carried<T: Serialize>(
    state: &IdpState,
    purpose: &str,
    path: &str,
    value: &T,
    max_len: usize,
) -> Option<String> {
    use base64::Engine;
    let now = kuntalaistili_schema::now_utc().and_utc().timestamp();
    let body = serde_json::to_vec(&json!({ "p": value, "t": now })).ok()?;
    let r = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body);
    let m = state.keys.mac(purpose, &r);
    let link = format!("{path}?r={r}&m={m}");
    (link.len() <= max_len).then_some(link)
}

/// The value and start time of a carried request, when its MAC for `purpose` is right and it is
/// younger than `max_age`.
pub fn uncarry<T: DeserializeOwned>(
    state: &IdpState,
    purpose: &str,
    r: &str,
    m: &str,
    max_age: Duration,
) -> Option<(T, NaiveDateTime)> {
    use base64::Engine;
    let expected = state.keys.mac(purpose, r);
    if !kuntalaistili_metadata::crypto::ct_eq(&expected, m) {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(r)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    let at = chrono::DateTime::from_timestamp(v["t"].as_i64()?, 0)?.naive_utc();
    if kuntalaistili_schema::now_utc() - at > max_age {
        return None;
    }
    Some((serde_json::from_value(v["p"].clone()).ok()?, at))
}
