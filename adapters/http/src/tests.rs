use super::*;
use crypt_domain::testkit::{FixedIds, LogLimiter, ManualClock, MapStore};
use crypt_domain::{Limits, Policy, StoreError};
use futures::executor::block_on;
use http::header;
use serde_json::Value;
use std::sync::Arc;

fn api(policy: Policy) -> (Api, Arc<MapStore>) {
    let store = Arc::new(MapStore::default());
    let vault = Vault::new(
        store.clone(),
        Arc::new(LogLimiter::default()),
        Arc::new(ManualClock::new(1_795_384_465_000)),
        Arc::new(FixedIds::new(&["abcd1", "xyz98"])),
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
    assert_eq!(
        body(&resp),
        serde_json::json!({"id": "abcd1", "expires_at": "2026-11-22T21:55:25Z", "receipt": body(&resp)["receipt"]})
    );
    assert_eq!(body(&resp)["receipt"].as_str().unwrap().len(), 32);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
}

const INVALID_JSON: &str = "Invalid JSON body";
const MESSAGE_REQUIRED: &str = "Field 'message' is required and cannot be empty";
const BAD_TTL: &str = "Field 'ttl' must be a whole number of seconds from 60 to 86400";

#[test]
fn every_bad_body_is_a_400_with_the_reference_string() {
    let (api, store) = api(Policy::default());
    let cases = [
        ("", INVALID_JSON),
        ("   \n\t ", INVALID_JSON),
        ("{\"message\": \"abc", INVALID_JSON),
        ("{message: 1}", INVALID_JSON),
        ("not json", INVALID_JSON),
        (r#"{"message":"x"} trailing"#, INVALID_JSON),
        ("[1,2]", MESSAGE_REQUIRED),
        ("[]", MESSAGE_REQUIRED),
        ("\"text\"", MESSAGE_REQUIRED),
        ("null", MESSAGE_REQUIRED),
        (" \n [\"message\", \"x\"]", MESSAGE_REQUIRED),
        ("{}", MESSAGE_REQUIRED),
        (r#"{"message":null}"#, MESSAGE_REQUIRED),
        (r#"{"message":0}"#, MESSAGE_REQUIRED),
        (r#"{"message":5}"#, MESSAGE_REQUIRED),
        (r#"{"message":["a"]}"#, MESSAGE_REQUIRED),
        (r#"{"message":""}"#, MESSAGE_REQUIRED),
        (r#"{"message":" \n\t "}"#, MESSAGE_REQUIRED),
        (r#"{"message":"x","ttl":0}"#, BAD_TTL),
        (r#"{"message":"x","ttl":-5}"#, BAD_TTL),
        (r#"{"message":"x","ttl":90.5}"#, BAD_TTL),
        (r#"{"message":"x","ttl":"90"}"#, BAD_TTL),
        (r#"{"message":"x","ttl":true}"#, BAD_TTL),
        (r#"{"message":"x","ttl":null}"#, BAD_TTL),
        (r#"{"message":"x","ttl":86401}"#, BAD_TTL),
        (r#"{"message":"x","ttl":59}"#, BAD_TTL),
    ];
    for (input, why) in cases {
        let resp = call(&api, "POST", "/", input);
        assert_eq!(resp.status(), 400, "{input}");
        let b = body(&resp);
        assert_eq!(b["error"], why, "{input}");
        assert!(b.as_object().unwrap().keys().all(|k| k == "error" || k == "detail"), "{b}");
    }
    assert!(store.is_empty());
}

#[test]
fn details_say_what_was_wrong_without_quoting_the_body() {
    let (api, _) = api(Policy::default());
    let detail = |input: &str| body(&call(&api, "POST", "/", input))["detail"].as_str().unwrap_or("").to_owned();
    assert_eq!(detail(""), "the body is empty");
    assert_eq!(detail("{}"), "the field 'message' is missing");
    assert_eq!(detail(r#"{"message":0}"#), "the field 'message' must be a string, not a number");
    assert_eq!(detail("[]"), "the body must be a JSON object like {\"message\": \"...\"}, not an array");
    assert_eq!(detail(r#"{"message":"  "}"#), "the field 'message' is empty or only whitespace");
    assert!(!detail("{\"message\": \"hunter2").contains("hunter2"));
}

#[test]
fn escapes_are_decoded_and_unknown_fields_ignored() {
    let (api, _) = api(Policy::default());
    let r = call(&api, "POST", "/", r#"{"extra":[1,{"a":null}],"message":"tab\there \u00e9 \ud83d\udd25","ttl":120}"#);
    assert_eq!(r.status(), 200);
    let r = call(&api, "GET", "/abcd1", "");
    assert_eq!(body(&r)["message"], "tab\there é 🔥");
}

/// As JavaScript's JSON.parse reads them (the reference's parser): a key given twice keeps its
/// last value, also when spelled with escapes, and a field crypt does not read is skipped
/// even where a strict parser would balk (a lone surrogate, a number past f64).
#[test]
fn bodies_read_as_json_parse_reads_them() {
    let (api, _) = api(Policy::default());
    let r = call(&api, "POST", "/", r#"{"message":"first","ttl":"x","mess\u0061ge":"last","ttl":120}"#);
    assert_eq!(r.status(), 200, "{:?}", body(&r));
    assert_eq!(body(&call(&api, "GET", "/abcd1", ""))["message"], "last");
    let r = call(&api, "POST", "/", r#"{"message":"x","junk":"\ud83d|","big":1e400}"#);
    assert_eq!(r.status(), 200, "{:?}", body(&r));
    let r = call(&api, "POST", "/", r#"{"message":"x","message":""}"#);
    assert_eq!(body(&r)["error"], "Field 'message' is required and cannot be empty");
}

#[test]
fn non_utf8_json_is_a_400_wherever_the_bytes_are() {
    let body_of = body;
    let (api, _) = api(Policy::default());
    for (body, at) in [
        (&b"{\"message\":\"\xff\xfe\"}"[..], "line 1, column 13"),
        (b"{\"message\":\"x\",\n \"junk\":\"\x81\"}", "line 2, column 10"),
        (b"{\"message\":\"x\", \"\xc3\":1}", "line 1, column 18"),
    ] {
        let req = Request::post("/").body(Bytes::from_static(body)).unwrap();
        let resp = block_on(api.handle(req, &ClientInfo::Named("k".into())));
        assert_eq!(resp.status(), 400);
        assert_eq!(body_of(&resp)["error"], "Invalid JSON body");
        assert_eq!(body_of(&resp)["detail"], format!("the body is not UTF-8 ({at})"));
    }
}

#[test]
fn oversize_message_is_413_with_the_reference_text() {
    let (api, _) = api(Policy::default());
    let text = "a".repeat(102_401);
    let resp = call(&api, "POST", "/", &serde_json::json!({ "message": text }).to_string());
    assert_eq!(resp.status(), 413);
    assert_eq!(body(&resp)["error"], "Message exceeds maximum size of 100KB");
    assert_eq!(body(&resp)["detail"], "the message is 102401 bytes of UTF-8; the limit is 102400 bytes");
    let policy = Policy::new(Limits { max_message_bytes: 1000, ..Limits::default() }).unwrap();
    let (api, _) = self::api(policy);
    let resp = call(&api, "POST", "/", &serde_json::json!({ "message": "a".repeat(1001) }).to_string());
    assert_eq!(body(&resp)["error"], "Message exceeds maximum size of 1000 bytes");
}

#[test]
fn open_burns_and_second_read_is_404() {
    let (api, _) = api(Policy::default());
    call(&api, "POST", "/", r#"{"message":"burn me"}"#);
    let first = call(&api, "GET", "/abcd1", "");
    assert_eq!(
        (first.status(), body(&first)),
        (StatusCode::OK, serde_json::json!({"message": "burn me", "views_left": 0}))
    );
    let second = call(&api, "GET", "/abcd1", "");
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
    assert_eq!(body(&r)["error"], "Method not allowed");
    let r = call(&api, "DELETE", "/abcd1", "");
    assert_eq!((r.status(), allow(&r).as_str()), (StatusCode::METHOD_NOT_ALLOWED, "GET, OPTIONS"));
    let r = call(&api, "HEAD", "/abcd1", "");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    for (m, p) in [("GET", "/a/b"), ("POST", "/a/b"), ("GET", "/abcd1/"), ("DELETE", "/x/y/z")] {
        let r = call(&api, m, p, "");
        assert_eq!((r.status(), body(&r)["error"].as_str()), (StatusCode::NOT_FOUND, Some("Not found")), "{m} {p}");
    }
    assert_eq!(call(&api, "GET", "/%00", "").status(), 404);
    assert_eq!(call(&api, "GET", "/healthz", "").status(), 200);
    assert_eq!(call(&api, "GET", "/readyz", "").status(), 200);
    let pre = call(&api, "OPTIONS", "/anything/at/all", "");
    assert_eq!(pre.status(), 204);
    assert!(pre.headers().get(header::CONTENT_TYPE).is_none());
    assert_eq!(pre.headers()[header::ACCESS_CONTROL_ALLOW_METHODS], "GET, POST, DELETE, OPTIONS");
    assert_eq!(pre.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS], "Content-Type, Authorization");
    assert_eq!(pre.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

#[test]
fn a_failing_store_is_a_503_and_keeps_nothing() {
    let (api, store) = api(Policy::default());
    store.fail(true);
    for (m, p, b) in [("POST", "/", r#"{"message":"x"}"#), ("GET", "/abcd1", ""), ("GET", "/readyz", "")] {
        let r = call(&api, m, p, b);
        assert_eq!(
            (r.status(), body(&r)),
            (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"error": "Storage unavailable"}))
        );
    }
}

#[test]
fn a_full_store_is_a_507() {
    let r = ApiError::from(StoreError::Full).into_response();
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(serde_json::from_slice::<Value>(r.body()).unwrap()["error"], "Storage full");
}

#[test]
fn over_the_rate_limit_is_429_with_retry_after() {
    let policy = Policy::new(Limits { rate_limit_max: 3, rate_limit_window_secs: 30, ..Limits::default() }).unwrap();
    let (api, _) = api(policy);
    // Like the reference, every API request counts: bad bodies, 405s and unknown paths too.
    call(&api, "POST", "/", "not json");
    assert_eq!(call(&api, "PUT", "/", "").status(), 405);
    assert_eq!(call(&api, "GET", "/a/b", "").status(), 404);
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
fn unexpected_failures_are_500_internal_server_error_with_the_usual_headers() {
    let (api, _) = api(Policy::default());
    for r in [api.internal_error(&HeaderMap::new()), internal_error(&HeaderMap::new())] {
        assert_eq!(r.status(), 500);
        assert_eq!(
            serde_json::from_slice::<Value>(r.body()).unwrap(),
            serde_json::json!({"error": "Internal server error"})
        );
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }
}

fn get_with(api: &Api, path: &str, accept: &str) -> Response<Bytes> {
    let req = Request::get(path).header(header::ACCEPT, accept).body(Bytes::new()).unwrap();
    block_on(api.handle(req, &ClientInfo::Ip("192.0.2.1".parse().unwrap())))
}

const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[test]
fn a_browser_gets_the_page_and_everyone_else_the_reference_405() {
    let (api, _) = api(Policy::default());
    let page = get_with(&api, "/", BROWSER);
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(page.headers()[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");
    assert!(String::from_utf8_lossy(page.body()).contains("<form id=\"compose\""));
    for accept in ["application/json", "*/*", ""] {
        let r = get_with(&api, "/", accept);
        assert_eq!(
            (r.status(), body(&r)["error"].as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, Some("Method not allowed"))
        );
    }
}

#[test]
fn the_reveal_page_and_assets_never_touch_the_store_or_the_rate_limit() {
    let policy = Policy::new(Limits { rate_limit_max: 1, ..Limits::default() }).unwrap();
    let (api, store) = api(policy);
    store.fail(true);
    for _ in 0..5 {
        let r = get_with(&api, "/s/abcd1", BROWSER);
        assert_eq!(r.status(), 200, "the store is down, yet the page is served");
        assert!(String::from_utf8_lossy(r.body()).contains("Reveal the secret"));
        let js = get_with(&api, "/assets/reveal.js", "*/*");
        assert_eq!(
            (js.status(), js.headers()[header::CONTENT_TYPE].to_str().unwrap()),
            (StatusCode::OK, "text/javascript; charset=utf-8")
        );
    }
    store.fail(false);
    assert_eq!(call(&api, "POST", "/", r#"{"message":"x"}"#).status(), 200, "the pages spent none of the budget");
    assert_eq!(call(&api, "GET", "/abcd1", "").status(), 429);
}

#[test]
fn page_routes_answer_get_only_and_unknown_assets_are_not_found() {
    let (api, _) = api(Policy::default());
    let r = get_with(&api, "/assets/nope.js", "*/*");
    assert_eq!((r.status(), body(&r)["error"].as_str()), (StatusCode::NOT_FOUND, Some("Not found")));
    for (m, p) in [("POST", "/s/abcd1"), ("DELETE", "/assets/style.css")] {
        let r = call(&api, m, p, "");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{m} {p}");
        assert_eq!(r.headers()[header::ALLOW], "GET, OPTIONS");
    }
    assert_eq!(call(&api, "GET", "/s/abcd1/extra", "").status(), 404);
}

#[test]
fn ipv6_clients_count_by_prefix_and_mapped_ipv4_as_ipv4() {
    let p64 = Ipv6Prefix::default();
    let key = |ip: &str, p: Ipv6Prefix| ClientInfo::Ip(ip.parse().unwrap()).key(p).as_ref().to_owned();
    assert_eq!(key("2001:db8:1:2:aaaa::1", p64), "2001:db8:1:2::/64");
    assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff", p64), "2001:db8:1:2::/64");
    assert_eq!(key("2001:db8:1:3::1", p64), "2001:db8:1:3::/64");
    assert_eq!(key("2001:db8:1:2:aaaa::1", Ipv6Prefix::new(48).unwrap()), "2001:db8:1::/48");
    assert_eq!(key("2001:db8::7", Ipv6Prefix::new(128).unwrap()), "2001:db8::7");
    assert_eq!(key("2001:db8::7", Ipv6Prefix::new(1).unwrap()), "::/1");
    assert_eq!(key("::ffff:192.0.2.7", p64), "192.0.2.7");
    assert_eq!(key("192.0.2.7", p64), "192.0.2.7");
    assert_eq!(Ipv6Prefix::new(0), None);
    assert_eq!(Ipv6Prefix::new(129), None);
    assert_eq!(ClientInfo::from_header(Some(" 2001:db8::1 ")), ClientInfo::Ip("2001:db8::1".parse().unwrap()));
    assert_eq!(ClientInfo::from_header(Some("not-an-ip")), ClientInfo::Named("not-an-ip".into()));
    assert_eq!(ClientInfo::from_header(None), ClientInfo::Named("unknown".into()));
}

#[test]
fn a_client_rotating_inside_its_prefix_meets_one_limit() {
    let policy = Policy::new(Limits { rate_limit_max: 2, ..Limits::default() }).unwrap();
    let settings = crate::Settings::default().api().unwrap();
    let (api, _) = api(policy);
    let api = Api::from_settings(api.vault().clone(), &settings);
    let from = |ip: &str| {
        let req = Request::builder().uri("/nope").body(Bytes::new()).unwrap();
        block_on(api.handle(req, &ClientInfo::Ip(ip.parse().unwrap()))).status()
    };
    assert_eq!(from("2001:db8:0:1::1"), 404);
    assert_eq!(from("2001:db8:0:1::2"), 404);
    assert_eq!(from("2001:db8:0:1:ffff::3"), 429, "a third address of the same /64 is the same client");
    assert_eq!(from("2001:db8:0:2::1"), 404, "the next /64 is another client");
    assert_eq!(from("192.0.2.9"), 404);
    assert_eq!(from("::ffff:192.0.2.9"), 404);
    assert_eq!(from("192.0.2.9"), 429, "an IPv4-mapped address is its IPv4 address");
}

#[test]
fn ipv4_keys_are_written_as_display_writes_them() {
    for ip in ["0.0.0.0", "1.2.3.4", "10.0.99.100", "255.255.255.255", "192.168.10.9", "100.20.3.0"] {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        assert_eq!(ClientInfo::Ip(ip).key(Ipv6Prefix::default()).as_ref(), ip.to_string());
    }
}

fn call_with(api: &Api, method: &str, path: &str, authorization: &str) -> Response<Bytes> {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, authorization)
        .body(Bytes::new())
        .unwrap();
    block_on(api.handle(req, &ClientInfo::Ip("192.0.2.1".parse().unwrap())))
}

/// Status, headers but `date`, and body: what a stranger can compare.
fn seen(r: &Response<Bytes>) -> (StatusCode, Vec<(String, String)>, Bytes) {
    let mut headers: Vec<_> =
        r.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect();
    headers.sort();
    (r.status(), headers, r.body().clone())
}

#[test]
fn views_are_counted_down_and_bad_views_are_refused_with_the_range() {
    let (api, store) = api(Policy::default());
    for bad in ["0", "101", "\"3\"", "2.5", "-1", "true", "null", "[]", "1e30"] {
        let r = call(&api, "POST", "/", &format!(r#"{{"message":"x","views":{bad}}}"#));
        assert_eq!(
            (r.status(), body(&r)["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("Field 'views' must be a whole number from 1 to 100")),
            "{bad}"
        );
    }
    assert!(store.is_empty());
    assert_eq!(call(&api, "POST", "/", r#"{"message":"team","views":3}"#).status(), 200);
    for left in [2, 1, 0] {
        assert_eq!(body(&call(&api, "GET", "/abcd1", "")), serde_json::json!({"message": "team", "views_left": left}));
    }
    assert_eq!(call(&api, "GET", "/abcd1", "").status(), 404);
    let narrow = Policy::new(Limits { max_views: 5, ..Limits::default() }).unwrap();
    let r = call(&self::api(narrow).0, "POST", "/", r#"{"message":"x","views":6}"#);
    assert_eq!(body(&r)["error"], "Field 'views' must be a whole number from 1 to 5");
}

#[test]
fn the_receipt_shows_the_views_spent_and_deletes_unread() {
    let (api, _) = api(Policy::default());
    let created = body(&call(&api, "POST", "/", r#"{"message":"mine","views":2,"ttl":60}"#));
    let bearer = format!("Bearer {}", created["receipt"].as_str().unwrap());
    let r = call_with(&api, "GET", "/abcd1/receipt", &bearer);
    assert_eq!(r.status(), 200);
    let want =
        serde_json::json!({"state": "unread", "views_left": 2, "read_at": [], "expires_at": "2026-11-22T21:55:25Z"});
    assert_eq!(body(&r), want);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    call(&api, "GET", "/abcd1", "");
    let r = body(&call_with(&api, "GET", "/abcd1/receipt", &bearer));
    assert_eq!((r["state"].as_str(), r["views_left"].as_u64()), (Some("read"), Some(1)));
    assert_eq!(r["read_at"], serde_json::json!(["2026-11-22T21:54:25Z"]));
    assert!(!r.to_string().contains("mine"), "never the message");
    let deleted = call_with(&api, "DELETE", "/abcd1", &bearer);
    assert_eq!((deleted.status(), body(&deleted)["state"].as_str()), (StatusCode::OK, Some("deleted")));
    let again = call_with(&api, "DELETE", "/abcd1", &bearer);
    assert_eq!((again.status(), body(&again)["state"].as_str()), (StatusCode::OK, Some("deleted")));
    assert_eq!(call(&api, "GET", "/abcd1", "").status(), 404);
    assert_eq!(body(&call_with(&api, "GET", "/abcd1/receipt", &bearer))["state"], "deleted");
}

#[test]
fn without_the_receipt_every_answer_is_part_ones_and_says_nothing_of_the_id() {
    let (api, _) = api(Policy::default());
    let created = body(&call(&api, "POST", "/", r#"{"message":"read me"}"#));
    call(&api, "GET", "/abcd1", "");
    let other = created["receipt"].as_str().unwrap().to_owned() + "x";
    let long = format!("Bearer {}", "a".repeat(10_240));
    // abcd1 was stored and read; zzzzz never was: a stranger sees the same answers for both.
    for id in ["abcd1", "zzzzz"] {
        let no_token = call(&api, "GET", &format!("/{id}/receipt"), "");
        assert_eq!((no_token.status(), body(&no_token)["error"].as_str()), (StatusCode::NOT_FOUND, Some("Not found")));
        let delete = call(&api, "DELETE", &format!("/{id}"), "");
        assert_eq!(
            (delete.status(), delete.headers()[header::ALLOW].to_str().unwrap()),
            (StatusCode::METHOD_NOT_ALLOWED, "GET, OPTIONS")
        );
        // An empty `Authorization` is none at all (workerd drops it): 405 as without one.
        let empty = call_with(&api, "DELETE", &format!("/{id}"), "");
        assert_eq!(seen(&empty), seen(&delete), "{id}: an empty Authorization");
        for wrong in ["Bearer", "Bearer ", "Basic abc", long.as_str(), &format!("Bearer {other}")] {
            let r = call_with(&api, "GET", &format!("/{id}/receipt"), wrong);
            assert_eq!(seen(&r), seen(&no_token), "{id} {wrong:.20}");
            let r = call_with(&api, "DELETE", &format!("/{id}"), wrong);
            assert_eq!((r.status(), body(&r)["error"].as_str()), (StatusCode::NOT_FOUND, Some("Message not found")));
        }
    }
    let never = call_with(&api, "DELETE", "/zzzzz", &format!("Bearer {other}"));
    let read = call_with(&api, "DELETE", "/abcd1", &format!("Bearer {other}"));
    assert_eq!(seen(&never), seen(&read));
    let never = call_with(&api, "GET", "/zzzzz/receipt", &format!("Bearer {other}"));
    let read = call_with(&api, "GET", "/abcd1/receipt", &format!("Bearer {other}"));
    assert_eq!(seen(&never), seen(&read));
}

#[test]
fn receipt_requests_count_against_the_rate_limit() {
    let policy = Policy::new(Limits { rate_limit_max: 2, ..Limits::default() }).unwrap();
    let (api, _) = api(policy);
    let created = body(&call(&api, "POST", "/", r#"{"message":"x"}"#));
    let bearer = format!("Bearer {}", created["receipt"].as_str().unwrap());
    assert_eq!(call_with(&api, "GET", "/abcd1/receipt", &bearer).status(), 200);
    let r = call_with(&api, "GET", "/abcd1/receipt", &bearer);
    assert_eq!((r.status(), body(&r)["error"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("Rate limit exceeded")));
    assert_eq!(call_with(&api, "DELETE", "/abcd1", &bearer).status(), 429);
}

#[test]
fn a_failing_store_answers_the_sender_503() {
    let (api, store) = api(Policy::default());
    let created = body(&call(&api, "POST", "/", r#"{"message":"x"}"#));
    let bearer = format!("Bearer {}", created["receipt"].as_str().unwrap());
    store.fail(true);
    for method_path in [("GET", "/abcd1/receipt"), ("DELETE", "/abcd1")] {
        let r = call_with(&api, method_path.0, method_path.1, &bearer);
        assert_eq!(body(&r), serde_json::json!({"error": "Storage unavailable"}), "{method_path:?}");
    }
    store.fail(false);
    assert_eq!(call(&api, "GET", "/abcd1", "").status(), 200, "the failed delete left the message");
}

fn upload(api: &Api, path: &str, bytes: &[u8]) -> Response<Bytes> {
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Bytes::copy_from_slice(bytes))
        .unwrap();
    block_on(api.handle(req, &ClientInfo::Ip("192.0.2.1".parse().unwrap())))
}

#[test]
fn a_file_reads_back_as_its_bytes_with_its_views_in_a_header() {
    let (api, _) = api(Policy::default());
    let bytes = [0xff, 0x00, b'{', 0xc3];
    let created = upload(&api, "/?ttl=3600&views=2", &bytes);
    assert_eq!(created.status(), 200);
    let created = body(&created);
    assert_eq!(created["expires_at"], "2026-11-22T22:54:25Z");
    for left in ["1", "0"] {
        let read = call(&api, "GET", "/abcd1", "");
        assert_eq!(read.status(), 200);
        assert_eq!(read.body().as_ref(), &bytes);
        assert_eq!(read.headers()[header::CONTENT_TYPE], "application/octet-stream");
        assert_eq!(read.headers()["x-views-left"], left);
        assert_eq!(read.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS], "X-Views-Left");
        assert_eq!(read.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(read.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    let gone = call(&api, "GET", "/abcd1", "");
    assert_eq!((gone.status(), body(&gone)["error"].as_str()), (StatusCode::NOT_FOUND, Some("Message not found")));
    // The receipt works as for a text.
    let bearer = format!("Bearer {}", created["receipt"].as_str().unwrap());
    let req = Request::builder().uri("/abcd1/receipt").header(header::AUTHORIZATION, bearer).body(Bytes::new());
    let receipt = block_on(api.handle(req.unwrap(), &ClientInfo::Ip("192.0.2.1".parse().unwrap())));
    assert_eq!((body(&receipt)["state"].as_str(), body(&receipt)["views_left"].as_u64()), (Some("read"), Some(0)));
}

#[test]
fn a_bad_file_create_is_told_what_is_wrong_and_nothing_is_stored() {
    let (api, store) = api(Policy::default());
    let cases: [(&str, &[u8], &str); 5] = [
        ("/", b"", MESSAGE_REQUIRED),
        ("/?ttl=59", b"x", BAD_TTL),
        ("/?ttl=abc", b"x", BAD_TTL),
        ("/?views=0", b"x", "Field 'views' must be a whole number from 1 to 100"),
        ("/?views=1.5", b"x", "Field 'views' must be a whole number from 1 to 100"),
    ];
    for (path, bytes, error) in cases {
        let r = upload(&api, path, bytes);
        assert_eq!((r.status(), body(&r)["error"].as_str()), (StatusCode::BAD_REQUEST, Some(error)), "{path}");
    }
    assert!(store.is_empty());
    // A file may hold what a JSON create may not: a body that is only whitespace, or not UTF-8.
    assert_eq!(upload(&api, "/", b" ").status(), 200);
}

#[test]
fn a_file_is_read_up_to_its_own_limit_and_told_it_when_over() {
    let policy = Policy::new(Limits { max_file_bytes: 3 * 1_048_576, ..Limits::default() }).unwrap();
    let (api, store) = api(policy);
    let mut file = HeaderMap::new();
    file.insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/octet-stream"));
    let json = HeaderMap::new();
    assert_eq!(api.body_limit(&Method::POST, "/", &file), Some(3 * 1_048_576));
    assert_eq!(api.body_limit(&Method::POST, "/", &json), Some(1_048_576));
    assert_eq!(api.body_limit(&Method::GET, "/abcd1", &file), None);
    assert_eq!(api.body_limit(&Method::POST, "/abcd1", &file), None);
    let over = api.reject_body(&file, BodyRejection::TooLarge);
    assert_eq!(
        (over.status(), body(&over)["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("File exceeds maximum size of 3MB"))
    );
    assert_eq!(over.headers()[header::CONNECTION], "close");
    let over = api.reject_body(&json, BodyRejection::TooLarge);
    assert_eq!(body(&over)["error"], "Request body too large");
    // A runtime that read more than the limit anyway still gets the 413, from the domain.
    let r = upload(&api, "/", &vec![7; 3 * 1_048_576 + 1]);
    assert_eq!(
        (r.status(), body(&r)["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("File exceeds maximum size of 3MB"))
    );
    assert!(store.is_empty());
    let odd = Policy::new(Limits { max_file_bytes: 1_000_000, ..Limits::default() }).unwrap();
    let (odd, _) = self::api(odd);
    assert_eq!(
        body(&odd.reject_body(&file, BodyRejection::TooLarge))["error"],
        "File exceeds maximum size of 1000000 bytes"
    );
    let busy = api.reject_body(&file, BodyRejection::Busy);
    assert_eq!((busy.status(), body(&busy)["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("Server busy")));
    assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
}
