//! Listing resources: the query parameters (RFC 7644 §3.4.2), filtering and pagination.

use actix_web::{web, HttpRequest};
use serde_json::{json, Value};

use super::http::Refusal;
use super::{filter, LIST_SCHEMA, MAX_COUNT};

pub(super) fn list_response(total: usize, start: usize, items: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct ListQuery {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<i64>,
    count: Option<i64>,
}

pub(super) fn parse_list_query(
    req: &HttpRequest,
) -> Result<(Option<filter::Filter>, usize, usize), Refusal> {
    let q = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| Refusal::bad("invalidValue", &e.to_string()))?
        .into_inner();
    let f = match q.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        Some(f) => Some(filter::parse(f).map_err(|e| Refusal::bad("invalidFilter", &e.0))?),
        None => None,
    };
    // RFC 7644 §3.4.2.4: startIndex < 1 means 1; a negative count means 0.
    let start = q.start_index.unwrap_or(1).max(1) as usize;
    let count = q.count.unwrap_or(100).clamp(0, MAX_COUNT as i64) as usize;
    Ok((f, start, count))
}

pub(super) fn page(
    docs: Vec<Value>,
    f: Option<&filter::Filter>,
    start: usize,
    count: usize,
) -> Value {
    let matching: Vec<Value> = docs
        .into_iter()
        .filter(|d| f.is_none_or(|f| filter::matches(f, d)))
        .collect();
    let total = matching.len();
    let items = matching.into_iter().skip(start - 1).take(count).collect();
    list_response(total, start, items)
}
