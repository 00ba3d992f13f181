//! Every response checked against `docs/openapi.json`: the path and method are documented (or
//! the answer is the documented 404 / 405 error), the status is documented for that operation,
//! the content type is one it lists, and a JSON body validates against its schema.

use crate::record::Exchange;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The OpenAPI document and the schema validators made from it.
#[allow(missing_debug_implementations)] // jsonschema's validators have no Debug
pub struct Document {
    doc: Value,
    validators: HashMap<String, jsonschema::Validator>,
}

impl Document {
    /// The repository's `docs/openapi.json`.
    pub fn load() -> Self {
        let doc: Value = serde_json::from_str(include_str!("../../docs/openapi.json")).expect("openapi.json is JSON");
        Self { doc, validators: HashMap::new() }
    }

    /// Follows a `$ref` within the document.
    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => self.doc.pointer(r.trim_start_matches('#')).unwrap_or(&Value::Null),
            None => v,
        }
    }

    fn validate(&mut self, schema: &Value, body: &Value) -> Result<(), String> {
        let key = schema.to_string();
        if !self.validators.contains_key(&key) {
            // The schema, with the document's components beside it so its `$ref`s resolve.
            let mut root = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": self.doc["components"].clone(),
            });
            for (k, v) in schema.as_object().into_iter().flatten() {
                root[k] = v.clone();
            }
            let validator = jsonschema::validator_for(&root).map_err(|e| format!("bad schema {schema}: {e}"))?;
            self.validators.insert(key.clone(), validator);
        }
        let errors: Vec<String> = self.validators[&key].iter_errors(body).map(|e| e.to_string()).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// The documented path template that `path` (without its query) matches: a literal path
    /// first, then templates, as OpenAPI says.
    fn path_item(&self, path: &str) -> Option<&Value> {
        let paths = self.doc["paths"].as_object()?;
        if let Some(item) = paths.get(path) {
            return Some(item);
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        paths.iter().find_map(|(template, item)| {
            let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
            let fits = parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(p, s)| (p.starts_with('{') && !s.is_empty()) || p == s);
            fits.then_some(item)
        })
    }

    /// Checks one exchange; `Err` says what is outside the document.
    pub fn check(&mut self, ex: &Exchange) -> Result<(), String> {
        let path = ex.path.split('?').next().unwrap_or("");
        let method = ex.method.to_ascii_lowercase();
        // A preflight is answered on any path (SPEC Part 1), documented or not.
        if method == "options" {
            return match (ex.status, ex.body.is_empty()) {
                (204, true) => Ok(()),
                _ => {
                    Err(format!("OPTIONS {path}: {} with {} bytes, not the preflight's 204", ex.status, ex.body.len()))
                }
            };
        }
        let error_schema = json!({ "$ref": "#/components/schemas/Error" });
        let operation = self.path_item(path).and_then(|item| item.get(&method)).cloned();
        let Some(operation) = operation else {
            // Undocumented paths and methods are exactly the documented errors.
            let expected = if self.path_item(path).is_some() { 405 } else { 404 };
            if ex.status != expected {
                return Err(format!("{} {path}: undocumented, yet answered {} (not {expected})", ex.method, ex.status));
            }
            return self.json_body(ex, &error_schema);
        };
        let responses = &operation["responses"];
        let Some(response) = responses.get(ex.status.to_string()).or_else(|| responses.get("default")) else {
            return Err(format!("{} {path}: status {} is not documented", ex.method, ex.status));
        };
        let response = self.resolve(response).clone();
        let content_type = ex.content_type.split(';').next().unwrap_or("").trim().to_owned();
        match response.get("content").and_then(Value::as_object) {
            None if ex.body.is_empty() => Ok(()),
            None => Err(format!("{} {path} {}: a body where none is documented", ex.method, ex.status)),
            Some(content) => {
                let Some(media) = content.get(&content_type) else {
                    return Err(format!(
                        "{} {path} {}: content type {content_type:?} is not documented",
                        ex.method, ex.status
                    ));
                };
                if content_type == "application/json" {
                    self.json_body(ex, &media["schema"].clone())
                } else {
                    Ok(())
                }
            }
        }
    }

    fn json_body(&mut self, ex: &Exchange, schema: &Value) -> Result<(), String> {
        if ex.method == "HEAD" {
            return Ok(()); // HTTP sends no body with an answer to HEAD
        }
        let body: Value = serde_json::from_slice(&ex.body)
            .map_err(|e| format!("{} {} {}: the body is not JSON: {e}", ex.method, ex.path, ex.status))?;
        self.validate(schema, &body).map_err(|e| format!("{} {} {}: {e}: {body}", ex.method, ex.path, ex.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(method: &str, path: &str, status: u16, body: &str) -> Exchange {
        Exchange {
            method: method.into(),
            path: path.into(),
            request_body: None,
            status,
            content_type: "application/json".into(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_checker_refuses_what_the_document_does_not_say() {
        let mut doc = Document::load();
        assert_eq!(doc.check(&ex("GET", "/abcde", 404, r#"{"error":"Message not found"}"#)), Ok(()));
        assert_eq!(doc.check(&ex("GET", "/abcde?x=1", 200, r#"{"message":"hi","views_left":0}"#)), Ok(()));
        let created = r#"{"id":"abcde","expires_at":"2026-11-24T07:00:00Z","receipt":"Rc1ptRc1ptRc1ptRc1ptRc1pt"}"#;
        assert_eq!(doc.check(&ex("POST", "/", 200, created)), Ok(()));
        let receipt =
            r#"{"state":"read","views_left":0,"read_at":["2026-11-24T06:00:00Z"],"expires_at":"2026-11-24T07:00:00Z"}"#;
        assert_eq!(doc.check(&ex("GET", "/abcde/receipt", 200, receipt)), Ok(()));
        assert_eq!(doc.check(&ex("DELETE", "/abcde", 200, receipt)), Ok(()));
        assert_eq!(doc.check(&ex("GET", "/a/b", 404, r#"{"error":"Not found","detail":"no route"}"#)), Ok(()));
        for bad in [
            ex("GET", "/abcde", 404, r#"{"error":"Bogus"}"#),
            ex("GET", "/abcde", 404, r#"{"error":"Message not found","extra":1}"#),
            ex("GET", "/abcde", 418, r#"{"error":"Message not found"}"#),
            ex("POST", "/", 200, r#"{"id":"a-b"}"#),
            ex("GET", "/a/b", 200, r#"{"message":"x"}"#),
            ex("DELETE", "/abcde", 200, r#"{"message":"x"}"#),
            ex("GET", "/abcde", 200, r#"{"message":"x"}"#),
            ex("POST", "/", 200, r#"{"id":"abcde"}"#),
            ex(
                "GET",
                "/abcde/receipt",
                200,
                r#"{"state":"gone","views_left":0,"read_at":[],"expires_at":"2026-11-24T07:00:00Z"}"#,
            ),
            ex("OPTIONS", "/", 200, "{}"),
        ] {
            assert!(doc.check(&bad).is_err(), "{bad:?} passed");
        }
    }
}
