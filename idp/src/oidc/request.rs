//! The authorization request as the protocol sees it, without HTTP: its parameters, whether it
//! is valid ([`validate`]) and which answer it gets (log in first, ask for consent, or the code:
//! [`needs_login`], [`consent_step`]). The endpoint ([`super::authorize`]) loads what these need,
//! calls them, and renders their outcome.

use std::sync::Arc;

use chrono::NaiveDateTime;
use kuntalaistili_schema::oidc_clients::OidcClient;
use kuntalaistili_schema::sessions::Session;
use kuntalaistili_schema::users::User;
use serde::{Deserialize, Serialize};

use super::answer::Reply;
use super::client_auth::MAX_PARAM;
use crate::error::WebError;
use crate::i18n::Lang;

/// How long a code may wait for redemption.
pub const CODE_SECONDS: i64 = 60;
/// How long a stored request waits for the resident (login, consent) or a pushed one for use.
pub const REQUEST_MINUTES: i64 = 30;
/// Prefix of PAR request URIs (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The parameters of an authorization request, as received (and as stored while waiting).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub response_mode: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub acr_values: Option<String>,
    pub login_hint: Option<String>,
    pub ui_locales: Option<String>,
    pub id_token_hint: Option<String>,
    pub request_uri: Option<String>,
    pub request: Option<String>,
    pub registration: Option<String>,
    pub claims: Option<String>,
}

impl AuthParams {
    pub(super) fn values(&self) -> [&Option<String>; 19] {
        [
            &self.response_type,
            &self.client_id,
            &self.redirect_uri,
            &self.scope,
            &self.state,
            &self.nonce,
            &self.code_challenge,
            &self.code_challenge_method,
            &self.response_mode,
            &self.prompt,
            &self.max_age,
            &self.acr_values,
            &self.login_hint,
            &self.ui_locales,
            &self.id_token_hint,
            &self.request_uri,
            &self.request,
            &self.registration,
            &self.claims,
        ]
    }
}

/// Which step of the flow we are at.
#[derive(Debug, Clone)]
pub(super) enum Stage {
    /// A new request from the client.
    Fresh,
    /// Back from the login page for a stored request created at `at`.
    /// (`id` is the stored row when the request was stored; signed requests carry themselves.)
    Resumed {
        id: Option<String>,
        at: NaiveDateTime,
    },
    /// The resident allowed the stored request `id`.
    Consented { id: String },
}

/// What the client asked of the resident's login and consent (`prompt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prompt {
    Default,
    None,
    Login,
    Consent,
}

/// A request that passed validation.
pub(super) struct Checked {
    pub(super) client: Arc<OidcClient>,
    pub(super) reply: Reply,
    pub(super) scopes: Vec<String>,
    pub(super) nonce: Option<String>,
    pub(super) code_challenge: Option<String>,
    pub(super) prompt: Prompt,
    pub(super) max_age: Option<i64>,
    pub(super) login_hint: Option<String>,
    pub(super) lang: Option<Lang>,
    pub(super) acr_values: Vec<String>,
}

/// The outcome of validation before the redirect URI is trusted.
pub(super) enum Invalid {
    Page(WebError),
    Redirect(Reply, &'static str, String),
}

fn page(key: &'static str) -> Invalid {
    Invalid::Page(WebError::BadRequest(key))
}

/// The `client_id` of the request, when it can name a client.
pub(super) fn client_id(p: &AuthParams) -> Result<&str, Invalid> {
    p.client_id
        .as_deref()
        .filter(|c| c.len() <= MAX_PARAM)
        .ok_or_else(|| page("oidc.error_client"))
}

/// Validates the parameters against the client that `client_id` names (`None`: no such client).
/// Until the client and redirect URI are known good, failures are pages; afterwards they are
/// redirects to the client.
pub(super) fn validate(
    p: &AuthParams,
    client: Option<Arc<OidcClient>>,
) -> Result<Checked, Invalid> {
    let client = client
        .filter(|c| !c.disabled)
        .ok_or_else(|| page("oidc.error_client"))?;
    let registered: Vec<String> = serde_json::from_str(&client.redirect_uris).unwrap_or_default();
    let redirect_uri = p
        .redirect_uri
        .as_ref()
        .filter(|r| registered.contains(r))
        .ok_or_else(|| page("oidc.error_redirect_uri"))?
        .clone();
    let mut reply = Reply {
        redirect_uri,
        state: p.state.clone(),
        form_post: false,
    };
    let bad =
        |r: &Reply, code: &'static str, d: &str| Invalid::Redirect(r.clone(), code, d.to_owned());
    match p.response_mode.as_deref() {
        None | Some("query") => {}
        Some("form_post") => reply.form_post = true,
        Some(_) => return Err(bad(&reply, "invalid_request", "unsupported response_mode")),
    }
    if p.values()
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| v.len() > MAX_PARAM))
    {
        reply.state = reply.state.filter(|s| s.len() <= MAX_PARAM);
        return Err(bad(&reply, "invalid_request", "a parameter is too long"));
    }
    if p.request.is_some() {
        return Err(bad(
            &reply,
            "request_not_supported",
            "request objects are not supported; use PAR",
        ));
    }
    if p.registration.is_some() {
        return Err(bad(
            &reply,
            "registration_not_supported",
            "use the registration endpoint",
        ));
    }
    match p.response_type.as_deref() {
        None => return Err(bad(&reply, "invalid_request", "response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(bad(
                &reply,
                "unsupported_response_type",
                "only response_type=code is supported",
            ))
        }
    }
    let grants: Vec<String> = serde_json::from_str(&client.grant_types).unwrap_or_default();
    if !grants.iter().any(|g| g == "authorization_code") {
        return Err(bad(
            &reply,
            "unauthorized_client",
            "the client may not use the code flow",
        ));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in p.scope.as_deref().unwrap_or_default().split_whitespace() {
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_owned());
        }
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(bad(&reply, "invalid_scope", "the openid scope is required"));
    }
    let allowed: Vec<&str> = client.scopes.split_whitespace().collect();
    if let Some(s) = scopes.iter().find(|s| !allowed.contains(&s.as_str())) {
        return Err(bad(
            &reply,
            "invalid_scope",
            &format!("scope {s:?} is not allowed for this client"),
        ));
    }
    let code_challenge = match (
        p.code_challenge.as_deref(),
        p.code_challenge_method.as_deref(),
    ) {
        (None, None) if client.public_client => {
            return Err(bad(
                &reply,
                "invalid_request",
                "PKCE (S256) is required for public clients",
            ))
        }
        (None, None) => None,
        (None, Some(_)) => {
            return Err(bad(
                &reply,
                "invalid_request",
                "code_challenge_method without code_challenge",
            ))
        }
        (Some(_), None | Some("plain")) => {
            return Err(bad(
                &reply,
                "invalid_request",
                "PKCE method plain is not allowed; use S256",
            ))
        }
        (Some(ch), Some("S256")) if super::pkce::valid_challenge(ch) => Some(ch.to_owned()),
        (Some(_), Some("S256")) => {
            return Err(bad(
                &reply,
                "invalid_request",
                "code_challenge is malformed",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(bad(
                &reply,
                "invalid_request",
                "unsupported code_challenge_method",
            ))
        }
    };
    let mut prompt = Prompt::Default;
    let asked: Vec<&str> = p
        .prompt
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    if asked.contains(&"none") && asked.len() > 1 {
        return Err(bad(
            &reply,
            "invalid_request",
            "prompt=none cannot be combined",
        ));
    }
    for a in &asked {
        prompt = match *a {
            "none" => Prompt::None,
            "login" => Prompt::Login,
            "consent" if prompt != Prompt::Login => Prompt::Consent,
            "consent" | "select_account" => prompt,
            _ => return Err(bad(&reply, "invalid_request", "unknown prompt value")),
        };
    }
    // `login consent` asks for both; consent is asked anyway after a forced login unless
    // remembered, so `Login` wins here and consent follows the normal rules.
    let max_age = match p.max_age.as_deref() {
        None => None,
        Some(m) => match m.trim().parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                return Err(bad(
                    &reply,
                    "invalid_request",
                    "max_age must be a non-negative integer",
                ))
            }
        },
    };
    let lang = p
        .ui_locales
        .as_deref()
        .and_then(|l| l.split_whitespace().find_map(Lang::parse));
    Ok(Checked {
        client,
        reply,
        scopes,
        nonce: p.nonce.clone(),
        code_challenge,
        prompt,
        max_age,
        login_hint: p.login_hint.clone().filter(|h| !h.trim().is_empty()),
        lang,
        acr_values: p
            .acr_values
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    })
}

/// Whether the resident must log in first: nobody is logged in, another person was hinted,
/// `prompt=login`, or the login is older than `max_age`. A login that happened after this request
/// was stored satisfies `prompt=login` and `max_age`.
pub(super) fn needs_login(
    c: &Checked,
    found: Option<&(Session, User)>,
    stage: &Stage,
    now: NaiveDateTime,
) -> bool {
    let fresh_login = |s: &Session| match stage {
        Stage::Resumed { at, .. } => s.auth_time >= *at,
        Stage::Consented { .. } => true,
        Stage::Fresh => false,
    };
    match found {
        None => true,
        Some((s, u)) => {
            let other_person = c
                .login_hint
                .as_ref()
                .is_some_and(|h| !h.trim().eq_ignore_ascii_case(&u.username));
            let forced = c.prompt == Prompt::Login && !fresh_login(s);
            let too_old = c
                .max_age
                .is_some_and(|m| (now - s.auth_time).num_seconds() > m && !fresh_login(s));
            (other_person && !fresh_login(s)) || forced || too_old
        }
    }
}

/// The login page for a request that continues at `next`, with the hinted person and language.
pub(super) fn login_url(c: &Checked, next: &str) -> String {
    let mut login = format!("{}?next={}", crate::paths::LOGIN, enc(next));
    if let Some(h) = &c.login_hint {
        login.push_str(&format!("&username={}", enc(h)));
    }
    if let Some(l) = c.lang {
        login.push_str(&format!("&lang={}", l.code()));
    }
    login
}

/// Whether the resident may have to be asked for consent: unless the client is first-party or
/// the resident has just allowed this request. (Then the consent remembered is looked at.)
pub(super) fn may_ask_consent(c: &Checked, stage: &Stage) -> bool {
    c.client.require_consent && !matches!(stage, Stage::Consented { .. })
}

/// The consent step of a request for a client that asks for consent.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ConsentStep {
    /// The resident allowed these scopes before.
    Remembered,
    /// The consent page.
    Ask,
    /// Consent is needed but `prompt=none` forbids asking.
    Required,
}

/// Asked unless the resident already allowed these scopes (`remembered`, space-separated);
/// `prompt=consent` always asks.
pub(super) fn consent_step(c: &Checked, remembered: Option<&str>) -> ConsentStep {
    let held: Vec<&str> = remembered
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default();
    let covered = c.scopes.iter().all(|s| held.contains(&s.as_str()));
    if c.prompt == Prompt::Consent || !covered {
        if c.prompt == Prompt::None {
            ConsentStep::Required
        } else {
            ConsentStep::Ask
        }
    } else {
        ConsentStep::Remembered
    }
}

/// The stored request that the code answers (it is removed as the code is issued).
pub(super) fn answered(stage: &Stage) -> Option<String> {
    match stage {
        Stage::Fresh => None,
        Stage::Resumed { id, .. } => id.clone(),
        Stage::Consented { id } => Some(id.clone()),
    }
}

/// The fields of the answer that carries `code`, with `state` and `iss` (RFC 9207).
pub(super) fn code_fields(c: &Checked, code: String, issuer: &str) -> Vec<(&'static str, String)> {
    let mut fields = vec![("code", code)];
    if let Some(s) = &c.reply.state {
        fields.push(("state", s.clone()));
    }
    fields.push(("iss", issuer.to_owned()));
    fields
}

/// A parameter for a URL's query.
pub(super) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Arc<OidcClient> {
        let t = kuntalaistili_schema::now_utc();
        Arc::new(OidcClient {
            client_id: "rp".into(),
            name: "RP".into(),
            secret_hash: None,
            public_client: true,
            redirect_uris: r#"["https://rp.example/cb"]"#.into(),
            grant_types: r#"["authorization_code"]"#.into(),
            scopes: "openid profile".into(),
            token_endpoint_auth_method: "none".into(),
            allow_national_id: false,
            disabled: false,
            created_at: t,
            updated_at: t,
            post_logout_redirect_uris: "[]".into(),
            backchannel_logout_uri: None,
            subject_type: "public".into(),
            sector_identifier: None,
            jwks: None,
            require_consent: true,
            id_token_alg: "RS256".into(),
            registration_token_hash: None,
            release_permissions: None,
        })
    }

    fn params() -> AuthParams {
        AuthParams {
            response_type: Some("code".into()),
            client_id: Some("rp".into()),
            redirect_uri: Some("https://rp.example/cb".into()),
            scope: Some("openid profile".into()),
            state: Some("s".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            code_challenge_method: Some("S256".into()),
            ..AuthParams::default()
        }
    }

    fn redirected(r: Result<Checked, Invalid>) -> &'static str {
        match r {
            Err(Invalid::Redirect(_, code, _)) => code,
            Err(Invalid::Page(_)) => "page",
            Ok(_) => "valid",
        }
    }

    #[test]
    fn a_request_is_checked_client_first() {
        assert_eq!(redirected(validate(&params(), Some(client()))), "valid");
        assert_eq!(redirected(validate(&params(), None)), "page");
        let mut p = params();
        p.redirect_uri = Some("https://elsewhere.example/cb".into());
        p.scope = Some("profile".into());
        assert_eq!(redirected(validate(&p, Some(client()))), "page");
        let mut p = params();
        p.scope = Some("profile".into());
        assert_eq!(redirected(validate(&p, Some(client()))), "invalid_scope");
        let mut p = params();
        p.code_challenge = None;
        p.code_challenge_method = None;
        assert_eq!(redirected(validate(&p, Some(client()))), "invalid_request");
        let mut p = params();
        p.prompt = Some("none login".into());
        assert_eq!(redirected(validate(&p, Some(client()))), "invalid_request");
    }

    #[test]
    fn consent_is_asked_unless_remembered() {
        let Ok(mut c) = validate(&params(), Some(client())) else {
            panic!("valid");
        };
        assert!(may_ask_consent(&c, &Stage::Fresh));
        assert!(!may_ask_consent(&c, &Stage::Consented { id: "x".into() }));
        assert_eq!(consent_step(&c, None), ConsentStep::Ask);
        assert_eq!(
            consent_step(&c, Some("profile openid email")),
            ConsentStep::Remembered
        );
        c.prompt = Prompt::None;
        assert_eq!(consent_step(&c, Some("openid")), ConsentStep::Required);
        c.prompt = Prompt::Consent;
        assert_eq!(consent_step(&c, Some("openid profile")), ConsentStep::Ask);
    }

    #[test]
    fn nobody_logged_in_means_login() {
        let Ok(c) = validate(&params(), Some(client())) else {
            panic!("valid");
        };
        let now = kuntalaistili_schema::now_utc();
        assert!(needs_login(&c, None, &Stage::Fresh, now));
        assert!(login_url(&c, "/oauth2/authorize/resume?r=a&m=b")
            .starts_with("/login?next=%2Foauth2%2Fauthorize%2Fresume%3Fr%3Da%26m%3Db"));
    }
}
