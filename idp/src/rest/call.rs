//! The shape every handler of the JSON APIs under `/api/v1` shares (the administrators' REST API,
//! the access-rights API): the caller's token must carry a scope ([`Call::start`]), the work runs
//! on the blocking pool ([`Call::run`]), and whatever goes wrong is answered as RFC 7807 problem
//! JSON ([`Problem`]). A handler that is only that is one call of [`scoped`]; others write their
//! steps with `?` inside [`respond`].

use std::future::Future;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use kuntalaistili_connectors::http::{problem, read_limited};
use kuntalaistili_schema::DbError;
use serde_json::Value;

use crate::api::{caller, Caller};
use crate::IdpState;

/// A status and a JSON body (none for 204).
pub type Reply = (StatusCode, Value);

/// An error with its problem JSON answer.
pub trait Problem {
    fn answer(self) -> HttpResponse;
}

/// Storage failed: 503, try again.
impl Problem for DbError {
    fn answer(self) -> HttpResponse {
        unavailable()
    }
}

/// A call whose caller holds the scope it needs.
pub struct Call {
    state: web::Data<IdpState>,
    /// The calling client.
    pub caller: Caller,
}

impl Call {
    /// The call, when the caller's token is ours, live and carries `scope`; its problem JSON
    /// answer (401, 403, 503) otherwise.
    pub async fn start(
        state: &web::Data<IdpState>,
        req: &HttpRequest,
        scope: &str,
    ) -> Result<Call, HttpResponse> {
        Ok(Call {
            state: state.clone(),
            caller: caller(state, req, scope).await?,
        })
    }

    /// The calling client as an audit actor: `client:<id>`.
    pub fn actor(&self) -> String {
        format!("client:{}", self.caller.client_id)
    }

    /// Runs `work` on the blocking pool: its result, or its error as problem JSON (503 when the
    /// pool failed).
    pub async fn run<T, E>(
        &self,
        work: impl FnOnce(&IdpState) -> Result<T, E> + Send + 'static,
    ) -> Result<T, HttpResponse>
    where
        T: Send + 'static,
        E: Problem + Send + 'static,
    {
        let st = self.state.clone();
        match web::block(move || work(&st)).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => Err(e.answer()),
            Err(_) => Err(unavailable()),
        }
    }
}

/// The whole of a handler that checks the scope, reads its input, and does its work on the
/// blocking pool: the caller must hold `scope`; `input` (a body, say; [`nothing`] for none) is
/// read next; `work` runs with the caller as audit actor (`client:<id>`) and the input, and its
/// [`Reply`] is the answer. Every failure on the way is problem JSON.
pub async fn scoped<I, E>(
    state: &web::Data<IdpState>,
    req: &HttpRequest,
    scope: &str,
    input: impl Future<Output = Result<I, HttpResponse>>,
    work: impl FnOnce(&IdpState, String, I) -> Result<Reply, E> + Send + 'static,
) -> HttpResponse
where
    I: Send + 'static,
    E: Problem + Send + 'static,
{
    respond(
        async {
            let call = Call::start(state, req, scope).await?;
            let input = input.await?;
            let actor = call.actor();
            call.run(move |st| work(st, actor, input)).await.map(reply)
        }
        .await,
    )
}

/// No input for [`scoped`].
pub fn nothing() -> std::future::Ready<Result<(), HttpResponse>> {
    std::future::ready(Ok(()))
}

/// The answer of a handler written with `?`: both ways end in a response.
pub fn respond(r: Result<HttpResponse, HttpResponse>) -> HttpResponse {
    r.unwrap_or_else(|resp| resp)
}

/// A [`Reply`] as the answer: JSON that caches nowhere, or 204 without a body.
pub fn reply((status, v): Reply) -> HttpResponse {
    if status == StatusCode::NO_CONTENT {
        return HttpResponse::NoContent().finish();
    }
    json_ok(status, &v)
}

/// A JSON answer that caches nowhere.
pub fn json_ok(status: StatusCode, v: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(v)
}

/// 503 problem JSON.
pub fn unavailable() -> HttpResponse {
    problem(StatusCode::SERVICE_UNAVAILABLE, "try again shortly")
}

/// A JSON body of at most `limit` bytes; 413 or 400 problem JSON otherwise.
pub async fn body_limited<T: serde::de::DeserializeOwned>(
    payload: web::Payload,
    limit: usize,
) -> Result<T, HttpResponse> {
    let bytes = read_limited(payload, limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| problem(StatusCode::BAD_REQUEST, &format!("malformed body: {e}")))
}
