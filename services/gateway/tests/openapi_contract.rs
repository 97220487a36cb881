//! The OpenAPI document is generated from the handlers and views (`src/api_docs.rs`); these tests keep it a
//! contract a client generator can rely on: every route of the router is documented with the same methods,
//! every operation has a unique operationId, a tag, a summary, a success answer with its schema, and every
//! error it can give; every parameter has a schema; every reference resolves; and no hand-kept copy exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

fn document() -> Value {
    serde_json::from_str(id77_gateway::routes::openapi_json()).unwrap_or_else(|e| panic!("not JSON: {e}"))
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// (path, method) of every route the router declares, read from `src/routes/mod.rs`.
fn routes() -> BTreeSet<(String, String)> {
    let source = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes/mod.rs"))
        .unwrap_or_else(|e| panic!("src/routes/mod.rs: {e}"));
    let mut routes = BTreeSet::new();
    let mut rest = source.as_str();
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let Some(path) = rest.trim_start().strip_prefix('"').and_then(|r| r.split('"').next()) else { continue };
        // The handlers up to the end of this `.route(...)` call.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find_map(|(i, c)| {
                depth += i32::from(c == '(') - i32::from(c == ')');
                (depth == 0).then_some(i)
            })
            .unwrap_or(rest.len());
        let call = &rest[..end];
        for method in METHODS {
            if call.contains(&format!("{method}(")) {
                routes.insert((path.to_owned(), method.to_owned()));
            }
        }
    }
    routes
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((path.clone(), method.to_owned(), op));
            }
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = operations(&doc).into_iter().map(|(p, m, _)| (p, m)).collect();
    let routes = routes();
    assert!(routes.len() >= 80, "routes read from src/routes/mod.rs: {routes:?}");
    let missing: Vec<_> = routes.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(missing.is_empty(), "routes without documentation: {missing:?}");
    assert!(extra.is_empty(), "documented operations no route serves: {extra:?}");
}

#[test]
fn every_operation_is_complete() {
    let doc = document();
    let mut ids = BTreeMap::new();
    for (path, method, op) in operations(&doc) {
        let name = format!("{} {path}", method.to_uppercase());
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(!id.is_empty() && !id.contains(':'), "{name}: operationId {id:?}");
        if let Some(other) = ids.insert(id.to_owned(), name.clone()) {
            panic!("operationId {id} of {name} is also {other}'s");
        }
        assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{name}: no tag");
        assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{name}: no summary");
        let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{name}: no responses"));
        assert!(responses.keys().any(|s| s.starts_with('2') || s == "304"), "{name}: no success answer");
        for status in ["429", "500", "503"] {
            assert!(responses.contains_key(status), "{name}: no {status}");
        }
        let protected =
            op["security"].as_array().is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(|o| !o.is_empty())));
        if protected {
            assert!(responses.contains_key("401") && responses.contains_key("403"), "{name}: 401/403");
        }
        for param in op["parameters"].as_array().into_iter().flatten() {
            let pname = param["name"].as_str().unwrap_or_default();
            assert!(param["schema"].is_object(), "{name}: parameter {pname} has no schema");
            if param["in"] == "path" {
                assert_eq!(param["required"], true, "{name}: path parameter {pname}");
                assert!(path.contains(&format!("{{{pname}}}")), "{name}: path parameter {pname} not in the path");
            }
        }
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let pname = segment.trim_matches(['{', '}']);
            let declared = op["parameters"].as_array().into_iter().flatten().any(|p| p["name"] == pname);
            assert!(declared, "{name}: path parameter {pname} is not declared");
        }
    }
}

/// Every `$ref` of the document names something the document defines.
#[test]
fn every_reference_resolves() {
    let doc = document();
    let mut refs = Vec::new();
    fn walk<'a>(value: &'a Value, refs: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    refs.push(r);
                }
                map.values().for_each(|v| walk(v, refs));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
            _ => {}
        }
    }
    walk(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external reference {r}"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

#[test]
fn no_hand_kept_document_remains() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(!root.join("openapi.json").exists(), "services/gateway/openapi.json is generated now: delete it");
}
