//! Editing the service directory (`/services/directory/manage/…`): add, edit and remove services,
//! import and export the JSON catalogue. For people holding `directory:edit`, asked from the
//! IdP's access-rights API at every request (a revoked right stops at once). Every change is
//! recorded in the IdP's audit log before it is made; when the log cannot be written, nothing
//! changes.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_schema::directory as store;
use serde::Deserialize;
use serde_json::json;

use super::catalogue::{self, CatalogueError, ServiceDoc, Texts, AUTH_LEVELS};
use crate::kit::{render, see_other, Kit, KitError, Resident};

pub const BASE: &str = "/services/directory/manage";
/// The right that lets a person edit the directory.
pub const SERVICE: &str = "directory";
pub const FUNCTION: &str = "edit";

/// The largest catalogue accepted through the import form.
const MAX_IMPORT: usize = 2 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig, kit: web::Data<Kit>) {
    let k = |kit: &web::Data<Kit>| kit.clone();
    let (k1, k2, k3, k4, k5, k6, k7) = (k(&kit), k(&kit), k(&kit), k(&kit), k(&kit), k(&kit), kit);
    cfg.route(
        &format!("{BASE}/"),
        web::get().to(move |req: HttpRequest, q: web::Query<Notice>| {
            let kit = k1.clone();
            async move { list(kit, req, q.into_inner()).await }
        }),
    )
    .route(
        &format!("{BASE}/new"),
        web::get().to(move |req: HttpRequest| {
            let kit = k2.clone();
            async move { edit_form(kit, req, None).await }
        }),
    )
    .route(
        &format!("{BASE}/edit/{{id}}"),
        web::get().to(move |req: HttpRequest, id: web::Path<String>| {
            let kit = k3.clone();
            async move { edit_form(kit, req, Some(id.into_inner())).await }
        }),
    )
    .route(
        &format!("{BASE}/save"),
        web::post().to(move |req: HttpRequest, f: web::Form<ServiceForm>| {
            let kit = k4.clone();
            async move { save(kit, req, f.into_inner()).await }
        }),
    )
    .route(
        &format!("{BASE}/delete/{{id}}"),
        web::post().to(
            move |req: HttpRequest, id: web::Path<String>, f: web::Form<CsrfForm>| {
                let kit = k5.clone();
                async move { delete(kit, req, id.into_inner(), f.into_inner()).await }
            },
        ),
    )
    .service(
        web::resource(format!("{BASE}/import"))
            .app_data(web::FormConfig::default().limit(MAX_IMPORT))
            .route(
                web::post().to(move |req: HttpRequest, f: web::Form<ImportForm>| {
                    let kit = k6.clone();
                    async move { import(kit, req, f.into_inner()).await }
                }),
            ),
    )
    .route(
        &format!("{BASE}/export.json"),
        web::get().to(move |req: HttpRequest| {
            let kit = k7.clone();
            async move { export(kit, req).await }
        }),
    );
}

/// What the list page reports after a change (`?done=saved|deleted|imported&n=…`).
#[derive(Debug, Deserialize)]
pub struct Notice {
    done: Option<String>,
    n: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ImportForm {
    csrf: Option<String>,
    catalogue: String,
}

/// The edit form's fields (lists comma-separated).
#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub struct ServiceForm {
    #[serde(default)]
    csrf: Option<String>,
    /// `new` or `edit`: a new service must not overwrite an existing one.
    #[serde(default)]
    mode: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name_fi: String,
    #[serde(default)]
    name_sv: String,
    #[serde(default)]
    name_en: String,
    #[serde(default)]
    description_fi: String,
    #[serde(default)]
    description_sv: String,
    #[serde(default)]
    description_en: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    channel_url: String,
    #[serde(default)]
    auth_level: String,
    #[serde(default)]
    keywords: String,
    #[serde(default)]
    target_groups: String,
    #[serde(default)]
    municipalities: String,
    #[serde(default)]
    built_in: Option<String>,
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

impl ServiceForm {
    fn from_doc(d: &ServiceDoc) -> ServiceForm {
        ServiceForm {
            csrf: None,
            mode: "edit".into(),
            id: d.id.clone(),
            name_fi: d.name.fi.clone(),
            name_sv: d.name.sv.clone(),
            name_en: d.name.en.clone(),
            description_fi: d.description.fi.clone(),
            description_sv: d.description.sv.clone(),
            description_en: d.description.en.clone(),
            provider: d.provider.clone(),
            channel_url: d.channel_url.clone(),
            auth_level: d.auth_level.clone(),
            keywords: d.keywords.join(", "),
            target_groups: d.target_groups.join(", "),
            municipalities: d.municipalities.join(", "),
            built_in: d.built_in.then(|| "on".to_owned()),
        }
    }

    fn to_doc(&self) -> ServiceDoc {
        let t = |s: &String| s.trim().to_owned();
        ServiceDoc {
            id: t(&self.id),
            name: Texts {
                fi: t(&self.name_fi),
                sv: t(&self.name_sv),
                en: t(&self.name_en),
            },
            description: Texts {
                fi: t(&self.description_fi),
                sv: t(&self.description_sv),
                en: t(&self.description_en),
            },
            provider: t(&self.provider),
            channel_url: t(&self.channel_url),
            auth_level: t(&self.auth_level),
            keywords: split(&self.keywords),
            target_groups: split(&self.target_groups),
            municipalities: split(&self.municipalities),
            built_in: self.built_in.is_some(),
        }
    }
}

/// The editor, or the response to send instead: a login redirect for visitors, 403 for those
/// without the right.
async fn editor(
    kit: &web::Data<Kit>,
    req: &HttpRequest,
) -> Result<Result<Resident, HttpResponse>, KitError> {
    let return_to = if req.method() == actix_web::http::Method::GET {
        req.uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| format!("{BASE}/"))
    } else {
        format!("{BASE}/")
    };
    let resident = match kit.require(req, &return_to).await? {
        Ok(r) => r,
        Err(resp) => return Ok(Err(resp)),
    };
    if kit.rp.may(&resident.sub, SERVICE, FUNCTION, false).await? {
        Ok(Ok(resident))
    } else {
        Ok(Err(message(
            kit,
            req,
            StatusCode::FORBIDDEN,
            &resident,
            "error.forbidden",
        )))
    }
}

/// A translated text: `key` is `section.name` of the translation tables.
fn text(kit: &Kit, req: &HttpRequest, key: &str) -> String {
    let table = kit.templates.tr.table(render::negotiate(req));
    let (section, name) = key.split_once('.').unwrap_or(("", key));
    table[section][name].as_str().unwrap_or(key).to_owned()
}

/// A message page in the directory's frame; `key` names its text.
fn message(
    kit: &Kit,
    req: &HttpRequest,
    status: StatusCode,
    resident: &Resident,
    key: &str,
) -> HttpResponse {
    let mut ctx = tera::Context::new();
    ctx.insert("heading", &text(kit, req, "directory.manage"));
    ctx.insert("message", &text(kit, req, key));
    kit.page(req, status, "services/message.html", Some(resident), ctx)
}

async fn list(kit: web::Data<Kit>, req: HttpRequest, q: Notice) -> Result<HttpResponse, KitError> {
    let resident = match editor(&kit, &req).await? {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    let lang = render::negotiate(&req);
    let db = kit.db.clone();
    let all = web::block(move || store::services(&mut *db.conn()?)).await??;
    let entries: Vec<_> = all
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "name": match lang {
                    render::Lang::Fi => &s.name_fi,
                    render::Lang::Sv => &s.name_sv,
                    render::Lang::En => &s.name_en,
                },
                "provider": s.provider,
            })
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("entries", &entries);
    ctx.insert("csrf", &resident.csrf);
    ctx.insert("base", BASE);
    ctx.insert(
        "done",
        &q.done
            .filter(|d| ["saved", "deleted", "imported"].contains(&d.as_str())),
    );
    ctx.insert("n", &q.n.unwrap_or(0));
    ctx.insert("error", &Option::<String>::None);
    Ok(kit.page(
        &req,
        StatusCode::OK,
        "services/directory_manage.html",
        Some(&resident),
        ctx,
    ))
}

fn form_page(
    kit: &Kit,
    req: &HttpRequest,
    status: StatusCode,
    resident: &Resident,
    form: &ServiceForm,
    error: Option<String>,
) -> HttpResponse {
    let mut ctx = tera::Context::new();
    ctx.insert("f", form);
    ctx.insert("csrf", &resident.csrf);
    ctx.insert("base", BASE);
    ctx.insert("levels", &AUTH_LEVELS);
    ctx.insert("error", &error);
    kit.page(
        req,
        status,
        "services/directory_edit.html",
        Some(resident),
        ctx,
    )
}

async fn edit_form(
    kit: web::Data<Kit>,
    req: HttpRequest,
    id: Option<String>,
) -> Result<HttpResponse, KitError> {
    let resident = match editor(&kit, &req).await? {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    let form = match id {
        None => ServiceForm {
            mode: "new".into(),
            auth_level: "password".into(),
            ..ServiceForm::default()
        },
        Some(id) => {
            let db = kit.db.clone();
            match web::block(move || store::service(&mut *db.conn()?, &id)).await?? {
                Some(s) => ServiceForm::from_doc(&ServiceDoc::from_row(&s)),
                None => {
                    return Ok(message(
                        &kit,
                        &req,
                        StatusCode::NOT_FOUND,
                        &resident,
                        "error.not_found",
                    ))
                }
            }
        }
    };
    Ok(form_page(
        &kit,
        &req,
        StatusCode::OK,
        &resident,
        &form,
        None,
    ))
}

fn csrf_refused(kit: &Kit, req: &HttpRequest, resident: &Resident) -> HttpResponse {
    message(
        kit,
        req,
        StatusCode::FORBIDDEN,
        resident,
        "login.error_csrf",
    )
}

/// Writes the audit record first: no record, no change.
async fn audited(
    kit: &Kit,
    resident: &Resident,
    event: &str,
    details: serde_json::Value,
) -> Result<(), KitError> {
    kit.rp
        .audit(event, Some(&resident.sub), details)
        .await
        .map_err(KitError::from)
}

async fn save(
    kit: web::Data<Kit>,
    req: HttpRequest,
    form: ServiceForm,
) -> Result<HttpResponse, KitError> {
    let resident = match editor(&kit, &req).await? {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    if !Kit::csrf_ok(&resident, form.csrf.as_deref()) {
        return Ok(csrf_refused(&kit, &req, &resident));
    }
    let doc = form.to_doc();
    let (db, id, new) = (kit.db.clone(), doc.id.clone(), form.mode != "edit");
    let exists = web::block(move || store::service(&mut *db.conn()?, &id)).await??;
    if new && exists.is_some() {
        let msg = text(&kit, &req, "directory.id_taken");
        return Ok(form_page(
            &kit,
            &req,
            StatusCode::CONFLICT,
            &resident,
            &form,
            Some(msg),
        ));
    }
    // Validate before the audit record, so refused input leaves no "saved" event.
    let (db, d) = (kit.db.clone(), doc.clone());
    if let Err(e) = web::block(move || catalogue::validate(&mut *db.conn()?, &d)).await? {
        return match e {
            CatalogueError::Db(e) => Err(e.into()),
            other => Ok(form_page(
                &kit,
                &req,
                StatusCode::BAD_REQUEST,
                &resident,
                &form,
                Some(other.to_string()),
            )),
        };
    }
    audited(
        &kit,
        &resident,
        "directory.service_saved",
        json!({ "service": doc.id, "new": exists.is_none() }),
    )
    .await?;
    let db = kit.db.clone();
    let stored = web::block(move || {
        catalogue::store(&mut *db.conn()?, vec![doc], kuntalaistili_schema::now_utc())
    })
    .await?;
    match stored {
        Ok(_) => Ok(see_other(&format!("{BASE}/?done=saved"))),
        Err(CatalogueError::Db(e)) => Err(e.into()),
        Err(other) => Ok(form_page(
            &kit,
            &req,
            StatusCode::BAD_REQUEST,
            &resident,
            &form,
            Some(other.to_string()),
        )),
    }
}

async fn delete(
    kit: web::Data<Kit>,
    req: HttpRequest,
    id: String,
    form: CsrfForm,
) -> Result<HttpResponse, KitError> {
    let resident = match editor(&kit, &req).await? {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    if !Kit::csrf_ok(&resident, form.csrf.as_deref()) {
        return Ok(csrf_refused(&kit, &req, &resident));
    }
    let (db, i) = (kit.db.clone(), id.clone());
    if web::block(move || store::service(&mut *db.conn()?, &i))
        .await??
        .is_none()
    {
        return Ok(message(
            &kit,
            &req,
            StatusCode::NOT_FOUND,
            &resident,
            "error.not_found",
        ));
    }
    audited(
        &kit,
        &resident,
        "directory.service_removed",
        json!({ "service": id }),
    )
    .await?;
    let db = kit.db.clone();
    web::block(move || store::delete_service(&mut *db.conn()?, &id)).await??;
    Ok(see_other(&format!("{BASE}/?done=deleted")))
}

async fn import(
    kit: web::Data<Kit>,
    req: HttpRequest,
    form: ImportForm,
) -> Result<HttpResponse, KitError> {
    let resident = match editor(&kit, &req).await? {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    if !Kit::csrf_ok(&resident, form.csrf.as_deref()) {
        return Ok(csrf_refused(&kit, &req, &resident));
    }
    let parsed: Result<catalogue::Catalogue, _> = serde_json::from_str(&form.catalogue);
    let checked = match parsed {
        Ok(cat) => {
            let db = kit.db.clone();
            web::block(move || -> Result<Vec<ServiceDoc>, CatalogueError> {
                let mut conn = db.conn()?;
                for s in &cat.services {
                    catalogue::validate(&mut conn, s)?;
                }
                Ok(cat.services)
            })
            .await?
        }
        Err(e) => Err(CatalogueError::Parse(e)),
    };
    let services = match checked {
        Ok(s) => s,
        Err(CatalogueError::Db(e)) => return Err(e.into()),
        Err(e) => {
            return Ok(import_failed(
                &kit,
                &req,
                &resident,
                StatusCode::BAD_REQUEST,
                &e,
            ))
        }
    };
    let ids: Vec<&str> = services.iter().map(|s| s.id.as_str()).collect();
    audited(
        &kit,
        &resident,
        "directory.imported",
        json!({ "services": ids }),
    )
    .await?;
    let db = kit.db.clone();
    let stored = web::block(move || {
        catalogue::store(&mut *db.conn()?, services, kuntalaistili_schema::now_utc())
    })
    .await?;
    match stored {
        Ok(n) => Ok(see_other(&format!("{BASE}/?done=imported&n={n}"))),
        Err(CatalogueError::Db(e)) => Err(e.into()),
        // The classification changed between the check and the store: nothing was stored.
        Err(other) => Ok(import_failed(
            &kit,
            &req,
            &resident,
            StatusCode::CONFLICT,
            &other,
        )),
    }
}

/// Why an import was refused (nothing of it was stored).
fn import_failed(
    kit: &Kit,
    req: &HttpRequest,
    resident: &Resident,
    status: StatusCode,
    e: &CatalogueError,
) -> HttpResponse {
    let mut ctx = tera::Context::new();
    ctx.insert("heading", &text(kit, req, "directory.import_title"));
    ctx.insert(
        "message",
        &format!("{}: {e}", text(kit, req, "directory.import_failed")),
    );
    kit.page(req, status, "services/message.html", Some(resident), ctx)
}

async fn export(kit: web::Data<Kit>, req: HttpRequest) -> Result<HttpResponse, KitError> {
    if let Err(resp) = editor(&kit, &req).await? {
        return Ok(resp);
    }
    let db = kit.db.clone();
    let cat = web::block(move || catalogue::export(&mut *db.conn()?)).await??;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"directory-services.json\"",
        ))
        .json(cat))
}
