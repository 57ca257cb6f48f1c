//! Authorization requests that wait for the resident's login travel through the login page
//! themselves — signed under the master key, time-limited — so anonymous traffic stores nothing.

use chrono::{Duration, NaiveDateTime};
use serde_json::json;

use super::authorize::{AuthParams, REQUEST_MINUTES};
use crate::IdpState;

/// How long a request carried through the login page stays valid.
const CARRIED_MINUTES: i64 = REQUEST_MINUTES;

/// The resume link for a request that waits for login: signed and self-contained, so anonymous
/// traffic stores nothing.
pub(super) fn carried(state: &IdpState, params: &AuthParams) -> Option<String> {
    use base64::Engine;
    let mut params = params.clone();
    params.request_uri = None;
    let now = kuntalaistili_schema::now_utc().and_utc().timestamp();
    let body = serde_json::to_vec(&json!({ "p": params, "t": now })).ok()?;
    let r = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body);
    let m = state.keys.mac("authorize-resume", &r);
    let link = format!("{}?r={r}&m={m}", crate::paths::AUTHORIZE_RESUME);
    // The login page's `next` is at most 2048 characters; larger requests are stored instead.
    (link.len() <= 1800).then_some(link)
}

/// The parameters and start time of a carried request, when its MAC is right and it is recent.
pub(super) fn uncarry(state: &IdpState, r: &str, m: &str) -> Option<(AuthParams, NaiveDateTime)> {
    use base64::Engine;
    let expected = state.keys.mac("authorize-resume", r);
    if !kuntalaistili_metadata::crypto::ct_eq(&expected, m) {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(r)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    let at = chrono::DateTime::from_timestamp(v["t"].as_i64()?, 0)?.naive_utc();
    if kuntalaistili_schema::now_utc() - at > Duration::minutes(CARRIED_MINUTES) {
        return None;
    }
    Some((serde_json::from_value(v["p"].clone()).ok()?, at))
}
