use super::*;
use crypt_domain::testkit::{FixedIds, LogLimiter, ManualClock, MapStore};
use crypt_domain::{Policy, RateLimit};
use futures::executor::block_on;
use serde_json::Value;
use std::sync::Arc;

fn api(policy: Policy) -> (Api, Arc<MapStore>) {
    let store = Arc::new(MapStore::default());
    let vault = Vault::new(
        store.clone(),
        Arc::new(LogLimiter::default()),
        Arc::new(ManualClock::new(1_795_384_465_000)),
        Arc::new(FixedIds::new(&["AbCd1", "XyZ98"])),
        policy,
    );
    (Api::new(vault, Cors::Any), store)
}

fn call(api: &Api, method: &str, path: &str, body: &str) -> Response<Bytes> {
    let req = Request::builder().method(method).uri(path).body(Bytes::from(body.to_owned())).unwrap();
    block_on(api.handle(req, &ClientInfo::Ip("192.0.2.1".parse().unwrap())))
}

fn body(resp: &Response<Bytes>) -> Value {
    serde_json::from_slice(resp.body()).unwrap()
}

#[test]
fn create_answers_id_and_expiry() {
    let (api, _) = api(Policy::default());
    let resp = call(&api, "POST", "/", r#"{"message":"hi","ttl":60}"#);
    assert_eq!(resp.status(), 200);
    assert_eq!(body(&resp), serde_json::json!({"id": "AbCd1", "expires_at": "2026-11-22T21:55:25Z"}));
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
}

#[test]
fn every_bad_body_is_a_400_with_a_reason() {
    let (api, store) = api(Policy::default());
    let cases = [
        ("", "Invalid JSON: the body is empty or cut short"),
        ("{\"message\": \"abc", "Invalid JSON: the body is empty or cut short"),
        ("{message: 1}", "Invalid JSON"),
        ("[1,2]", "Request body must be a JSON object"),
        ("\"text\"", "Request body must be a JSON object"),
        ("null", "Request body must be a JSON object"),
        ("{}", "Field 'message' is required"),
        (r#"{"message":null}"#, "Field 'message' must be a string"),
        (r#"{"message":5}"#, "Field 'message' must be a string"),
        (r#"{"message":["a"]}"#, "Field 'message' must be a string"),
        (r#"{"message":""}"#, "Message cannot be empty"),
        (r#"{"message":" \n\t "}"#, "Message cannot be empty"),
        (r#"{"message":"x","ttl":0}"#, "Field 'ttl' must be a positive whole number of seconds"),
        (r#"{"message":"x","ttl":-5}"#, "Field 'ttl' must be a positive whole number of seconds"),
        (r#"{"message":"x","ttl":90.5}"#, "Field 'ttl' must be a positive whole number of seconds"),
        (r#"{"message":"x","ttl":"90"}"#, "Field 'ttl' must be a positive whole number of seconds"),
        (r#"{"message":"x","ttl":true}"#, "Field 'ttl' must be a positive whole number of seconds"),
        (r#"{"message":"x","ttl":null}"#, "Field 'ttl' must be a positive whole number of seconds"),
        (r#"{"message":"x","ttl":86401}"#, "Field 'ttl' must be between 60 and 86400 seconds"),
        (r#"{"message":"x"} trailing"#, "Invalid JSON"),
        (" \n [\"message\", \"x\"]", "Request body must be a JSON object"),
        ("not json", "Invalid JSON"),
    ];
    for (input, why) in cases {
        let resp = call(&api, "POST", "/", input);
        assert_eq!(resp.status(), 400, "{input}");
        assert_eq!(body(&resp), serde_json::json!({ "error": why }), "{input}");
    }
    assert!(store.is_empty());
}

#[test]
fn escapes_are_decoded_and_unknown_fields_ignored() {
    let (api, _) = api(Policy::default());
    let r = call(&api, "POST", "/", r#"{"extra":[1,{"a":null}],"message":"tab\there \u00e9 \ud83d\udd25","ttl":120}"#);
    assert_eq!(r.status(), 200);
    let r = call(&api, "GET", "/AbCd1", "");
    assert_eq!(body(&r)["message"], "tab\there é 🔥");
}

#[test]
fn non_utf8_json_is_a_400() {
    let (api, _) = api(Policy::default());
    let req = Request::post("/").body(Bytes::from_static(b"{\"message\":\"\xff\xfe\"}")).unwrap();
    let resp = block_on(api.handle(req, &ClientInfo::Named("k".into())));
    assert_eq!(resp.status(), 400);
}

#[test]
fn oversize_message_is_413_with_the_reference_text() {
    let (api, _) = api(Policy::default());
    let text = "a".repeat(102_401);
    let resp = call(&api, "POST", "/", &serde_json::json!({ "message": text }).to_string());
    assert_eq!(resp.status(), 413);
    assert_eq!(body(&resp)["error"], "Message exceeds 100 KB");
}

#[test]
fn open_burns_and_second_read_is_404() {
    let (api, _) = api(Policy::default());
    call(&api, "POST", "/", r#"{"message":"burn me"}"#);
    let first = call(&api, "GET", "/AbCd1", "");
    assert_eq!((first.status(), body(&first)), (StatusCode::OK, serde_json::json!({"message": "burn me"})));
    let second = call(&api, "GET", "/AbCd1", "");
    assert_eq!(
        (second.status(), body(&second)),
        (StatusCode::NOT_FOUND, serde_json::json!({"error": "Message not found"}))
    );
}

#[test]
fn methods_and_paths() {
    let (api, _) = api(Policy::default());
    let allow = |r: &Response<Bytes>| r.headers()[header::ALLOW].to_str().unwrap().to_owned();
    let r = call(&api, "GET", "/", "");
    assert_eq!((r.status(), allow(&r).as_str()), (StatusCode::METHOD_NOT_ALLOWED, "POST, OPTIONS"));
    let r = call(&api, "DELETE", "/AbCd1", "");
    assert_eq!((r.status(), allow(&r).as_str()), (StatusCode::METHOD_NOT_ALLOWED, "GET, OPTIONS"));
    let r = call(&api, "HEAD", "/AbCd1", "");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(call(&api, "GET", "/a/b", "").status(), 404);
    assert_eq!(call(&api, "POST", "/a/b", "").status(), 404);
    assert_eq!(call(&api, "GET", "/%00", "").status(), 404);
    assert_eq!(call(&api, "GET", "/healthz", "").status(), 200);
    assert_eq!(call(&api, "GET", "/readyz", "").status(), 200);
    let pre = call(&api, "OPTIONS", "/anything/at/all", "");
    assert_eq!(pre.status(), 204);
    assert!(pre.headers().get(header::CONTENT_TYPE).is_none());
    assert_eq!(pre.headers()[header::ACCESS_CONTROL_ALLOW_METHODS], "GET, POST, OPTIONS");
    assert_eq!(pre.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

#[test]
fn a_failing_store_is_a_503_and_keeps_nothing() {
    let (api, store) = api(Policy::default());
    store.fail(true);
    for (m, p, b) in [("POST", "/", r#"{"message":"x"}"#), ("GET", "/AbCd1", ""), ("GET", "/readyz", "")] {
        let r = call(&api, m, p, b);
        assert_eq!(
            (r.status(), body(&r)),
            (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"error": "Storage unavailable"}))
        );
    }
}

#[test]
fn a_full_store_is_a_507() {
    let r = store_failed("create", StoreError::Full);
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(serde_json::from_slice::<Value>(r.body()).unwrap()["error"], "Storage full");
}

#[test]
fn over_the_rate_limit_is_429_with_retry_after() {
    let policy = Policy { rate_limit: RateLimit { max: 2, window_secs: 30 }, ..Policy::default() };
    let (api, _) = api(policy);
    call(&api, "GET", "/zzzzz", "");
    call(&api, "POST", "/", "not json");
    let r = call(&api, "GET", "/zzzzz", "");
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()[header::RETRY_AFTER], "30");
    assert_eq!(body(&r)["error"], "Rate limit exceeded");
    // Operations routes and preflights are never limited.
    assert_eq!(call(&api, "GET", "/healthz", "").status(), 200);
    assert_eq!(call(&api, "OPTIONS", "/", "").status(), 204);
}

#[test]
fn body_rejections_name_their_reason_and_close() {
    let (api, _) = api(Policy::default());
    let r = api.reject_body(&HeaderMap::new(), BodyRejection::TooLarge);
    assert_eq!(r.status(), 413);
    assert_eq!(serde_json::from_slice::<Value>(r.body()).unwrap()["error"], "Request body too large");
    assert_eq!(r.headers()[header::CONNECTION], "close");
    assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

#[test]
fn a_misconfigured_deployment_answers_500_json_with_the_usual_headers() {
    let r = Api::misconfigured(&Cors::Any, &HeaderMap::new());
    assert_eq!(r.status(), 500);
    assert_eq!(serde_json::from_slice::<Value>(r.body()).unwrap()["error"], "Service misconfigured");
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}
