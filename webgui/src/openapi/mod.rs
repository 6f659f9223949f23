//! The OpenAPI 3.0 document of `/api/v1`, served at `/api/v1/openapi.json`. Written out here
//! beside the routes ([`crate::api`]). The end-to-end tests send an unauthenticated request
//! to every operation it lists (each must answer 401, not 404) and run schemathesis
//! against it.

use serde_json::{Value, json};

mod ops;
use ops::ops;

/// The most entries a list returns (the trace and the audit log keep 1,000).
pub const MAX_LIMIT: usize = 1000;

/// One operation: method, path, summary, request body schema, reply schema, whether it
/// needs no authentication.
pub(super) struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<Value>,
    reply: Value,
    pub(super) public: bool,
}

pub(super) fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<Value>,
    reply: Value,
) -> Op {
    Op {
        method,
        path,
        summary,
        body,
        reply,
        public: false,
    }
}

pub(super) fn obj(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props })
}

pub(super) fn string() -> Value {
    json!({ "type": "string" })
}

pub(super) fn any() -> Value {
    json!({})
}

fn error_response(what: &str) -> Value {
    json!({ "description": what, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = if name == "id" {
                json!({ "type": "integer", "minimum": 0 })
            } else if name == "key" {
                json!({ "type": "string", "pattern": postern_api::settings::KEY_PATTERN })
            } else {
                json!({ "type": "string", "minLength": 1 })
            };
            json!({ "name": name, "in": "path", "required": true, "schema": schema })
        })
        .collect()
}

/// The document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for o in ops() {
        let mut operation = json!({
            "summary": o.summary,
            "operationId": format!("{}{}", o.method, o.path.replace(['/', '{', '}', '.', '-'], "_")),
            "responses": {
                "200": { "description": "Done", "content": { "application/json": { "schema": o.reply } } },
                "400": error_response("The request is malformed or cannot be done"),
                "401": error_response("Authentication required"),
                "403": error_response("The caller's role does not allow it, or a CSRF token is missing"),
                "404": error_response("The thing named does not exist"),
                "409": error_response("It conflicts with the cluster's state"),
                "500": error_response("This node failed at something that should not fail"),
                "503": error_response("The cluster cannot commit or confirm now (no quorum), or a partner domain did not answer in time"),
            },
        });
        let p = params(o.path);
        if !p.is_empty() {
            operation["parameters"] = Value::Array(p);
        }
        if matches!(o.path, "/audit" | "/trace") {
            operation["parameters"] = json!([{ "name": "limit", "in": "query", "required": false,
                "schema": { "type": "integer", "minimum": 0, "maximum": MAX_LIMIT } }]);
        }
        if o.path == "/system/update" {
            operation["parameters"] = json!([{ "name": "reboot", "in": "query", "required": false,
                "schema": { "type": "boolean" } }]);
            operation["requestBody"] = json!({ "required": true, "content": {
                "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } });
        }
        if let Some(b) = o.body {
            operation["requestBody"] =
                json!({ "required": true, "content": { "application/json": { "schema": b } } });
        }
        if o.public {
            operation["security"] = json!([]);
        }
        let entry = paths.entry(o.path.to_owned()).or_insert_with(|| json!({}));
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Postern admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Manage a Postern secure-mail gateway cluster: users and keys, partners, settings, cluster membership, virtual IPs, administrators, audit log and message trace. The web GUI and posternctl use the same command layer.",
        },
        "servers": [{ "url": "/api/v1" }],
        "security": [{ "bearer": [] }],
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "kind"],
                    "properties": { "error": { "type": "string" }, "kind": { "type": "string" } },
                },
            },
        },
        "paths": paths,
    })
}
