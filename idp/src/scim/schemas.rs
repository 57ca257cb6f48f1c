//! The SCIM discovery documents (RFC 7643 §5-7): what this provider supports, the schemas of the
//! attributes it serves (core User and Group, and the municipal extension), its resource types.

use serde_json::{json, Value};

use super::{GROUP_SCHEMA, MUNICIPAL_SCHEMA, USER_SCHEMA};

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/kuntalaistili/kuntalaistili",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": super::MAX_COUNT },
        // A password is set with PUT or PATCH of `password` (never returned).
        "changePassword": { "supported": true },
        // sortBy / sortOrder on lists and searches (strings case-insensitively).
        "sort": { "supported": true },
        // `meta.version` and the ETag header; `If-Match` on PUT, PATCH and DELETE,
        // `If-None-Match` on GET.
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "An access token of this identity provider (client credentials) with the scim scope",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

fn attr(name: &str, ty: &str, desc: &str) -> Value {
    json!({
        "name": name,
        "type": ty,
        "multiValued": false,
        "description": desc,
        "required": false,
        "caseExact": false,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    })
}

fn with(mut a: Value, changes: Value) -> Value {
    if let (Some(o), Some(c)) = (a.as_object_mut(), changes.as_object()) {
        for (k, v) in c {
            o.insert(k.clone(), v.clone());
        }
    }
    a
}

/// A multi-valued attribute of which the register keeps one value: no `primary` flag (the one
/// kept is the one a client marks primary, else the last one given).
fn one_value(name: &str, desc: &str) -> Value {
    with(
        attr(name, "complex", desc),
        json!({
            "multiValued": true,
            "subAttributes": [attr("value", "string", "The value")],
        }),
    )
}

fn schema(base: &str, id: &str, name: &str, desc: &str, attributes: Vec<Value>) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": id,
        "name": name,
        "description": desc,
        "attributes": attributes,
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{id}") },
    })
}

pub fn schemas(base: &str) -> Vec<Value> {
    let user = schema(
        base,
        USER_SCHEMA,
        "User",
        "A person in the customer register",
        vec![
            with(
                attr("userName", "string", "Login name, unique"),
                json!({ "required": true, "uniqueness": "server" }),
            ),
            with(
                attr("name", "complex", "The person's name"),
                json!({ "subAttributes": [
                    attr("familyName", "string", "Family name"),
                    attr("givenName", "string", "Given name"),
                ] }),
            ),
            with(
                attr("displayName", "string", "Name shown to people"),
                json!({ "mutability": "readOnly" }),
            ),
            with(
                attr("preferredLanguage", "string", "fi, sv or en (default fi)"),
                json!({ "canonicalValues": ["fi", "sv", "en"] }),
            ),
            attr("active", "boolean", "Whether the account can be used"),
            with(
                attr("password", "string", "Password (write-only)"),
                json!({ "mutability": "writeOnly", "returned": "never", "caseExact": true }),
            ),
            one_value(
                "emails",
                "Email address (one is kept: the one marked primary, else the last one)",
            ),
            one_value(
                "phoneNumbers",
                "Phone number (one is kept: the one marked primary, else the last one)",
            ),
            with(
                attr(
                    "addresses",
                    "complex",
                    "Postal address (one is kept: the one marked primary, else the last one)",
                ),
                json!({ "multiValued": true, "subAttributes": [
                    attr("streetAddress", "string", "Street address"),
                    attr("postalCode", "string", "Postal code"),
                    attr("locality", "string", "Post office"),
                    attr("country", "string", "Country code (ISO 3166-1 alpha-2)"),
                ] }),
            ),
        ],
    );
    let group = schema(
        base,
        GROUP_SCHEMA,
        "Group",
        "A group of people for access rights",
        vec![
            with(
                attr("displayName", "string", "Name of the group, unique"),
                json!({ "required": true, "uniqueness": "server" }),
            ),
            with(
                attr("members", "complex", "Members of the group"),
                json!({ "multiValued": true, "subAttributes": [
                    with(attr("value", "string", "The member's id"), json!({ "mutability": "immutable" })),
                    with(attr("display", "string", "The member's username"), json!({ "mutability": "readOnly" })),
                    with(attr("$ref", "reference", "The member's URI"),
                        json!({ "mutability": "immutable", "referenceTypes": ["User"] })),
                    with(attr("type", "string", "User"),
                        json!({ "mutability": "immutable", "canonicalValues": ["User"] })),
                ] }),
            ),
        ],
    );
    let municipal = schema(
        base,
        MUNICIPAL_SCHEMA,
        "MunicipalUser",
        "Municipal attributes of a person",
        vec![
            attr(
                "homeMunicipality",
                "string",
                "Home municipality code (three digits)",
            ),
            with(
                attr(
                    "messageChannels",
                    "string",
                    "Channels for messages: email, sms, notice (default email and notice)",
                ),
                json!({ "multiValued": true, "canonicalValues": ["email", "sms", "notice"] }),
            ),
            with(
                attr(
                    "role",
                    "string",
                    "resident, staff or admin (granted by administrators)",
                ),
                json!({ "mutability": "readOnly" }),
            ),
            with(
                attr(
                    "nationalId",
                    "string",
                    "Finnish personal identity code (write-only, stored encrypted)",
                ),
                json!({ "mutability": "writeOnly", "returned": "never", "caseExact": true }),
            ),
            with(
                attr(
                    "hasNationalId",
                    "boolean",
                    "Whether a personal identity code is stored",
                ),
                json!({ "mutability": "readOnly" }),
            ),
        ],
    );
    vec![user, group, municipal]
}

pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "People in the customer register",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{ "schema": MUNICIPAL_SCHEMA, "required": false }],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User") },
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Groups for access rights",
            "schema": GROUP_SCHEMA,
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group") },
        }),
    ]
}
