//! What a relying party learns about a resident: the subject identifier (public or pairwise) and
//! the claims its granted scopes release from the customer register.

use kuntalaistili_metadata::crypto::MasterKeys;
use kuntalaistili_schema::oidc_clients::OidcClient;
use kuntalaistili_schema::users::User;
use serde_json::{json, Map, Value};

/// Scopes this OP understands. `municipality` releases the home municipality code,
/// `national_id` the personal identity code (only to clients allowed it).
pub const SCOPES: [&str; 8] = [
    "openid",
    "profile",
    "email",
    "phone",
    "address",
    "offline_access",
    "municipality",
    "national_id",
];

/// Every claim any scope can release (for discovery).
pub const CLAIMS: [&str; 22] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "sid",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "locale",
    "email",
    "phone_number",
    "address",
    "home_municipality",
    "national_id",
    "updated_at",
    "permissions",
];

/// The subject identifier the client sees for a user.
pub fn subject(client: &OidcClient, keys: &MasterKeys, user_id: &str) -> String {
    match (&*client.subject_type, &client.sector_identifier) {
        ("pairwise", Some(sector)) => keys.pairwise_subject(sector, user_id),
        _ => user_id.to_owned(),
    }
}

/// The released claims for these scopes, and whether the national id was among them (an event
/// the audit log must record).
pub fn user_claims(
    user: &User,
    scopes: &[&str],
    client: &OidcClient,
    keys: &MasterKeys,
) -> (Map<String, Value>, bool) {
    let mut c = Map::new();
    c.insert("sub".into(), json!(subject(client, keys, &user.id)));
    let has = |s: &str| scopes.contains(&s);
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            c.insert(k.to_owned(), json!(v));
        }
    };
    if has("profile") {
        put("given_name", &user.given_name);
        put("family_name", &user.family_name);
        put("name", &Some(user.display_name()));
        put("preferred_username", &Some(user.username.clone()));
        put("locale", &Some(user.preferred_language.clone()));
    }
    if has("email") {
        put("email", &user.email);
    }
    if has("phone") {
        put("phone_number", &user.phone);
    }
    if has("municipality") {
        put("home_municipality", &user.home_municipality);
    }
    if has("profile") {
        c.insert(
            "updated_at".into(),
            json!(user.updated_at.and_utc().timestamp()),
        );
    }
    if has("email") && user.email.is_some() {
        // Addresses come from the register, not from a verification round-trip.
        c.insert("email_verified".into(), json!(false));
    }
    if has("phone") && user.phone.is_some() {
        c.insert("phone_number_verified".into(), json!(false));
    }
    if has("address") {
        let mut a = Map::new();
        for (k, v) in [
            ("street_address", &user.street_address),
            ("postal_code", &user.postal_code),
            ("locality", &user.locality),
            ("country", &user.country),
        ] {
            if let Some(v) = v {
                a.insert(k.into(), json!(v));
            }
        }
        if !a.is_empty() {
            let formatted = [
                user.street_address.clone(),
                match (&user.postal_code, &user.locality) {
                    (Some(p), Some(l)) => Some(format!("{p} {l}")),
                    (p, l) => p.clone().or(l.clone()),
                },
                user.country.clone(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n");
            a.insert("formatted".into(), json!(formatted));
            c.insert("address".into(), Value::Object(a));
        }
    }
    let mut national_id = false;
    if has("national_id") && client.allow_national_id {
        if let Some(enc) = &user.national_id_enc {
            match keys.decrypt_national_id(enc) {
                Ok(id) => {
                    c.insert("national_id".into(), json!(id));
                    national_id = true;
                }
                Err(_) => tracing::error!(user = %user.id, "stored national id does not decrypt"),
            }
        }
    }
    (c, national_id)
}
