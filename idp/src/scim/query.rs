//! Querying resources: the list parameters (RFC 7644 §3.4.2), the same as a SearchRequest body
//! (`POST …/.search`, §3.4.3), filtering, sorting (§3.4.2.3), pagination, and partial
//! representations (`attributes` / `excludedAttributes`, §3.4.2.5 and §3.9).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::http::{resource, Refusal};
use super::{filter, LIST_SCHEMA, MAX_COUNT};

const SEARCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// Core schema URNs an attribute path may start with (`urn:…:User:userName`).
const CORE_PREFIXES: [&str; 2] = [
    "urn:ietf:params:scim:schemas:core:2.0:user:",
    "urn:ietf:params:scim:schemas:core:2.0:group:",
];

pub(super) fn list_response(total: usize, start: usize, items: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

/// Which attributes a response carries (RFC 7644 §3.9): only `attributes` (when given), less
/// `excludedAttributes`. `id`, `schemas` and `meta` are always returned.
#[derive(Debug, Default, Clone)]
pub(super) struct Projection {
    attributes: Vec<String>,
    excluded: Vec<String>,
}

/// A list or search request.
#[derive(Debug, Clone)]
pub(super) struct Query {
    pub(super) filter: Option<filter::Filter>,
    pub(super) start: usize,
    pub(super) count: usize,
    /// `sortBy`, and whether descending.
    pub(super) sort: Option<(String, bool)>,
    pub(super) projection: Projection,
}

#[derive(Debug, serde::Deserialize)]
struct ListParams {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<i64>,
    count: Option<i64>,
    attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    excluded_attributes: Option<String>,
    #[serde(rename = "sortBy")]
    sort_by: Option<String>,
    #[serde(rename = "sortOrder")]
    sort_order: Option<String>,
}

fn names(list: Option<&str>) -> Vec<String> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `sortBy` and `sortOrder` (ascending unless said).
fn sort_from(by: Option<&str>, order: Option<&str>) -> Result<Option<(String, bool)>, Refusal> {
    let descending = match order.map(str::trim) {
        None | Some("") => false,
        Some(o) if o.eq_ignore_ascii_case("ascending") => false,
        Some(o) if o.eq_ignore_ascii_case("descending") => true,
        Some(_) => {
            return Err(Refusal::bad(
                "invalidValue",
                "sortOrder must be ascending or descending",
            ))
        }
    };
    Ok(by
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| (b.to_owned(), descending)))
}

fn query_from(
    f: Option<&str>,
    start: Option<i64>,
    count: Option<i64>,
    sort: Option<(String, bool)>,
    projection: Projection,
) -> Result<Query, Refusal> {
    let filter = match f.filter(|f| !f.trim().is_empty()) {
        Some(f) => Some(filter::parse(f).map_err(|e| Refusal::bad("invalidFilter", &e.0))?),
        None => None,
    };
    // RFC 7644 §3.4.2.4: startIndex < 1 means 1; a negative count means 0.
    let start = usize::try_from(start.unwrap_or(1).max(1)).unwrap_or(1);
    let count = usize::try_from(count.unwrap_or(100).clamp(0, MAX_COUNT as i64)).unwrap_or(0);
    Ok(Query {
        filter,
        start,
        count,
        sort,
        projection,
    })
}

/// The `attributes` / `excludedAttributes` URL parameters of a request for one resource.
pub(super) fn projection(req: &HttpRequest) -> Result<Projection, Refusal> {
    Ok(parse_list_query(req)?.projection)
}

/// The URL parameters of a list request (`GET /Users?filter=…&attributes=…`).
pub(super) fn parse_list_query(req: &HttpRequest) -> Result<Query, Refusal> {
    let q = web::Query::<ListParams>::from_query(req.query_string())
        .map_err(|e| Refusal::bad("invalidValue", &e.to_string()))?
        .into_inner();
    query_from(
        q.filter.as_deref(),
        q.start_index,
        q.count,
        sort_from(q.sort_by.as_deref(), q.sort_order.as_deref())?,
        Projection {
            attributes: names(q.attributes.as_deref()),
            excluded: names(q.excluded_attributes.as_deref()),
        },
    )
}

/// A SearchRequest message (RFC 7644 §3.4.3): the list parameters as a JSON body.
pub(super) fn parse_search(doc: &Value) -> Result<Query, Refusal> {
    let field = |name: &str| {
        doc.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
    };
    if let Some(schemas) = field("schemas") {
        if !schemas
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s == SEARCH_SCHEMA))
        {
            return Err(Refusal::bad(
                "invalidSyntax",
                "schemas must name the SearchRequest message",
            ));
        }
    }
    let list = |name: &str| -> Result<Vec<String>, Refusal> {
        match field(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(names(Some(s))),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str().map(|s| s.trim().to_owned()).ok_or_else(|| {
                        Refusal::bad("invalidValue", &format!("{name} must be strings"))
                    })
                })
                .collect(),
            Some(_) => Err(Refusal::bad(
                "invalidValue",
                &format!("{name} must be an array of attribute names"),
            )),
        }
    };
    let number = |name: &str| -> Result<Option<i64>, Refusal> {
        match field(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .map(Some)
                .ok_or_else(|| Refusal::bad("invalidValue", &format!("{name} must be an integer"))),
        }
    };
    let text = |name: &str| -> Result<Option<&str>, Refusal> {
        match field(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(Refusal::bad(
                "invalidValue",
                &format!("{name} must be a string"),
            )),
        }
    };
    let sort = sort_from(text("sortBy")?, text("sortOrder")?)?;
    let f = match field("filter") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(Refusal::bad("invalidFilter", "filter must be a string")),
    };
    query_from(
        f,
        number("startIndex")?,
        number("count")?,
        sort,
        Projection {
            attributes: list("attributes")?,
            excluded: list("excludedAttributes")?,
        },
    )
}

impl Query {
    /// The matching documents, one page of them, each as the projection asks.
    pub(super) fn page(&self, docs: Vec<Value>) -> Value {
        let mut matching: Vec<Value> = docs
            .into_iter()
            .filter(|d| self.filter.as_ref().is_none_or(|f| filter::matches(f, d)))
            .collect();
        if let Some((by, descending)) = &self.sort {
            // Strings compare case-insensitively (caseExact false); a resource without the
            // attribute comes last in ascending order and first in descending.
            let key = |d: &Value| -> Option<String> {
                filter::resolve(d, by).first().and_then(|v| match v {
                    Value::String(s) => Some(s.to_lowercase()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                })
            };
            matching.sort_by_cached_key(|d| {
                let k = key(d);
                (k.is_none(), k)
            });
            if *descending {
                matching.reverse();
            }
        }
        let total = matching.len();
        let items = matching
            .into_iter()
            .skip(self.start - 1)
            .take(self.count)
            .map(|d| self.projection.apply(d))
            .collect();
        list_response(total, self.start, items)
    }
}

/// An attribute path as the keys it goes through in a document: an extension's URN is one key.
fn path_keys(doc: &Value, path: &str) -> Vec<String> {
    let lower = path.to_ascii_lowercase();
    let mut rest = path;
    if let Some(p) = CORE_PREFIXES.iter().find(|p| lower.starts_with(*p)) {
        rest = &path[p.len()..];
    } else if lower.starts_with("urn:") {
        let ext = doc.as_object().and_then(|o| {
            o.keys()
                .filter(|k| {
                    let k = k.to_ascii_lowercase();
                    lower == k || lower.starts_with(&format!("{k}:"))
                })
                .max_by_key(|k| k.len())
        });
        return match ext {
            Some(k) if k.len() == path.len() => vec![k.clone()],
            Some(k) => std::iter::once(k.clone())
                .chain(path[k.len() + 1..].split('.').map(str::to_owned))
                .collect(),
            // An extension this resource does not have: nothing to select.
            None => Vec::new(),
        };
    }
    rest.split('.').map(str::to_owned).collect()
}

fn key_ci<'a>(o: &'a Map<String, Value>, name: &str) -> Option<&'a String> {
    o.keys().find(|k| k.eq_ignore_ascii_case(name))
}

/// Copies the value at `keys` from `src` into `dst` (through multi-valued attributes).
fn copy(src: &Value, dst: &mut Value, keys: &[String]) {
    let Some((first, rest)) = keys.split_first() else {
        return;
    };
    let Value::Object(o) = src else { return };
    let Some(k) = key_ci(o, first) else { return };
    let v = &o[k];
    let Some(d) = dst.as_object_mut() else { return };
    if rest.is_empty() {
        d.insert(k.clone(), v.clone());
        return;
    }
    let slot = d.entry(k.clone()).or_insert_with(|| match v {
        Value::Array(items) => Value::Array(vec![json!({}); items.len()]),
        _ => json!({}),
    });
    match (v, slot) {
        (Value::Array(items), Value::Array(slots)) => {
            for (item, slot) in items.iter().zip(slots.iter_mut()) {
                copy(item, slot, rest);
            }
        }
        (v, slot) => copy(v, slot, rest),
    }
}

/// Removes the value at `keys` from `doc` (through multi-valued attributes).
fn remove(doc: &mut Value, keys: &[String]) {
    let Some((first, rest)) = keys.split_first() else {
        return;
    };
    let Some(o) = doc.as_object_mut() else { return };
    let Some(k) = key_ci(o, first).cloned() else {
        return;
    };
    if rest.is_empty() {
        o.remove(&k);
        return;
    }
    match o.get_mut(&k) {
        Some(Value::Array(items)) => items.iter_mut().for_each(|i| remove(i, rest)),
        Some(v) => remove(v, rest),
        None => {}
    }
}

/// Drops the empty objects and lists a selection left behind.
fn prune(v: &mut Value) -> bool {
    match v {
        Value::Object(o) => {
            o.retain(|_, v| !prune(v));
            o.is_empty()
        }
        Value::Array(a) => {
            a.retain_mut(|v| !(v.is_object() && prune(v)));
            a.is_empty()
        }
        _ => false,
    }
}

/// Attributes always returned, whatever was asked (RFC 7643 §3.1 `returned: always`, and the
/// resource's description).
const ALWAYS: [&str; 3] = ["id", "schemas", "meta"];

impl Projection {
    pub(super) fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// The document as this projection asks.
    pub(super) fn apply(&self, doc: Value) -> Value {
        if self.is_empty() {
            return doc;
        }
        let mut out = if self.attributes.is_empty() {
            doc.clone()
        } else {
            let mut out = json!({});
            for a in &self.attributes {
                copy(&doc, &mut out, &path_keys(&doc, a));
            }
            out
        };
        for a in &self.excluded {
            let keys = path_keys(&doc, a);
            if keys.len() == 1 && ALWAYS.iter().any(|k| k.eq_ignore_ascii_case(&keys[0])) {
                continue;
            }
            remove(&mut out, &keys);
        }
        prune(&mut out);
        if let (Some(o), Some(src)) = (out.as_object_mut(), doc.as_object()) {
            for k in ALWAYS {
                if let Some(v) = src.get(k) {
                    o.insert(k.to_owned(), v.clone());
                }
            }
        }
        out
    }
}

/// A resource read (`GET …/{id}`): `304` when `If-None-Match` names its version, else the
/// representation the projection asks for, with its ETag.
pub(super) fn read(req: &HttpRequest, p: &Projection, v: Value) -> HttpResponse {
    let tag = v["meta"]["version"].as_str().unwrap_or_default();
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
    {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, tag.to_owned()))
            .finish();
    }
    resource(StatusCode::OK, &p.apply(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:x:ext"],
            "id": "u1",
            "externalId": "e1",
            "userName": "maija",
            "name": { "givenName": "Maija", "familyName": "M" },
            "emails": [{ "value": "a@x.fi" }, { "value": "b@x.fi" }],
            "urn:x:ext": { "role": "resident", "homeMunicipality": "091" },
            "meta": { "resourceType": "User" },
        })
    }

    fn p(attributes: &[&str], excluded: &[&str]) -> Projection {
        Projection {
            attributes: attributes.iter().map(|s| s.to_string()).collect(),
            excluded: excluded.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn attributes_select_and_always_keep_id_schemas_meta() {
        let d = p(&["userName", "name.givenName", "emails.value"], &[]).apply(user());
        assert_eq!(
            d,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:x:ext"],
                "id": "u1",
                "userName": "maija",
                "name": { "givenName": "Maija" },
                "emails": [{ "value": "a@x.fi" }, { "value": "b@x.fi" }],
                "meta": { "resourceType": "User" },
            })
        );
        let d = p(&["urn:x:ext:homeMunicipality", "EXTERNALID"], &[]).apply(user());
        assert_eq!(d["urn:x:ext"], json!({ "homeMunicipality": "091" }));
        assert_eq!(d["externalId"], "e1");
        assert!(d.get("userName").is_none());
        let d = p(
            &["urn:ietf:params:scim:schemas:core:2.0:User:userName"],
            &[],
        )
        .apply(user());
        assert_eq!(d["userName"], "maija");
        let d = p(&["urn:x:ext"], &[]).apply(user());
        assert_eq!(d["urn:x:ext"]["role"], "resident");
    }

    #[test]
    fn excluded_attributes_are_dropped_but_never_id() {
        let d = p(&[], &["name", "emails.value", "id", "urn:x:ext:role"]).apply(user());
        assert!(d.get("name").is_none());
        assert!(d.get("emails").is_none());
        assert_eq!(d["id"], "u1");
        assert_eq!(d["urn:x:ext"], json!({ "homeMunicipality": "091" }));
        assert_eq!(d["userName"], "maija");
        let d = p(&[], &["name.familyName"]).apply(user());
        assert_eq!(d["name"], json!({ "givenName": "Maija" }));
    }

    #[test]
    fn sorting() {
        let docs = vec![
            json!({ "id": "1", "userName": "b" }),
            json!({ "id": "2" }),
            json!({ "id": "3", "userName": "A" }),
        ];
        let ids = |v: Value| -> Vec<String> {
            v["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let mut q = parse_search(&json!({ "sortBy": "userName" })).unwrap();
        assert_eq!(ids(q.page(docs.clone())), ["3", "1", "2"]);
        q.sort = Some(("userName".into(), true));
        assert_eq!(ids(q.page(docs)), ["2", "1", "3"]);
    }

    #[test]
    fn search_requests() {
        let q = parse_search(&json!({
            "schemas": [SEARCH_SCHEMA],
            "attributes": ["userName"],
            "filter": "userName sw \"m\"",
            "startIndex": 1,
            "count": 10,
        }))
        .unwrap();
        assert_eq!((q.start, q.count), (1, 10));
        assert!(q.filter.is_some() && q.sort.is_none());
        let q = parse_search(&json!({ "sortBy": "name.familyName", "sortOrder": "Descending" }))
            .unwrap();
        assert_eq!(q.sort, Some(("name.familyName".to_owned(), true)));
        for bad in [
            json!({ "schemas": ["x"] }),
            json!({ "filter": 3 }),
            json!({ "attributes": [1] }),
            json!({ "count": "many" }),
            json!({ "filter": "userName eq" }),
            json!({ "sortBy": "userName", "sortOrder": "up" }),
            json!({ "sortBy": 1 }),
        ] {
            assert!(parse_search(&bad).is_err(), "{bad}");
        }
    }
}
