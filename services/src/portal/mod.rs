//! The portal front page `/`: for a visitor, the service directory's sub-regions and a login
//! button; for a logged-in resident, their unread notices first, then their services and recent
//! notices. A resident already logged in at the IdP is recognised without a click (silent SSO).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::notices::{self, Filter};
use kuntalaistili_schema::DbError;

use crate::kit::{self, see_other, Kit, KitError};
use crate::noticeboard;

/// Mounts the front page and the portal's kit routes.
pub fn configure(cfg: &mut web::ServiceConfig, kit: web::Data<Kit>) {
    kit::configure(cfg, kit.clone());
    cfg.route(
        "/",
        web::get().to(move |req: HttpRequest| {
            let kit = kit.clone();
            async move { front_page(kit, req).await }
        }),
    );
}

async fn front_page(kit: web::Data<Kit>, req: HttpRequest) -> Result<HttpResponse, KitError> {
    let resident = kit.resident(&req).await?;
    if resident.is_none() && kit.may_try_silent(&req) {
        return Ok(see_other(&format!(
            "{}?silent=1&return_to=/",
            kit.cfg.path(kit::LOGIN)
        )));
    }
    let db = kit.db.clone();
    let sub = resident.as_ref().map(|r| r.sub.clone());
    let (unread_list, recent, unread, regions) = web::block(move || -> Result<_, DbError> {
        let mut conn = db.conn()?;
        // Visitors see the sub-regions; residents their notices.
        let Some(sub) = sub else {
            let (regions, _) = kuntalaistili_schema::directory::classification(&mut conn)?;
            return Ok((vec![], vec![], 0, regions));
        };
        let unread_list = notices::list(
            &mut conn,
            &sub,
            &Filter {
                unread_only: true,
                limit: 5,
                ..Filter::default()
            },
        )?;
        let recent = notices::list(
            &mut conn,
            &sub,
            &Filter {
                limit: 5,
                ..Filter::default()
            },
        )?;
        Ok((
            unread_list,
            recent,
            notices::unread_count(&mut conn, &sub)?,
            vec![],
        ))
    })
    .await??;
    let mut ctx = tera::Context::new();
    ctx.insert(
        "unread_notices",
        &unread_list
            .iter()
            .map(noticeboard::notice_json)
            .collect::<Vec<_>>(),
    );
    ctx.insert(
        "recent_notices",
        &recent
            .iter()
            .filter(|n| n.read_at.is_some())
            .map(noticeboard::notice_json)
            .collect::<Vec<_>>(),
    );
    ctx.insert("unread", &unread);
    let regions: Vec<serde_json::Value> = regions
        .iter()
        .map(|r| serde_json::json!({ "code": r.code, "name_fi": r.name_fi, "name_sv": r.name_sv }))
        .collect();
    ctx.insert("regions", &regions);
    if let Some(r) = &resident {
        ctx.insert("csrf", &r.csrf);
    }
    Ok(kit.page(
        &req,
        StatusCode::OK,
        "services/front.html",
        resident.as_ref(),
        ctx,
    ))
}
