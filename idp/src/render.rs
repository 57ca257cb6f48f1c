//! Page rendering: the tera templates (compiled into the binary) and the common page context.

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use tera::{Context, Tera};

use crate::i18n::{Lang, Translations};

/// Every template, by the name it is rendered under.
pub const TEMPLATES: [(&str, &str); 16] = [
    (
        "layout/base.html",
        include_str!("../../templates/layout/base.html"),
    ),
    (
        "idp/login.html",
        include_str!("../../templates/idp/login.html"),
    ),
    (
        "idp/account.html",
        include_str!("../../templates/idp/account.html"),
    ),
    (
        "idp/logout.html",
        include_str!("../../templates/idp/logout.html"),
    ),
    (
        "idp/message.html",
        include_str!("../../templates/idp/message.html"),
    ),
    (
        "idp/consent.html",
        include_str!("../../templates/idp/consent.html"),
    ),
    (
        "idp/form_post.html",
        include_str!("../../templates/idp/form_post.html"),
    ),
    (
        "layout/admin.html",
        include_str!("../../templates/layout/admin.html"),
    ),
    (
        "admin/users.html",
        include_str!("../../templates/admin/users.html"),
    ),
    (
        "admin/user.html",
        include_str!("../../templates/admin/user.html"),
    ),
    (
        "admin/clients.html",
        include_str!("../../templates/admin/clients.html"),
    ),
    (
        "admin/client_secret.html",
        include_str!("../../templates/admin/client_secret.html"),
    ),
    (
        "admin/roles.html",
        include_str!("../../templates/admin/roles.html"),
    ),
    (
        "admin/audit.html",
        include_str!("../../templates/admin/audit.html"),
    ),
    (
        "admin/statistics.html",
        include_str!("../../templates/admin/statistics.html"),
    ),
    (
        "admin/sps.html",
        include_str!("../../templates/admin/sps.html"),
    ),
];

/// The one script the IdP serves: the form_post page's auto-submit. Allowed by its hash.
pub const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

/// `sha256-…` CSP source of [`FORM_POST_SCRIPT`].
pub fn form_post_script_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        use base64::Engine;
        use sha2::Digest;
        format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD
                .encode(sha2::Sha256::digest(FORM_POST_SCRIPT))
        )
    })
}

pub const STYLESHEET: &str = include_str!("../../templates/static/style.css");

pub struct Templates {
    tera: Tera,
    pub tr: Translations,
}

impl Templates {
    pub fn load() -> Result<Templates, String> {
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html"]);
        tera.add_raw_templates(TEMPLATES.to_vec())
            .map_err(|e| format!("templates: {e:?}"))?;
        Ok(Templates {
            tera,
            tr: Translations::load()?,
        })
    }

    /// The context every page starts from: language, translations, the current path (for the
    /// language switch) and the logged-in user's display name.
    pub fn context(&self, lang: Lang, path: &str, user_name: Option<&str>) -> Context {
        let mut ctx = Context::new();
        ctx.insert("lang", lang.code());
        ctx.insert("tr", self.tr.table(lang));
        ctx.insert("path", path);
        if let Some(name) = user_name {
            ctx.insert("user", &serde_json::json!({ "display_name": name }));
        }
        ctx
    }

    pub fn render(&self, name: &str, ctx: &Context) -> Result<String, tera::Error> {
        self.tera.render(name, ctx)
    }
}

/// Builds an HTML response from a template (see [`kuntalaistili_connectors::http::page`]).
pub fn html(
    templates: &Templates,
    req: &HttpRequest,
    status: StatusCode,
    template: &str,
    ctx: &Context,
    cookies: Vec<Cookie<'static>>,
) -> HttpResponse {
    kuntalaistili_connectors::http::page(
        req,
        status,
        template,
        templates.render(template, ctx),
        cookies,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every template renders in every language with a fixture context, so a template error fails
    /// the build, not a resident's browser.
    #[test]
    fn every_template_renders_in_every_language() {
        let t = Templates::load().unwrap();
        for lang in Lang::ALL {
            let mut ctx = t.context(lang, "/login", Some("Maija Meikäläinen"));
            ctx.insert("csrf", "token");
            ctx.insert("next", "/account");
            ctx.insert("username", "maija");
            ctx.insert("error", "<script>x</script>");
            ctx.insert("notice", "notice");
            ctx.insert("heading", "Heading");
            ctx.insert("message", "Message");
            ctx.insert("client_name", "Kirjasto <b>");
            ctx.insert("scopes", &["Nimi"]);
            ctx.insert("request_id", "r1");
            ctx.insert(
                "days",
                &serde_json::json!([{"day": "1.1.", "iso": "2026-01-01", "ok": 3, "failed": 1, "x_ok": 33,
                    "x_failed": 50, "w": 17, "y_ok": 40, "h_ok": 150, "y_failed": 140, "h_failed": 50, "label_x": 50}]),
            );
            ctx.insert("max", &3);
            ctx.insert("width", &700);
            ctx.insert("height", &220);
            ctx.insert("baseline", &190);
            ctx.insert("active", &2);
            ctx.insert("logins_ok", &3);
            ctx.insert("logins_failed", &1);
            ctx.insert(
                "per_client",
                &serde_json::json!([{"client": "Kirjasto <b>", "tokens": 5}]),
            );
            ctx.insert("period_days", &14);
            ctx.insert(
                "consents",
                &serde_json::json!([{"client_id": "c1", "name": "Kirjasto", "scopes": ["Nimi"], "at": "x", "at_iso": "x"}]),
            );
            ctx.insert("action", "https://rp.example.fi/cb");
            ctx.insert(
                "fields",
                &serde_json::json!([{"name": "code", "value": "c"}]),
            );
            ctx.insert(
                "me",
                &serde_json::json!({"username": "maija", "name": "Maija", "email": null,
                    "phone": null, "address": null, "municipality": "091", "language": "fi",
                    "has_national_id": true, "language_code": "fi", "channels": ["email", "notice"]}),
            );
            ctx.insert(
                "sessions",
                &serde_json::json!([{"id": "s1", "created": "1.1.2026 10.00", "created_iso": "2026-01-01T10:00:00Z",
                    "last_seen": "x", "last_seen_iso": "x", "ip": "127.0.0.1", "user_agent": null, "current": true}]),
            );
            ctx.insert(
                "logins",
                &serde_json::json!([{"at": "x", "at_iso": "x", "ok": true, "ip": null}]),
            );
            ctx.insert("section", "users");
            ctx.insert("q", "<script>x</script>");
            ctx.insert("total", &1);
            ctx.insert("truncated", &true);
            ctx.insert(
                "people",
                &serde_json::json!([{"id": "u1", "username": "maija", "name": "Kirjasto <b>", "email": null,
                    "role": "resident", "disabled": false, "erasure": false}]),
            );
            ctx.insert(
                "person",
                &serde_json::json!({"id": "u1", "username": "maija", "name": "Kirjasto <b>", "email": null,
                    "phone": null, "municipality": "091", "language": "fi", "role": "resident", "disabled": false,
                    "has_national_id": true, "created": "x", "erasure_requested": null, "erased": null}),
            );
            ctx.insert(
                "rights",
                &serde_json::json!([{"permission": "directory:edit", "role": "r", "group": null, "valid_from": null,
                    "valid_until": "1.1.2027", "in_force": true, "grant": "g1", "direct": true}]),
            );
            ctx.insert("roles", &serde_json::json!([{"name": "r", "description": "Kirjasto <b>", "permissions": "a:b"}]));
            ctx.insert(
                "groups",
                &serde_json::json!([{"name": "g", "description": "d", "members": 2}]),
            );
            ctx.insert(
                "clients",
                &serde_json::json!([{"id": "c1", "name": "Kirjasto <b>", "scopes": "openid", "redirect_uris": ["https://x/cb"],
                    "grant_types": ["authorization_code"], "public": false, "national_id": true, "permissions": "directory",
                    "consent": true, "pairwise": false, "disabled": false}]),
            );
            ctx.insert("client_id", "c1");
            ctx.insert("secret", "s3cr3t");
            ctx.insert(
                "events",
                &serde_json::json!([{"seq": 1, "at": "x", "at_iso": "x", "type": "login.success", "outcome": "success",
                    "actor": "u1", "subject": "u1", "ip": null, "details": "<script>x</script>"}]),
            );
            ctx.insert(
                "filter",
                &serde_json::json!({"type": "login.", "subject": null, "actor": null}),
            );
            ctx.insert("next_href", "/admin/audit?before=1");
            ctx.insert("verify", &serde_json::json!({"checked": 3, "broken": null}));
            ctx.insert("metadata_url", "https://idp.example.fi/saml/metadata");
            ctx.insert("known_attributes", "givenName, mail");
            ctx.insert(
                "sps",
                &serde_json::json!([{"entity_id": "https://sp/<script>x</script>", "enabled": true, "trusted": true,
                    "assertion_consumer_services": [{"location": "https://sp/acs"}], "attributes": ["mail"],
                    "release_permissions": "", "valid_until": null, "source_url": null, "expired_certificates": 0,
                    "name_id_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
                    "require_signed_requests": true, "encrypt_assertions": false, "sign_response": false,
                    "allow_national_id": false}]),
            );
            for (name, _) in TEMPLATES.iter().filter(|(n, _)| !n.starts_with("layout/")) {
                let html = t
                    .render(name, &ctx)
                    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())));
                assert!(!html.contains("<script>x</script>"), "{name} must escape");
                assert!(!html.contains("Kirjasto <b>"), "{name} must escape");
            }
        }
    }
}
