//! `GET /.well-known/openid-configuration`: exactly what this OP implements (a test compares it
//! with the routes and behaviour).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::claims;
use crate::paths;
use crate::settings::Registration;
use crate::IdpState;

/// The discovery document for these settings.
pub fn document(state: &IdpState) -> Value {
    let base = &state.settings.public_url;
    let at = |p: &str| format!("{base}{p}");
    let client_auth = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ];
    let mut d = json!({
        "issuer": base,
        "authorization_endpoint": at(paths::AUTHORIZE),
        "pushed_authorization_request_endpoint": at(paths::PAR),
        "require_pushed_authorization_requests": false,
        "token_endpoint": at(paths::TOKEN),
        "userinfo_endpoint": at(paths::USERINFO),
        "jwks_uri": at(paths::JWKS),
        "revocation_endpoint": at(paths::REVOKE),
        "introspection_endpoint": at(paths::INTROSPECT),
        "end_session_endpoint": at(paths::END_SESSION),
        "scopes_supported": claims::SCOPES,
        "claims_supported": claims::CLAIMS,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
        "revocation_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
        "introspection_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "acr_values_supported": ["password"],
        "claim_types_supported": ["normal"],
        "ui_locales_supported": ["fi", "sv", "en"],
        "claims_locales_supported": ["fi", "sv", "en"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
    });
    if state.settings.registration != Registration::Disabled {
        d["registration_endpoint"] = json!(at(paths::REGISTER));
    }
    d
}

pub async fn oidc_discovery_get(state: web::Data<IdpState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(document(&state))
}
