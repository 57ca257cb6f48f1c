//! The services' pages: their own tera templates (the service layout and each service's pages,
//! compiled into the binary) with the shared fi/sv/en texts.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
pub use kuntalaistili_connectors::i18n::{negotiate, Lang, Translations};
use tera::{Context, Tera};

use super::Resident;

/// Every service template, by the name it is rendered under.
pub const TEMPLATES: [(&str, &str); 15] = [
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
    (
        "services/reservations.html",
        include_str!("../../../templates/services/reservations.html"),
    ),
    (
        "services/reservation_calendar.html",
        include_str!("../../../templates/services/reservation_calendar.html"),
    ),
    (
        "services/reservations_mine.html",
        include_str!("../../../templates/services/reservations_mine.html"),
    ),
    (
        "services/reservations_manage.html",
        include_str!("../../../templates/services/reservations_manage.html"),
    ),
    (
        "services/reservations_unit.html",
        include_str!("../../../templates/services/reservations_unit.html"),
    ),
    (
        "services/reservations_report.html",
        include_str!("../../../templates/services/reservations_report.html"),
    ),
    (
        "services/testbank.html",
        include_str!("../../../templates/services/testbank.html"),
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
                // Booking pages.
                ctx.insert("kind", "facility");
                ctx.insert("resources", &[serde_json::json!({"id": "r1", "name": "<b>Lupa</b>", "capacity": 20, "free": false,
                    "price": "12,50 €", "manual": true, "description": "D", "unit": {"name": "U", "city": "C", "address": "A"}})]);
                ctx.insert(
                    "municipalities",
                    &[serde_json::json!({"code": "091", "name": "Helsinki"})],
                );
                ctx.insert(
                    "types",
                    &[serde_json::json!({"id": "t1", "name": "<b>Lupa</b>", "minutes": 30})],
                );
                ctx.insert("r", &serde_json::json!({"id": "r1", "name": "<b>Lupa</b>", "description": "D", "capacity": 20,
                    "equipment": "E", "terms": "T", "price": "12,50 €", "reduced_price": "5,00 €", "free": false, "manual": false,
                    "cancel_hours": 24, "strong": true}));
                ctx.insert("unit", &serde_json::json!({"id": "u1", "name": "<b>Lupa</b>", "address": "A", "contact": "C"}));
                ctx.insert("days", &[serde_json::json!({"date": "2027-01-15", "weekday": "pe", "label": "15.1.",
                    "slots": [{"begins_at": "2027-01-15T08:00:00Z", "label": "10.00–11.00", "status": "free"},
                              {"begins_at": "2027-01-15T09:00:00Z", "label": "11.00–12.00", "status": "taken"}],
                    "items": [{"id": "x", "span": "10.00–11.00", "resource": "<b>Lupa</b>", "state": "confirmed", "kind": "series",
                               "purpose": "P", "active": true}]})]);
                ctx.insert("lengths", &[serde_json::json!({"n": 1, "minutes": 60})]);
                ctx.insert("selected_type", &Some("t1"));
                ctx.insert("moving", &None::<String>);
                ctx.insert(
                    "confirm",
                    &serde_json::json!({"id": "x", "text": "<b>Lupa</b>"}),
                );
                for k in [
                    "week",
                    "prev_week",
                    "next_week",
                    "week_label",
                    "events_url",
                    "ics_url",
                    "login_to_book",
                    "today",
                    "from",
                    "to",
                ] {
                    ctx.insert(k, "2027-01-11");
                }
                let resv = serde_json::json!({"id": "x", "resource": "<b>Lupa</b>", "resource_id": "r1", "state": "waiting_for_payment",
                    "when": "15.1.2027 10.00–11.00", "price": "12,50 €", "message": "M", "purpose": "P", "active": true,
                    "upcoming": true, "cancellable": true, "payable": true, "pay_until": "10.20"});
                ctx.insert("upcoming", &[&resv]);
                ctx.insert("past", &[&resv]);
                ctx.insert("pending", &[&resv]);
                ctx.insert("test_bank", &true);
                ctx.insert("feed_url", "https://x.example.fi/feed/t.ics");
                ctx.insert("rows", &[serde_json::json!({"name": "<b>Lupa</b>", "confirmed": 1, "requires_handling": 0,
                    "waiting_for_payment": 0, "cancelled": 2, "denied": 0, "revenue": "0,00 €"})]);
                ctx.insert("p", &serde_json::json!({"id": "p1", "amount": "12,50 €", "description": "<b>Lupa</b>",
                    "reference": "R", "status": "new"}));
                ctx.insert("token", "t");
                ctx.insert(
                    "units",
                    &[serde_json::json!({"id": "u1", "name": "<b>Lupa</b>", "city": "C"})],
                );
                ctx.insert("f", &serde_json::json!({"mode": "new", "id": "x", "name_fi": "<b>Lupa</b>", "name_sv": "", "name_en": "",
                    "description_fi": "", "description_sv": "", "description_en": "", "provider": "", "channel_url": "",
                    "auth_level": "strong", "keywords": "", "target_groups": "", "municipalities": "091", "built_in": null,
                    "municipality": "091", "type": "hall", "capacity": "10", "free": true, "date": "2027-01-15", "hour": "10"}));
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
