//! SCIM PATCH (RFC 7644 §3.5.2) applied to a resource's JSON representation; the result is then
//! stored like a PUT, through the same validation.

use serde_json::{Map, Value};

use super::filter::{self, PathSpec};

#[derive(Debug)]
pub struct PatchError {
    pub scim_type: &'static str,
    pub detail: String,
}

fn err(scim_type: &'static str, detail: impl Into<String>) -> PatchError {
    PatchError {
        scim_type,
        detail: detail.into(),
    }
}

/// The document's own spelling of a key, matched case-insensitively.
fn key_of(o: &Map<String, Value>, name: &str) -> String {
    o.keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_owned())
}

fn get_ci<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Applies the operations of a PatchOp message to `doc`.
pub fn apply(mut doc: Value, msg: &Value) -> Result<Value, PatchError> {
    if let Some(schemas) = get_ci(msg, "schemas") {
        let ok = schemas
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s == super::PATCH_SCHEMA));
        if !ok {
            return Err(err(
                "invalidSyntax",
                "schemas must name the PatchOp message",
            ));
        }
    }
    let Some(ops) = get_ci(msg, "Operations").and_then(Value::as_array) else {
        return Err(err("invalidSyntax", "Operations must be an array"));
    };
    if ops.is_empty() || ops.len() > 100 {
        return Err(err("invalidSyntax", "1-100 operations are allowed"));
    }
    for op in ops {
        let kind = get_ci(op, "op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| err("invalidSyntax", "every operation needs op"))?;
        let path = get_ci(op, "path").and_then(Value::as_str);
        let value = get_ci(op, "value").cloned();
        match (kind.as_str(), path) {
            ("add" | "replace", None) => {
                let Some(Value::Object(v)) = value else {
                    return Err(err(
                        "invalidValue",
                        "without a path, value must be an object",
                    ));
                };
                for (k, v) in v {
                    set(&mut doc, &k, v, kind == "add")?;
                }
            }
            ("add" | "replace", Some(p)) => {
                let value = value.ok_or_else(|| err("invalidValue", "value is required"))?;
                let spec = filter::parse_path(p).map_err(|e| err("invalidPath", e.0))?;
                at_path(&mut doc, &spec, Some(value), kind == "add")?;
            }
            ("remove", None) => return Err(err("noTarget", "remove needs a path")),
            ("remove", Some(p)) => {
                let spec = filter::parse_path(p).map_err(|e| err("invalidPath", e.0))?;
                remove(&mut doc, &spec, value)?;
            }
            (other, _) => return Err(err("invalidSyntax", format!("unknown op {other:?}"))),
        }
    }
    Ok(doc)
}

/// Sets attribute `k` (a core name or an extension URN) to `v`: complex values merge, and `add`
/// appends to multi-valued attributes.
fn set(doc: &mut Value, k: &str, v: Value, add: bool) -> Result<(), PatchError> {
    let Some(o) = doc.as_object_mut() else {
        return Err(err("invalidValue", "the resource is not an object"));
    };
    // `urn:…:User:attr` names one attribute of an extension.
    if k.starts_with("urn:") && !o.keys().any(|x| x.eq_ignore_ascii_case(k)) {
        if let Some((schema, attr)) = k.rsplit_once(':') {
            let key = key_of(o, schema);
            let ext = o.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if let Some(e) = ext.as_object_mut() {
                put(e, attr, v, add);
                return Ok(());
            }
        }
    }
    put(o, k, v, add);
    Ok(())
}

/// Sets `k` of `o`: a complex value merges into the one there is, and `add` appends to a
/// multi-valued attribute (values already there, by `value` or as a whole, are not repeated).
fn put(o: &mut Map<String, Value>, k: &str, v: Value, add: bool) {
    let key = key_of(o, k);
    match (o.get_mut(&key), v) {
        (Some(Value::Object(existing)), Value::Object(new)) => {
            for (sk, sv) in new {
                let sk = key_of(existing, &sk);
                existing.insert(sk, sv);
            }
        }
        (Some(Value::Array(existing)), Value::Array(new)) if add => {
            for item in new {
                let dup = match item.get("value") {
                    Some(v) => existing.iter().any(|e| e.get("value") == Some(v)),
                    None => existing.contains(&item),
                };
                if !dup {
                    existing.push(item);
                }
            }
        }
        (_, v) => {
            o.insert(key, v);
        }
    }
}

fn at_path(
    doc: &mut Value,
    spec: &PathSpec,
    value: Option<Value>,
    add: bool,
) -> Result<(), PatchError> {
    let value = value.unwrap_or(Value::Null);
    match (&spec.filter, &spec.sub) {
        (None, None) => set(doc, &spec.attr, value, add),
        (None, Some(sub)) => {
            let mut m = Map::new();
            m.insert(sub.clone(), value);
            set(doc, &spec.attr, Value::Object(m), false)
        }
        (Some(f), sub) => {
            let Some(items) = doc
                .as_object_mut()
                .and_then(|o| {
                    let k = key_of(o, &spec.attr);
                    o.get_mut(&k)
                })
                .and_then(Value::as_array_mut)
            else {
                return Err(err("noTarget", format!("{} has no values", spec.attr)));
            };
            let mut hit = false;
            for item in items.iter_mut().filter(|i| filter::matches(f, i)) {
                hit = true;
                match (sub, item.as_object_mut(), &value) {
                    (Some(s), Some(o), v) => {
                        let k = key_of(o, s);
                        o.insert(k, v.clone());
                    }
                    (None, Some(o), Value::Object(v)) => {
                        for (k, v) in v {
                            let k = key_of(o, k);
                            o.insert(k, v.clone());
                        }
                    }
                    (None, _, v) => *item = v.clone(),
                    (Some(_), None, _) => {
                        return Err(err("invalidPath", "the values are not complex"))
                    }
                }
            }
            if hit {
                Ok(())
            } else {
                Err(err("noTarget", "the path filter matched no value"))
            }
        }
    }
}

fn remove(doc: &mut Value, spec: &PathSpec, value: Option<Value>) -> Result<(), PatchError> {
    let Some(o) = doc.as_object_mut() else {
        return Err(err("invalidValue", "the resource is not an object"));
    };
    if spec.attr.starts_with("urn:") && !o.keys().any(|x| x.eq_ignore_ascii_case(&spec.attr)) {
        if let Some((schema, attr)) = spec.attr.rsplit_once(':') {
            let key = key_of(o, schema);
            if let Some(e) = o.get_mut(&key).and_then(Value::as_object_mut) {
                let ak = key_of(e, attr);
                e.remove(&ak);
            }
            return Ok(());
        }
    }
    let key = key_of(o, &spec.attr);
    match (&spec.filter, &spec.sub) {
        (None, None) => {
            // `remove members` with a value list removes those members (a common client form).
            match (o.get_mut(&key), value) {
                (Some(Value::Array(items)), Some(Value::Array(gone))) => {
                    items.retain(|i| !gone.iter().any(|g| g.get("value") == i.get("value")));
                }
                _ => {
                    o.remove(&key);
                }
            }
        }
        (None, Some(sub)) => {
            if let Some(inner) = o.get_mut(&key).and_then(Value::as_object_mut) {
                let sk = key_of(inner, sub);
                inner.remove(&sk);
            }
        }
        (Some(f), sub) => {
            let Some(items) = o.get_mut(&key).and_then(Value::as_array_mut) else {
                return Err(err("noTarget", format!("{} has no values", spec.attr)));
            };
            match sub {
                None => items.retain(|i| !filter::matches(f, i)),
                Some(s) => {
                    for i in items.iter_mut().filter(|i| filter::matches(f, i)) {
                        if let Some(io) = i.as_object_mut() {
                            let sk = key_of(io, s);
                            io.remove(&sk);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(doc: Value, ops: Value) -> Value {
        apply(
            doc,
            &json!({ "schemas": [crate::scim::PATCH_SCHEMA], "Operations": ops }),
        )
        .unwrap()
    }

    #[test]
    fn rfc_operations() {
        let u = json!({ "userName": "a", "name": { "givenName": "A", "familyName": "B" }, "active": true,
            "emails": [{ "value": "a@x.fi", "primary": true }] });
        let p = patch(
            u.clone(),
            json!([{ "op": "replace", "path": "name.givenName", "value": "C" },
                   { "op": "Replace", "value": { "active": false } }]),
        );
        assert_eq!(p["name"], json!({ "givenName": "C", "familyName": "B" }));
        assert_eq!(p["active"], false);
        let p = patch(
            u.clone(),
            json!([{ "op": "replace", "path": "emails[primary eq true].value", "value": "c@x.fi" }]),
        );
        assert_eq!(p["emails"][0]["value"], "c@x.fi");
        let p = patch(
            u.clone(),
            json!([{ "op": "remove", "path": "name.familyName" }]),
        );
        assert_eq!(p["name"], json!({ "givenName": "A" }));
        let p = patch(
            u,
            json!([{ "op": "add", "path": "urn:kuntalaistili:params:scim:schemas:extension:municipal:2.0:User:homeMunicipality", "value": "091" }]),
        );
        assert_eq!(
            p["urn:kuntalaistili:params:scim:schemas:extension:municipal:2.0:User"]
                ["homeMunicipality"],
            "091"
        );
        // `add` appends to an extension's multi-valued attribute too; `replace` replaces.
        let ext = "urn:kuntalaistili:params:scim:schemas:extension:municipal:2.0:User";
        let u = json!({ ext: { "messageChannels": ["email", "notice"] } });
        let p = patch(
            u.clone(),
            json!([{ "op": "add", "path": format!("{ext}:messageChannels"), "value": ["sms", "email"] }]),
        );
        assert_eq!(p[ext]["messageChannels"], json!(["email", "notice", "sms"]));
        let p = patch(
            u,
            json!([{ "op": "replace", "path": format!("{ext}:messageChannels"), "value": ["sms"] }]),
        );
        assert_eq!(p[ext]["messageChannels"], json!(["sms"]));
    }

    #[test]
    fn group_members() {
        let g = json!({ "displayName": "G", "members": [{ "value": "u1" }] });
        let p = patch(
            g.clone(),
            json!([{ "op": "add", "path": "members", "value": [{ "value": "u2" }, { "value": "u1" }] }]),
        );
        assert_eq!(p["members"].as_array().unwrap().len(), 2);
        let p = patch(
            p,
            json!([{ "op": "remove", "path": "members[value eq \"u1\"]" }]),
        );
        assert_eq!(p["members"], json!([{ "value": "u2" }]));
        let p = patch(
            g,
            json!([{ "op": "remove", "path": "members", "value": [{ "value": "u1" }] }]),
        );
        assert_eq!(p["members"], json!([]));
    }

    #[test]
    fn bad_patches() {
        let d = json!({ "userName": "a" });
        for msg in [
            json!({ "Operations": "x" }),
            json!({ "schemas": ["x"], "Operations": [{ "op": "add", "path": "a", "value": 1 }] }),
            json!({ "Operations": [] }),
            json!({ "Operations": [{ "op": "frob", "path": "a" }] }),
            json!({ "Operations": [{ "op": "remove" }] }),
            json!({ "Operations": [{ "op": "add", "value": 3 }] }),
            json!({ "Operations": [{ "op": "replace", "path": "emails[type eq", "value": 3 }] }),
            json!({ "Operations": [{ "op": "replace", "path": "emails[type eq \"w\"].value", "value": 3 }] }),
        ] {
            assert!(apply(d.clone(), &msg).is_err(), "{msg}");
        }
    }
}
