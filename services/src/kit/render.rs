//! The services' pages: their own tera templates (the service layout and each service's pages,
//! compiled into the binary) with the shared fi/sv/en texts.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
pub use kuntalaistili_connectors::i18n::{negotiate, Lang, Translations};
use tera::{Context, Tera};

use super::Resident;

/// Every service template, by the name it is rendered under.
pub const TEMPLATES: [(&str, &str); 8] = [
    (
        "layout/base.html",
        include_str!("../../../templates/layout/base.html"),
    ),
    (
        "layout/service.html",
        include_str!("../../../templates/layout/service.html"),
    ),
    (
        "services/message.html",
        include_str!("../../../templates/services/message.html"),
    ),
    (
        "services/front.html",
        include_str!("../../../templates/services/front.html"),
    ),
    (
        "services/noticeboard.html",
        include_str!("../../../templates/services/noticeboard.html"),
    ),
    (
        "services/directory.html",
        include_str!("../../../templates/services/directory.html"),
    ),
    (
        "services/directory_manage.html",
        include_str!("../../../templates/services/directory_manage.html"),
    ),
    (
        "services/directory_edit.html",
        include_str!("../../../templates/services/directory_edit.html"),
    ),
];

pub struct Templates {
    tera: Tera,
    pub tr: Translations,
}

impl Templates {
    pub fn load() -> Result<Templates, String> {
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html"]);
        tera.add_raw_templates(TEMPLATES.to_vec())
            .map_err(|e| format!("service templates: {e:?}"))?;
        Ok(Templates {
            tera,
            tr: Translations::load()?,
        })
    }

    /// The common context: language, texts, path (for the language switch), the resident.
    pub fn context(&self, lang: Lang, path: &str, resident: Option<&Resident>) -> Context {
        let mut ctx = Context::new();
        ctx.insert("lang", lang.code());
        ctx.insert("tr", self.tr.table(lang));
        ctx.insert("path", path);
        if let Some(r) = resident {
            ctx.insert(
                "user",
                &serde_json::json!({ "display_name": r.name, "csrf": r.csrf }),
            );
        }
        ctx
    }

    pub fn render(&self, name: &str, ctx: &Context) -> Result<String, tera::Error> {
        self.tera.render(name, ctx)
    }

    /// An HTML response from a template (see [`kuntalaistili_connectors::http::page`]).
    pub fn html(
        &self,
        req: &HttpRequest,
        status: StatusCode,
        template: &str,
        ctx: &Context,
    ) -> HttpResponse {
        kuntalaistili_connectors::http::page(
            req,
            status,
            template,
            self.render(template, ctx),
            vec![],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every service template renders in every language with a fixture context.
    #[test]
    fn every_service_template_renders_in_every_language() {
        let t = Templates::load().unwrap();
        let notice = serde_json::json!({"id": "n1", "service": "Rakennusvalvonta", "title": "<b>Lupa</b>",
            "body": "Teksti", "link": "https://x.example.fi/", "status": "received",
            "created_at": "2026-01-01T10:00:00Z", "created": "1.1.2026 10.00", "read": false, "archived": false});
        for lang in Lang::ALL {
            for logged_in in [false, true] {
                let mut ctx = t.context(lang, "/", None);
                if logged_in {
                    ctx.insert(
                        "user",
                        &serde_json::json!({"display_name": "Maija", "csrf": "c"}),
                    );
                }
                ctx.insert("logout_action", "/auth/logout");
                ctx.insert("login_href", "/auth/login");
                ctx.insert("heading", "H");
                ctx.insert("message", "M");
                ctx.insert("unread_notices", &[&notice]);
                ctx.insert("recent_notices", &[&notice]);
                ctx.insert("notices", &[&notice]);
                ctx.insert("unread", &3);

                ctx.insert("selected", &Some("Rakennusvalvonta"));
                ctx.insert("archived", &false);
                ctx.insert("csrf", "c");
                ctx.insert("q", "kirjasto");
                ctx.insert("services", &["Rakennusvalvonta"]);
                ctx.insert("entries", &[serde_json::json!({"id": "lupa", "name": "<b>Lupa</b>", "description": "D", "provider": "P",
                    "url": "https://x.example.fi/", "auth_level": "strong", "municipalities": ["Helsinki"]})]);
                ctx.insert("back", "/services/noticeboard/");
                ctx.insert("editor", &true);
                ctx.insert("manage_href", "/services/directory/manage/");
                ctx.insert("base", "/services/directory/manage");
                ctx.insert("done", &Some("imported"));
                ctx.insert("n", &2);
                ctx.insert("error", &Some("<b>Lupa</b>"));
                ctx.insert("levels", &["none", "password", "strong"]);
                ctx.insert(
                    "f",
                    &serde_json::json!({"mode": "new", "id": "x", "name_fi": "<b>Lupa</b>", "name_sv": "", "name_en": "",
                        "description_fi": "", "description_sv": "", "description_en": "", "provider": "", "channel_url": "",
                        "auth_level": "strong", "keywords": "", "target_groups": "", "municipalities": "091", "built_in": null}),
                );
                ctx.insert("regions", &[serde_json::json!({"code": "011", "name": "Helsingin", "name_fi": "Helsingin", "name_sv": "Helsingfors"})]);
                for (name, _) in TEMPLATES.iter().filter(|(n, _)| !n.starts_with("layout/")) {
                    let html = t
                        .render(name, &ctx)
                        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
                    assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())));
                    assert!(!html.contains("<b>Lupa</b>"), "{name} must escape");
                }
            }
        }
    }
}
