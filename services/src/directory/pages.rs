//! The service directory's pages (`/services/directory/`): services grouped by sub-region and
//! municipality, searchable by text and filterable by seutukunta, in the resident's language.
//! Public: no login needed; the header shows the resident when the portal knows them.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::DbError;
use serde::Deserialize;

use super::catalogue;
use crate::kit::{render, Kit, KitError};

pub const PAGE: &str = "/services/directory/";

/// Mounts the directory page; `kit` is the portal's (whose session names the resident).
pub fn configure(cfg: &mut web::ServiceConfig, kit: web::Data<Kit>) {
    super::manage::configure(cfg, kit.clone());
    cfg.route(
        PAGE,
        web::get().to(move |req: HttpRequest, q: web::Query<PageQuery>| {
            let kit = kit.clone();
            async move { page(kit, req, q.into_inner()).await }
        }),
    );
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    seutukunta: Option<String>,
    q: Option<String>,
}

async fn page(
    kit: web::Data<Kit>,
    req: HttpRequest,
    q: PageQuery,
) -> Result<HttpResponse, KitError> {
    let lang = render::negotiate(&req);
    let resident = kit.resident(&req).await?;
    // Editors see the way to the edit pages (a failed check just hides the link).
    let editor = match &resident {
        Some(r) => kit
            .rp
            .may(
                &r.sub,
                super::manage::SERVICE,
                super::manage::FUNCTION,
                true,
            )
            .await
            .unwrap_or(false),
        None => false,
    };
    let region = q
        .seutukunta
        .filter(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()));
    let text =
        q.q.map(|t| t.chars().take(200).collect::<String>())
            .filter(|t| !t.trim().is_empty());
    let db = kit.db.clone();
    let (r, t) = (region.clone(), text.clone());
    let (regions, municipalities, found) = web::block(move || -> Result<_, DbError> {
        let mut conn = db.conn()?;
        let services = kuntalaistili_schema::directory::services(&mut conn)?;
        let (regions, municipalities) = kuntalaistili_schema::directory::classification(&mut conn)?;
        let found = catalogue::search(&services, &municipalities, r.as_deref(), t.as_deref());
        Ok((regions, municipalities, found))
    })
    .await??;
    let pick = |t: &catalogue::Texts| match lang {
        render::Lang::Fi => t.fi.clone(),
        render::Lang::Sv => t.sv.clone(),
        render::Lang::En => t.en.clone(),
    };
    let names: std::collections::HashMap<&str, &str> = municipalities
        .iter()
        .map(|m| (m.code.as_str(), m.name_fi.as_str()))
        .collect();
    let services: Vec<serde_json::Value> = found
        .iter()
        .map(|s| {
            let places: Vec<&str> = s
                .municipalities
                .iter()
                .filter_map(|c| names.get(c.as_str()).copied())
                .collect();
            serde_json::json!({
                "name": pick(&s.name),
                "description": pick(&s.description),
                "provider": s.provider,
                "url": s.channel_url,
                "auth_level": s.auth_level,
                "municipalities": places,
            })
        })
        .collect();
    let region_list: Vec<serde_json::Value> = regions
        .iter()
        .map(|r| {
            let name = if lang == render::Lang::Sv {
                &r.name_sv
            } else {
                &r.name_fi
            };
            serde_json::json!({ "code": r.code, "name": name })
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("entries", &services);
    ctx.insert("regions", &region_list);
    ctx.insert("selected", &region);
    ctx.insert("q", &text.unwrap_or_default());
    ctx.insert("editor", &editor);
    ctx.insert("manage_href", &format!("{}/", super::manage::BASE));
    Ok(kit.page(
        &req,
        StatusCode::OK,
        "services/directory.html",
        resident.as_ref(),
        ctx,
    ))
}
