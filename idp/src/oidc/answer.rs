//! Answers to the client at its (already validated) redirect URI: a 303 with the fields in the
//! query, or — `response_mode=form_post` — a self-submitting form whose one script is allowed by
//! its hash; every answer carries `iss` (RFC 9207).

use actix_web::http::header;
use actix_web::HttpResponse;
use serde_json::json;

use crate::IdpState;

/// Where and how the answer goes back to the client (known good).
#[derive(Debug, Clone)]
pub struct Reply {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub form_post: bool,
}

/// A 303 to `to`, not to be cached.
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// An error back to the client.
pub fn reply_error(state: &IdpState, r: &Reply, code: &str, description: &str) -> HttpResponse {
    let mut fields = vec![
        ("error", code.to_owned()),
        ("error_description", description.to_owned()),
    ];
    if let Some(s) = &r.state {
        fields.push(("state", s.clone()));
    }
    fields.push(("iss", state.settings.public_url.clone()));
    reply(state, r, fields)
}

/// The answer to the client: a 303 redirect with the fields in the query, or (form_post) an
/// auto-submitting form whose script is allowed by hash alone.
pub fn reply(state: &IdpState, r: &Reply, fields: Vec<(&str, String)>) -> HttpResponse {
    if !r.form_post {
        let Ok(mut url) = url::Url::parse(&r.redirect_uri) else {
            return HttpResponse::BadRequest().finish();
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in &fields {
                q.append_pair(k, v);
            }
        }
        return see_other(url.as_str());
    }
    post_form(state, &r.redirect_uri, fields)
}

/// An auto-submitting form that POSTs `fields` to `action` (a known-good address): its one script
/// is allowed by hash, and without JavaScript the resident presses the button.
pub fn post_form(state: &IdpState, action: &str, fields: Vec<(&str, String)>) -> HttpResponse {
    let origin = url::Url::parse(action)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let mut ctx = tera::Context::new();
    ctx.insert("lang", "fi");
    ctx.insert("action", action);
    let list: Vec<serde_json::Value> = fields
        .iter()
        .map(|(k, v)| json!({ "name": k, "value": v }))
        .collect();
    ctx.insert("fields", &list);
    let body = match state.templates.render("idp/form_post.html", &ctx) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = ?e, "form_post template failed");
            return HttpResponse::InternalServerError().finish();
        }
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'none'; script-src '{}'; form-action {origin}; frame-ancestors 'none'; base-uri 'none'",
                crate::render::form_post_script_hash()
            ),
        ))
        .body(body)
}
