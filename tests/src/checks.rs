//! One function per behaviour of SPEC.md, each starting its own target.

use crate::{not_applicable, raw_exchange, Launch, Profile, Target};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NOT_FOUND: &str = r#"{"error":"Message not found"}"#;
const INVALID_JSON: &str = "Invalid JSON body";
const MESSAGE_REQUIRED: &str = "Field 'message' is required and cannot be empty";
const TOO_LARGE: &str = "Message exceeds maximum size of 100KB";

/// Every check, by name (the list is written once, in the [`checks!`](crate::checks) macro).
pub static ALL: &[(&str, Check)] = crate::checks! {@list @table};

/// One check, given how to launch its target.
pub type Check = fn(Launch) -> futures::future::LocalBoxFuture<'static, ()>;

/// Runs the check called `name` against targets from `launch`.
pub async fn run(name: &str, launch: Launch) {
    let (_, check) = ALL.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no check is called {name}"));
    check(launch).await;
}

/// The `error` string of a JSON error body, asserting there is one (a `detail` may stand
/// beside it, nothing else).
fn error_of(r: &crate::Resp) -> String {
    let body = r.json();
    let object = body.as_object().unwrap_or_else(|| panic!("error body is not an object: {body}"));
    assert!(object.keys().all(|k| k == "error" || k == "detail"), "unexpected fields: {body}");
    object.get("error").and_then(Value::as_str).unwrap_or_else(|| panic!("no error string: {body}")).to_owned()
}

fn body_eq(r: &crate::Resp, expected: &str) {
    let expected: Value = serde_json::from_str(expected).unwrap();
    assert_eq!(r.json(), expected, "status {}", r.status);
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (an optional fraction is allowed) into Unix seconds.
fn parse_rfc3339(s: &str) -> i64 {
    let bad = || panic!("not RFC 3339 UTC: {s:?}");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        bad();
    }
    if !s.ends_with('Z') {
        bad();
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap_or_else(|_| bad());
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

async fn round_trip(t: &Target, message: &str) {
    let id = t.create(message).await;
    let r = t.get(&format!("/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({ "message": message, "views_left": 0 }), "message changed in transit");
}

/// `POST /` answers 200 with a 5-character `[A-Za-z0-9]` id and an RFC 3339 `expires_at`.
async fn create_answers_an_id_of_the_configured_shape(launch: Launch) {
    let t = launch(Profile::base()).await;
    let r = t.post(json!({"message": "hello"})).await;
    assert_eq!(r.status, 200);
    let body = r.json();
    let id = body["id"].as_str().expect("id");
    if t.caps.configurable {
        assert_eq!(id.len(), 5, "{id}");
    }
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    if t.caps.configurable {
        assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "not [a-z0-9]: {id}");
    }
    if let Some(at) = body.get("expires_at") {
        parse_rfc3339(at.as_str().expect("expires_at is a string"));
    }
}

/// Ids are 5 symbols of the reference's `[a-z0-9]` by default, and of `[A-Za-z0-9]` when
/// `CRYPT_ID_ALPHABET` says so.
async fn ids_use_the_reference_alphabet_unless_configured(launch: Launch) {
    let t = launch(Profile::base()).await;
    if !t.caps.configurable {
        return not_applicable("id alphabet", &t, "the deployment's CRYPT_ID_ALPHABET is unknown");
    }
    for _ in 0..40 {
        let id = t.create("alphabet").await;
        assert!(id.len() == 5 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{id}");
    }
    let t = launch(Profile::base().with("CRYPT_ID_ALPHABET", "A-Za-z0-9")).await;
    let mut ids = String::new();
    for _ in 0..40 {
        let id = t.create("alphabet").await;
        assert!(id.len() == 5 && id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        assert_eq!(t.get(&format!("/{id}")).await.status, 200, "a mixed-case id reads back");
        ids.push_str(&id);
    }
    // 200 symbols of 62 with no capital letter would happen about once in 10^47 runs.
    assert!(ids.bytes().any(|b| b.is_ascii_uppercase()), "no upper case in {ids}");
}

/// The first read returns the message; the second answers 404 with the reference body.
async fn first_read_returns_the_message_and_destroys_it(launch: Launch) {
    let t = launch(Profile::base()).await;
    let id = t.create("burn after reading").await;
    let first = t.get(&format!("/{id}")).await;
    assert_eq!(first.status, 200);
    body_eq(&first, r#"{"message":"burn after reading","views_left":0}"#);
    let second = t.get(&format!("/{id}")).await;
    assert_eq!(second.status, 404);
    body_eq(&second, NOT_FOUND);
}

/// An id that was never issued is 404 with exactly `{"error":"Message not found"}`.
async fn unknown_ids_are_404_with_the_exact_body(launch: Launch) {
    let t = launch(Profile::base()).await;
    for id in ["zzzzz", "Zz9Zz", "abcdefghij"] {
        let r = t.get(&format!("/{id}")).await;
        assert_eq!(r.status, 404, "{id}");
        body_eq(&r, NOT_FOUND);
    }
}

/// Ids too short, too long, or with characters outside `[A-Za-z0-9]` are 404, never 400 or 500.
async fn wrong_shaped_ids_are_404(launch: Launch) {
    let t = launch(Profile::base()).await;
    let too_long = "a".repeat(65);
    let paths = [
        "/abc",
        "/abcd",
        too_long.as_str(),
        "/ab%2Fcd",
        "/%00abcd",
        "/abcd%00",
        "/..abc",
        "/%2E%2E%2Fx",
        "/abcd%C3%A9",
        "/h%C3%A9llo",
        "/abc-d",
        "/abc_d",
        "/ABCDE",
    ];
    for p in paths {
        let p = if p.starts_with('/') { p.to_owned() } else { format!("/{p}") };
        let r = t.get(&p).await;
        assert_eq!(r.status, 404, "{p}");
        body_eq(&r, NOT_FOUND);
    }
    // Two segments are not an id at all: the route is not found.
    for p in ["/abcde/", "/abcde/extra"] {
        let r = t.get(p).await;
        assert_eq!((r.status, error_of(&r).as_str()), (404, "Not found"), "{p}");
    }
}

/// Every character survives: emoji, NUL, newlines, quotes, right-to-left text, markup.
async fn unicode_round_trips_exactly(launch: Launch) {
    let t = launch(Profile::base()).await;
    let messages = [
        "emoji 🔥🎉 family 👩‍👩‍👧 flag 🇳🇿",
        "nul \u{0} in the middle",
        "line one\nline two\r\nline three\n",
        "quotes \" ' ` and a backslash \\ and \\\"",
        "日本語 العربية עברית Ελληνικά",
        "\u{feff}leading BOM and zero width\u{200b}joiner",
        "<script>alert('x')</script>&amp;",
        "   leading and trailing spaces   ",
        "\u{10FFFF} highest code point",
    ];
    for m in messages {
        round_trip(&t, m).await;
    }
}

/// 102,400 ASCII bytes are accepted (and come back whole); 102,401 are 413.
async fn message_size_limit_counts_bytes_ascii(launch: Launch) {
    let t = launch(Profile::base()).await;
    round_trip(&t, &"a".repeat(102_400)).await;
    let r = t.post(json!({ "message": "a".repeat(102_401) })).await;
    assert_eq!(r.status, 413);
    assert_eq!(error_of(&r), TOO_LARGE);
}

/// The limit is in bytes of UTF-8, not characters.
async fn message_size_limit_counts_bytes_multibyte(launch: Launch) {
    let t = launch(Profile::base()).await;
    round_trip(&t, &"é".repeat(51_200)).await;
    round_trip(&t, &"😀".repeat(25_600)).await;
    for over in ["é".repeat(51_200) + "a", "😀".repeat(25_601), "€".repeat(34_134)] {
        let r = t.post(json!({ "message": over })).await;
        assert_eq!(r.status, 413, "{} bytes", over.len());
        assert_eq!(error_of(&r), TOO_LARGE);
    }
}

/// The body is JSON whatever the Content-Type says (curl -d sends form encoding).
async fn any_content_type_is_parsed_as_json(launch: Launch) {
    let t = launch(Profile::base()).await;
    for ct in ["application/x-www-form-urlencoded", "text/plain", "application/octet-stream"] {
        let r = t.send("POST", "/", Some(br#"{"message":"typed"}"#.to_vec()), &[("content-type", ct)]).await;
        assert_eq!(r.status, 200, "{ct}");
    }
    let r = t.send("POST", "/", Some(br#"{"message":"untyped"}"#.to_vec()), &[]).await;
    assert_eq!(r.status, 200);
}

fn assert_400_with(r: &crate::Resp, input: &str, error: &str) {
    assert_eq!(r.status, 400, "{input:?}: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(error_of(r), error, "{input:?}");
}

/// Malformed, truncated, non-object and non-UTF-8 bodies are 400 with a reason.
async fn malformed_json_is_400(launch: Launch) {
    let t = launch(Profile::base()).await;
    let inputs: [(&[u8], &str); 16] = [
        (b"", INVALID_JSON),
        (b" \n\t ", INVALID_JSON),
        (b"{", INVALID_JSON),
        (b"{\"message\": \"abc", INVALID_JSON),
        (b"not json", INVALID_JSON),
        (b"{'message': 'single quotes'}", INVALID_JSON),
        (b"{message: \"bare key\"}", INVALID_JSON),
        (b"{\"message\": \"x\",}", INVALID_JSON),
        (b"{\"message\": \"x\"} trailing", INVALID_JSON),
        (b"{\"message\": \"\xff\xfe invalid utf-8\"}", INVALID_JSON),
        (b"[]", MESSAGE_REQUIRED),
        (b"[{\"message\":\"x\"}]", MESSAGE_REQUIRED),
        (b"\"just a string\"", MESSAGE_REQUIRED),
        (b"42", MESSAGE_REQUIRED),
        (b"null", MESSAGE_REQUIRED),
        (b"true", MESSAGE_REQUIRED),
    ];
    for (input, error) in inputs {
        let r = t.post_raw(input.to_vec()).await;
        assert_400_with(&r, &String::from_utf8_lossy(input), error);
    }
    // Form encoding proper (not JSON) is refused, not half-parsed.
    let r = t
        .send("POST", "/", Some(b"message=hello".to_vec()), &[("content-type", "application/x-www-form-urlencoded")])
        .await;
    assert_400_with(&r, "message=hello", INVALID_JSON);
    // Still serving.
    t.create("after the garbage").await;
}

/// `message` missing, null, a number, an array, an object, a boolean, empty or whitespace: 400.
async fn bad_messages_are_400(launch: Launch) {
    let t = launch(Profile::base()).await;
    let bodies = [
        json!({}),
        json!({"msg": "wrong field"}),
        json!({"message": null}),
        json!({"message": 42}),
        json!({"message": 4.2}),
        json!({"message": ["a"]}),
        json!({"message": {"text": "a"}}),
        json!({"message": true}),
        json!({"message": ""}),
        json!({"message": "   "}),
        json!({"message": " \n\t\r "}),
    ];
    for b in bodies {
        let r = t.post(b.clone()).await;
        assert_400_with(&r, &b.to_string(), MESSAGE_REQUIRED);
    }
}

/// The reference service's own test cases, byte for byte: each bad body gets its exact string
/// and nothing else but an optional `detail`.
async fn reference_bodies_get_the_reference_strings(launch: Launch) {
    let t = launch(Profile::base()).await;
    let cases: [(&[u8], u16, &str); 11] = [
        (b"", 400, INVALID_JSON),
        (b"   ", 400, INVALID_JSON),
        (b"{not json", 400, INVALID_JSON),
        (b"null", 400, MESSAGE_REQUIRED),
        (b"[]", 400, MESSAGE_REQUIRED),
        (b"\"text\"", 400, MESSAGE_REQUIRED),
        (br#"{"message": 0}"#, 400, MESSAGE_REQUIRED),
        (br#"{"message": ""}"#, 400, MESSAGE_REQUIRED),
        (br#"{"message": "   "}"#, 400, MESSAGE_REQUIRED),
        (br#"{"other": "x"}"#, 400, MESSAGE_REQUIRED),
        (br#"{"message": false}"#, 400, MESSAGE_REQUIRED),
    ];
    for (input, status, error) in cases {
        let r = t.post_raw(input.to_vec()).await;
        assert_eq!((r.status, error_of(&r)), (status, error.to_owned()), "{:?}", String::from_utf8_lossy(input));
        assert_eq!(r.header("content-type"), "application/json");
    }
    let r = t.post(json!({ "message": "x".repeat(102_401) })).await;
    assert_eq!((r.status, error_of(&r)), (413, TOO_LARGE.to_owned()));
    let r = t.get("/zzzzz").await;
    assert_eq!((r.status, error_of(&r)), (404, "Message not found".to_owned()));
    let r = t.get("/a/b").await;
    assert_eq!((r.status, error_of(&r)), (404, "Not found".to_owned()));
    let r = t.send("PUT", "/", None, &[]).await;
    assert_eq!((r.status, error_of(&r)), (405, "Method not allowed".to_owned()));
}

/// `ttl` zero, negative, fractional, a string, a boolean, null, or out of range: 400.
async fn bad_ttls_are_400(launch: Launch) {
    let t = launch(Profile::base()).await;
    let ttls = [
        json!(0),
        json!(-1),
        json!(-3600),
        json!(1.5),
        json!("60"),
        json!(true),
        json!(null),
        json!([60]),
        json!(86_401),
        json!(1e10),
        json!(18_446_744_073_709_551_616u128 as f64),
    ];
    for ttl in ttls {
        let b = json!({"message": "x", "ttl": ttl});
        let r = t.post(b.clone()).await;
        assert_eq!(r.status, 400, "{b}");
        let error = error_of(&r);
        if t.caps.configurable {
            assert_eq!(error, "Field 'ttl' must be a whole number of seconds from 1 to 86400", "{b}");
        } else {
            assert!(error.starts_with("Field 'ttl' must be a whole number of seconds from "), "{b}: {error}");
        }
    }
    let r = t.post(json!({"message": "x", "ttl": 86_400})).await;
    assert_eq!(r.status, 200, "the maximum ttl is allowed");
    let r = t.post_raw(r#"{"message": "x", "ttl": 3600.0}"#).await;
    assert_eq!(r.status, 200, "3600.0 is the whole number 3600, as JSON Schema counts it");
}

/// A short `ttl` expires the message; `expires_at` says when.
async fn ttl_is_honoured_and_reported(launch: Launch) {
    let t = launch(Profile::base()).await;
    let r = t.post(json!({"message": "one hour", "ttl": 3600})).await;
    assert_eq!(r.status, 200);
    if let Some(at) = r.json().get("expires_at").and_then(Value::as_str) {
        let delta = parse_rfc3339(at) - now_secs();
        assert!((3595..=3601).contains(&delta), "expires_at is {delta} s away");
    }
    if !t.caps.configurable {
        return not_applicable("ttl expiry", &t, "needs CRYPT_MIN_TTL_SECS=1");
    }
    let r = t.post(json!({"message": "fleeting", "ttl": 1})).await;
    assert_eq!(r.status, 200);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let unread = t.create("kept").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let gone = t.get(&format!("/{id}")).await;
    assert_eq!(gone.status, 404);
    body_eq(&gone, NOT_FOUND);
    assert_eq!(t.get(&format!("/{unread}")).await.status, 200, "a default-ttl message outlives a 1 s one");
}

/// Without `ttl`, a message lives 24 hours.
async fn default_ttl_is_24_hours(launch: Launch) {
    let t = launch(Profile::base()).await;
    let r = t.post(json!({"message": "a day"})).await;
    match r.json().get("expires_at").and_then(Value::as_str) {
        Some(at) => {
            let delta = parse_rfc3339(at) - now_secs();
            assert!((86_395..=86_401).contains(&delta), "expires_at is {delta} s away");
        }
        None => not_applicable("default ttl", &t, "no expires_at in the answer"),
    }
}

fn assert_api_headers(r: &crate::Resp, what: &str) {
    if r.status != 204 {
        assert!(
            r.header("content-type").starts_with("application/json"),
            "{what}: content-type {:?}",
            r.header("content-type")
        );
    }
    assert_eq!(r.header("cache-control"), "no-store", "{what}");
    assert_eq!(r.header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(r.header("referrer-policy"), "no-referrer", "{what}");
    assert!(!r.header("access-control-allow-origin").is_empty(), "{what}: no Access-Control-Allow-Origin");
}

/// Every answer is JSON with `no-store`, `nosniff` and `no-referrer`, errors included.
async fn api_responses_carry_json_and_security_headers(launch: Launch) {
    let t = launch(Profile::base()).await;
    let created = t.post(json!({"message": "h"})).await;
    assert_api_headers(&created, "200 create");
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_api_headers(&t.get(&format!("/{id}")).await, "200 read");
    assert_api_headers(&t.get(&format!("/{id}")).await, "404 read");
    assert_api_headers(&t.post_raw("nope").await, "400");
    assert_api_headers(&t.send("PUT", "/", None, &[]).await, "405");
    assert_api_headers(&t.post(json!({"message": "a".repeat(102_401)})).await, "413");
    assert_api_headers(&t.send("OPTIONS", "/", None, &[]).await, "204");
}

/// `OPTIONS` on any path is 204 with the allowed methods, headers and a max age.
async fn cors_preflight_answers_204_on_any_path(launch: Launch) {
    let t = launch(Profile::base()).await;
    for path in ["/", "/abcde", "/healthz", "/a/b/c"] {
        let headers = [("origin", "https://app.example"), ("access-control-request-method", "POST")];
        let r = t.send("OPTIONS", path, None, &headers).await;
        assert_eq!(r.status, 204, "{path}");
        assert!(r.body.is_empty());
        assert_eq!(r.header("access-control-allow-methods"), "GET, POST, DELETE, OPTIONS");
        assert_eq!(r.header("access-control-allow-headers"), "Content-Type, Authorization");
        assert!(
            r.header("access-control-max-age").parse::<u64>().is_ok(),
            "max age {:?}",
            r.header("access-control-max-age")
        );
        assert!(!r.header("access-control-allow-origin").is_empty());
    }
}

/// A preflight that carries an empty body (`Content-Length: 0`), as some clients send it, is
/// 204 with nothing in the body, like any other.
async fn preflight_with_an_empty_body_is_204(launch: Launch) {
    let t = launch(Profile::base()).await;
    for path in ["/", "/abcde"] {
        let headers =
            [("origin", "https://app.example"), ("access-control-request-method", "POST"), ("content-length", "0")];
        let r = t.send("OPTIONS", path, Some(Vec::new()), &headers).await;
        assert_eq!(r.status, 204, "{path}");
        assert!(r.body.is_empty(), "{path}: {:?}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("access-control-allow-methods"), "GET, POST, DELETE, OPTIONS");
    }
}

/// With the default setting, every response says `Access-Control-Allow-Origin: *`.
async fn cors_origin_is_on_every_response(launch: Launch) {
    let t = launch(Profile::base()).await;
    if !t.caps.configurable {
        return not_applicable("default CORS origin", &t, "deployment's CRYPT_CORS_ORIGINS is unknown");
    }
    let created = t.post(json!({"message": "c"})).await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let responses = [
        created,
        t.get(&format!("/{id}")).await,
        t.get("/zzzzz").await,
        t.post_raw("{").await,
        t.send("DELETE", "/zzzzz", None, &[]).await,
    ];
    for r in responses {
        assert_eq!(r.header("access-control-allow-origin"), "*", "status {}", r.status);
    }
}

/// With a list of origins, a listed origin is echoed (with `Vary: Origin`); others are not.
async fn configured_cors_origins_are_echoed(launch: Launch) {
    let t = launch(Profile::base().with("CRYPT_CORS_ORIGINS", "https://a.example,https://b.example")).await;
    if !t.caps.configurable {
        return not_applicable("CORS origin list", &t, "needs CRYPT_CORS_ORIGINS");
    }
    let r = t.send("POST", "/", Some(br#"{"message":"x"}"#.to_vec()), &[("origin", "https://b.example")]).await;
    assert_eq!(r.header("access-control-allow-origin"), "https://b.example");
    assert!(r.header("vary").to_ascii_lowercase().contains("origin"));
    let r = t.send("GET", "/zzzzz", None, &[("origin", "https://evil.example")]).await;
    assert_ne!(r.header("access-control-allow-origin"), "https://evil.example");
    assert_ne!(r.header("access-control-allow-origin"), "*");
    let r = t.send("OPTIONS", "/", None, &[("origin", "https://a.example")]).await;
    assert_eq!(r.header("access-control-allow-origin"), "https://a.example");
}

/// A method a path does not serve is 405 with an `Allow` header; nothing is burned by it.
async fn wrong_methods_are_405_with_allow(launch: Launch) {
    let t = launch(Profile::base()).await;
    let id = t.create("do not burn").await;
    for m in ["GET", "PUT", "DELETE", "PATCH"] {
        let r = t.send(m, "/", None, &[]).await;
        assert_eq!(r.status, 405, "{m} /");
        assert_eq!(error_of(&r), "Method not allowed");
        assert!(r.header("allow").contains("POST"), "{m} /: Allow {:?}", r.header("allow"));
    }
    for m in ["POST", "PUT", "DELETE", "PATCH", "HEAD"] {
        let r = t.send(m, &format!("/{id}"), None, &[]).await;
        assert_eq!(r.status, 405, "{m} /id");
        assert!(r.header("allow").contains("GET"), "{m} /id: Allow {:?}", r.header("allow"));
    }
    assert_eq!(t.get(&format!("/{id}")).await.status, 200, "405s must not burn the message");
}

/// The reference's own cases: PUT and DELETE on `/`, POST on `/{id}`: 405 with the exact string,
/// and the message under that id is still there afterwards.
async fn reference_405s_and_nothing_burned(launch: Launch) {
    let t = launch(Profile::base()).await;
    let id = t.create("still here").await;
    let path = format!("/{id}");
    for (m, p, allow) in [("PUT", "/", "POST"), ("DELETE", "/", "POST"), ("POST", path.as_str(), "GET")] {
        let r = t.send(m, p, Some(br#"{"message":"x"}"#.to_vec()), &[]).await;
        assert_eq!((r.status, error_of(&r)), (405, "Method not allowed".to_owned()), "{m} {p}");
        assert!(r.header("allow").contains(allow), "{m} {p}: Allow {:?}", r.header("allow"));
        assert_api_headers(&r, "405");
    }
    let r = t.get(&path).await;
    assert_eq!((r.status, r.json()), (200, json!({"message": "still here", "views_left": 0})));
}

/// A path that is neither `/`, an id nor an operations route is 404 `Not found` (as JSON).
async fn unknown_paths_are_404(launch: Launch) {
    let t = launch(Profile::base()).await;
    for (m, p) in [("GET", "/a/b"), ("POST", "/a/b/c"), ("GET", "/static/app.js"), ("DELETE", "/x/y")] {
        let r = t.send(m, p, None, &[]).await;
        assert_eq!((r.status, error_of(&r)), (404, "Not found".to_owned()), "{m} {p}");
    }
}

/// Over the budget: 429, `{"error":"Rate limit exceeded"}`, `Retry-After` in whole seconds.
/// POST and GET count alike; OPTIONS and operations routes do not.
async fn rate_limit_is_429_with_retry_after(launch: Launch) {
    let t = launch(Profile::base().with("CRYPT_RATE_LIMIT_MAX", 5).with("CRYPT_RATE_LIMIT_WINDOW_SECS", 60)).await;
    if !t.caps.configurable {
        return not_applicable("rate limit", &t, "needs CRYPT_RATE_LIMIT_MAX=5");
    }
    for _ in 0..3 {
        assert_eq!(t.send("OPTIONS", "/", None, &[]).await.status, 204);
    }
    let id = t.create("one").await;
    t.create("two").await;
    t.create("three").await;
    assert_eq!(t.get(&format!("/{id}")).await.status, 200);
    assert_eq!(t.get("/zzzzz").await.status, 404);
    for r in [t.post(json!({"message": "six"})).await, t.get("/zzzzz").await] {
        assert_eq!(r.status, 429);
        body_eq(&r, r#"{"error":"Rate limit exceeded"}"#);
        let retry: u64 = r.header("retry-after").parse().expect("Retry-After is whole seconds");
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        assert_eq!(r.header("cache-control"), "no-store");
    }
}

/// Like the reference, every request but a preflight and the operations routes counts against
/// the limit: 405s and unknown paths spend the budget too.
async fn rate_limit_counts_405s_and_unknown_paths(launch: Launch) {
    let t = launch(Profile::base().with("CRYPT_RATE_LIMIT_MAX", 3).with("CRYPT_RATE_LIMIT_WINDOW_SECS", 60)).await;
    if !t.caps.configurable {
        return not_applicable("rate limit counting", &t, "needs CRYPT_RATE_LIMIT_MAX=3");
    }
    assert_eq!(t.send("PUT", "/", None, &[]).await.status, 405);
    assert_eq!(t.get("/a/b").await.status, 404);
    assert_eq!(t.post_raw("not json").await.status, 400);
    assert_eq!(t.get("/healthz").await.status, 200, "operations routes are never limited");
    let r = t.get("/zzzzz").await;
    assert_eq!((r.status, error_of(&r)), (429, "Rate limit exceeded".to_owned()));
}

/// An IPv6 client counts by its /64 (SPEC Part 2 item 2): rotating addresses inside it meets
/// one limit; the next /64 is another client; an IPv4-mapped address is its IPv4 address. The
/// client's address reaches the server through a trusted proxy's `X-Forwarded-For`, and the
/// Worker through `CF-Connecting-IP` (both sent; each runtime reads its own).
async fn ipv6_clients_count_by_prefix(launch: Launch) {
    let t = launch(
        Profile::base()
            .with("CRYPT_RATE_LIMIT_MAX", 2)
            .with("CRYPT_RATE_LIMIT_WINDOW_SECS", 60)
            .with("CRYPT_TRUSTED_PROXIES", "127.0.0.1,::1"),
    )
    .await;
    if !t.caps.configurable {
        return not_applicable("IPv6 prefix", &t, "needs CRYPT_RATE_LIMIT_MAX=2 and a trusted proxy");
    }
    let t = &t;
    let from = |ip: &'static str| async move {
        t.send("GET", "/zzzzz", None, &[("x-forwarded-for", ip), ("cf-connecting-ip", ip)]).await.status
    };
    assert_eq!(from("2001:db8:0:1::1").await, 404);
    assert_eq!(from("2001:db8:0:1:8000::2").await, 404);
    assert_eq!(from("2001:db8:0:1:ffff:ffff:ffff:ffff").await, 429, "the same /64 is one client");
    assert_eq!(from("2001:db8:0:2::1").await, 404, "the next /64 is another client");
    assert_eq!(from("198.51.100.4").await, 404);
    assert_eq!(from("::ffff:198.51.100.4").await, 404);
    assert_eq!(from("198.51.100.4").await, 429, "an IPv4-mapped address counts as its IPv4 address");
    assert_eq!(from("198.51.100.5").await, 404, "the next IPv4 address is another client");
}

/// The reference's `RATE_LIMIT_PER_SECOND=3`: three requests in a second, the fourth is 429
/// with `Retry-After: 1`, and a second later the client is served again.
async fn reference_rate_limit_per_second(launch: Launch) {
    let t = launch(Profile::base().with("RATE_LIMIT_PER_SECOND", 3)).await;
    if !t.caps.configurable {
        return not_applicable("RATE_LIMIT_PER_SECOND", &t, "needs RATE_LIMIT_PER_SECOND=3");
    }
    // The burst must fit in one second for the count to be exact; on a machine so loaded that
    // it does not, the burst is tried again after the window has emptied.
    for attempt in 0.. {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let started = std::time::Instant::now();
        let burst = futures::future::join_all((0..6).map(|_| t.get("/zzzzz"))).await;
        if started.elapsed() > Duration::from_millis(800) && attempt < 3 {
            continue;
        }
        let mut statuses: Vec<u16> = burst.iter().map(|r| r.status).collect();
        statuses.sort_unstable();
        assert_eq!(statuses, [404, 404, 404, 429, 429, 429]);
        for r in burst.iter().filter(|r| r.status == 429) {
            assert_eq!(r.header("retry-after"), "1");
            assert_eq!(error_of(r), "Rate limit exceeded");
        }
        break;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(t.get("/zzzzz").await.status, 404, "the 1-second window has passed");
}

/// A body over the cap sent with Content-Length is refused with 413 without being read.
async fn body_over_the_cap_with_content_length_is_413(launch: Launch) {
    let t = launch(Profile::base()).await;
    if !t.caps.raw_tcp {
        return not_applicable("Content-Length over the cap", &t, "raw TCP needs plain http");
    }
    let host = t.authority();
    if t.caps.streamed_bodies {
        // Declares 1 GiB and sends a little: the answer must not wait for the rest.
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n"
        );
        let r = raw_exchange(&host, head, vec![vec![b'a'; 65_536]], Duration::from_secs(10)).await;
        assert_eq!(r.status, 413, "{}", r.text);
        assert!(r.text.contains(r#""error":"Request body too large""#), "{}", r.text);
    } else {
        not_applicable("1 GiB declared, never sent", &t, "a local proxy buffers whole bodies before the Worker runs");
    }
    // Declares and sends 2 MiB.
    let head = format!("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2097152\r\n\r\n");
    let r = raw_exchange(&host, head, vec![vec![b'a'; 65_536]; 32], Duration::from_secs(10)).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.text.contains(r#""error":"Request body too large""#), "{}", r.text);
    t.create("still serving").await;
}

/// A chunked body is cut off at the cap with 413.
async fn body_over_the_cap_chunked_is_413(launch: Launch) {
    let t = launch(Profile::base()).await;
    if !t.caps.raw_tcp {
        return not_applicable("chunked body over the cap", &t, "raw TCP needs plain http");
    }
    let host = t.authority();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut chunk = format!("{:x}\r\n", 65_536).into_bytes();
    chunk.extend(std::iter::repeat_n(b'a', 65_536));
    chunk.extend_from_slice(b"\r\n");
    let mut chunks = vec![chunk; 40];
    chunks.push(b"0\r\n\r\n".to_vec());
    let r = raw_exchange(&host, head, chunks, Duration::from_secs(10)).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.text.contains(r#""error":"Request body too large""#), "{}", r.text);
    // A chunked body under the cap is fine.
    let head = format!("POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    let body = br#"{"message":"chunked"}"#;
    let framed = [format!("{:x}\r\n", body.len()).into_bytes(), body.to_vec(), b"\r\n0\r\n\r\n".to_vec()].concat();
    let r = raw_exchange(&host, head, vec![framed], Duration::from_secs(10)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// A client that sends its headers one byte at a time is cut off at the header timeout, and
/// everyone else is served meanwhile.
async fn slow_headers_are_cut_off_while_others_are_served(launch: Launch) {
    let t = launch(Profile::base().with("CRYPT_HEADER_TIMEOUT_MS", 1000)).await;
    if !(t.caps.raw_tcp && t.caps.header_timeout && t.caps.configurable) {
        return not_applicable("slow headers", &t, "needs raw TCP and CRYPT_HEADER_TIMEOUT_MS");
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut slow = tokio::net::TcpStream::connect(t.authority()).await.unwrap();
    let started = std::time::Instant::now();
    let dribble = async {
        for b in b"POST / HTTP/1.1\r\nHost: slow\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
            if slow.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut buf = [0u8; 1024];
        // The server closes (maybe after a 408); reading then ends.
        let _ = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut buf)).await;
    };
    let others = async {
        for i in 0..5 {
            t.create(&format!("served while a slow client dribbles {i}")).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::join!(dribble, others);
    let held = started.elapsed();
    assert!(held < Duration::from_secs(6), "the slow client held its connection for {held:?}");
}

/// Many concurrent creates get distinct ids, and each reads back its own message.
async fn concurrent_creates_get_distinct_ids(launch: Launch) {
    let t = launch(Profile::base()).await;
    let creates = (0..200).map(|i| {
        let t = &t;
        async move { (i, t.create(&format!("message number {i}")).await) }
    });
    let ids: Vec<(usize, String)> = futures::future::join_all(creates).await;
    let distinct: HashSet<&String> = ids.iter().map(|(_, id)| id).collect();
    assert_eq!(distinct.len(), 200, "duplicate ids were issued");
    for (i, id) in ids.iter().take(50) {
        assert_eq!(t.get(&format!("/{id}")).await.json()["message"], format!("message number {i}"));
    }
}

/// Many concurrent reads of one id: exactly one 200, every other a 404. 200 ids, 8 readers
/// each, 5 ids at a time (40 reads in flight: with the 200 creates of the check beside it, one
/// client stays under a deployment's default 256 connections per client).
async fn concurrent_reads_of_one_id_give_exactly_one_200(launch: Launch) {
    let t = launch(Profile::base()).await;
    if !t.caps.exact_once {
        return not_applicable("exactly-once under concurrent reads", &t, "the store cannot burn atomically (KV)");
    }
    for batch in 0..40 {
        let texts: Vec<String> = (0..5).map(|i| format!("race {batch}/{i}")).collect();
        let ids: Vec<String> = futures::future::join_all(texts.iter().map(|m| t.create(m))).await;
        let rounds = ids.iter().map(|id| {
            let t = &t;
            async move {
                let path = format!("/{id}");
                let reads = (0..8).map(|_| t.get(&path));
                let statuses: Vec<u16> = futures::future::join_all(reads).await.iter().map(|r| r.status).collect();
                (id, statuses)
            }
        });
        for (id, statuses) in futures::future::join_all(rounds).await {
            assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "batch {batch}, {id}: {statuses:?}");
            assert!(statuses.iter().all(|&s| s == 200 || s == 404), "batch {batch}, {id}: {statuses:?}");
        }
    }
}

const VIEWS_RANGE: &str = "Field 'views' must be a whole number from 1 to ";

/// `POST /` with a JSON body: the id and the receipt token, asserting success.
async fn create_for_sender(t: &Target, body: Value) -> (String, String) {
    let r = t.post(body).await;
    assert_eq!(r.status, 200, "create failed: {:?}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    (body["id"].as_str().expect("id").to_owned(), body["receipt"].as_str().expect("receipt").to_owned())
}

/// `GET /{id}/receipt` with `Authorization: <auth>` (no header when `auth` is `None`).
async fn receipt_with(t: &Target, id: &str, auth: Option<&str>) -> crate::Resp {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    t.send("GET", &format!("/{id}/receipt"), None, &headers).await
}

/// `DELETE /{id}` with `Authorization: <auth>` (no header when `auth` is `None`).
async fn delete_with(t: &Target, id: &str, auth: Option<&str>) -> crate::Resp {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    t.send("DELETE", &format!("/{id}"), None, &headers).await
}

/// A receipt answer's fields, checked for shape: exactly `state`, `views_left`, `read_at` (RFC
/// 3339 instants, oldest first) and `expires_at`, never the message.
fn receipt_fields(r: &crate::Resp) -> (String, u64, Vec<i64>, String) {
    assert_eq!(r.status, 200, "receipt: {:?}", String::from_utf8_lossy(&r.body));
    assert_api_headers(r, "receipt");
    let body = r.json();
    let keys: Vec<&String> = body.as_object().expect("a receipt is an object").keys().collect();
    assert_eq!(keys.len(), 4, "a receipt has exactly state, views_left, read_at, expires_at: {body}");
    let read_at: Vec<i64> = body["read_at"]
        .as_array()
        .expect("read_at is a list")
        .iter()
        .map(|at| parse_rfc3339(at.as_str().expect("read_at holds strings")))
        .collect();
    assert!(read_at.windows(2).all(|w| w[0] <= w[1]), "read_at is oldest first: {body}");
    let expires_at = body["expires_at"].as_str().expect("expires_at");
    parse_rfc3339(expires_at);
    (
        body["state"].as_str().expect("state").to_owned(),
        body["views_left"].as_u64().expect("views_left is a number"),
        read_at,
        expires_at.to_owned(),
    )
}

/// `"views": N` (SPEC Part 2 item 9): each read answers the message and the views left, the
/// one that spends the last destroys it; without `views`, one read as in Part 1.
async fn views_are_spent_one_by_one_then_the_message_is_gone(launch: Launch) {
    let t = launch(Profile::base()).await;
    let (id, _) = create_for_sender(&t, json!({"message": "for a team of three", "views": 3})).await;
    for left in [2, 1, 0] {
        let r = t.get(&format!("/{id}")).await;
        assert_eq!((r.status, r.json()), (200, json!({"message": "for a team of three", "views_left": left})));
    }
    let r = t.get(&format!("/{id}")).await;
    assert_eq!(r.status, 404);
    body_eq(&r, NOT_FOUND);
    let (id, _) = create_for_sender(&t, json!({"message": "one", "views": 1.0})).await;
    assert_eq!(t.get(&format!("/{id}")).await.json(), json!({"message": "one", "views_left": 0}));
    assert_eq!(t.get(&format!("/{id}")).await.status, 404);
}

/// `views` out of range or not a whole number: 400 with the allowed range, and nothing stored
/// (the next create still succeeds).
async fn bad_views_are_400_with_the_range(launch: Launch) {
    let t = launch(Profile::base()).await;
    let mut bad = vec![json!(0), json!("3"), json!(2.5), json!(-1), json!(true), json!(null), json!([3]), json!({})];
    if t.caps.configurable {
        bad.push(json!(101));
    }
    for views in bad {
        let r = t.post(json!({"message": "x", "views": views})).await;
        assert_eq!(r.status, 400, "views {views}");
        let error = error_of(&r);
        assert!(error.starts_with(VIEWS_RANGE), "views {views}: {error}");
        if t.caps.configurable {
            assert_eq!(error, format!("{VIEWS_RANGE}100"), "views {views}");
        }
    }
    if !t.caps.configurable {
        return not_applicable("CRYPT_MAX_VIEWS", &t, "the deployment's maximum is unknown");
    }
    let t = launch(Profile::base().with("CRYPT_MAX_VIEWS", 5)).await;
    let r = t.post(json!({"message": "x", "views": 6})).await;
    assert_eq!((r.status, error_of(&r)), (400, format!("{VIEWS_RANGE}5")));
    let (id, _) = create_for_sender(&t, json!({"message": "x", "views": 5})).await;
    assert_eq!(t.get(&format!("/{id}")).await.json()["views_left"], 4);
}

/// The receipt (SPEC Part 2 item 10): a token of at least 128 bits in every create answer;
/// with it, the state, the views left, when each was spent and the expiry, never the message,
/// and asking never spends a view.
async fn the_receipt_says_what_happened_and_never_the_message(launch: Launch) {
    let t = launch(Profile::base()).await;
    let r = t.post(json!({"message": "a receipt never shows this", "views": 2})).await;
    assert_eq!(r.status, 200);
    let created = r.json();
    let (id, token) = (created["id"].as_str().unwrap(), created["receipt"].as_str().expect("a receipt"));
    // 22 symbols of 62 are 131 bits.
    assert!(token.len() >= 22 && token.bytes().all(|b| b.is_ascii_alphanumeric()), "receipt {token:?}");
    let bearer = format!("Bearer {token}");
    for _ in 0..3 {
        let r = receipt_with(&t, id, Some(&bearer)).await;
        let (state, left, read_at, expires_at) = receipt_fields(&r);
        assert_eq!((state.as_str(), left, read_at.len()), ("unread", 2, 0));
        assert_eq!(expires_at, created["expires_at"].as_str().unwrap(), "the receipt's expiry is the message's");
    }
    assert_eq!(t.get(&format!("/{id}")).await.json()["views_left"], 1, "asking for the receipt spent a view");
    let r = receipt_with(&t, id, Some(&bearer)).await;
    let (state, left, read_at, _) = receipt_fields(&r);
    assert_eq!((state.as_str(), left, read_at.len()), ("read", 1, 1));
    assert!((read_at[0] - now_secs()).abs() < 120, "read_at {} is not now", read_at[0]);
    assert_eq!(t.get(&format!("/{id}")).await.json()["views_left"], 0);
    let r = receipt_with(&t, id, Some(&bearer)).await;
    assert!(!String::from_utf8_lossy(&r.body).contains("never shows"), "the receipt showed the message");
    let (state, left, read_at, _) = receipt_fields(&r);
    assert_eq!((state.as_str(), left, read_at.len()), ("read", 0, 2), "the receipt outlives the message");
    assert_eq!(t.get(&format!("/{id}")).await.status, 404);
}

/// `DELETE /{id}` with the receipt destroys the message unread, at once; the receipt then says
/// deleted, a second delete answers the same, and a delete after the last view says read.
async fn the_sender_deletes_before_it_is_read(launch: Launch) {
    let t = launch(Profile::base()).await;
    let (id, token) = create_for_sender(&t, json!({"message": "sent to the wrong chat", "views": 3})).await;
    let bearer = format!("Bearer {token}");
    assert_eq!(t.get(&format!("/{id}")).await.status, 200);
    for _ in 0..2 {
        let r = delete_with(&t, &id, Some(&bearer)).await;
        let (state, left, read_at, _) = receipt_fields(&r);
        assert_eq!((state.as_str(), left, read_at.len()), ("deleted", 0, 1));
        let r = t.get(&format!("/{id}")).await;
        assert_eq!(r.status, 404, "a deleted message was read");
        body_eq(&r, NOT_FOUND);
    }
    let (state, _, read_at, _) = receipt_fields(&receipt_with(&t, &id, Some(&bearer)).await);
    assert_eq!((state.as_str(), read_at.len()), ("deleted", 1));

    let (id, token) = create_for_sender(&t, json!({"message": "read in time"})).await;
    assert_eq!(t.get(&format!("/{id}")).await.status, 200);
    let (state, left, read_at, _) = receipt_fields(&delete_with(&t, &id, Some(&format!("Bearer {token}"))).await);
    assert_eq!((state.as_str(), left, read_at.len()), ("read", 0, 1), "a delete after the last view");
}

/// Without the right receipt every answer is Part 1's: `GET /{id}/receipt` 404 `Not found`,
/// `DELETE /{id}` 405 without `Authorization` and 404 `Message not found` with a wrong one;
/// and nothing is spent or destroyed.
async fn wrong_receipts_get_part_1_answers_and_change_nothing(launch: Launch) {
    let t = launch(Profile::base()).await;
    let (id, token) = create_for_sender(&t, json!({"message": "still mine"})).await;
    let (_, other) = create_for_sender(&t, json!({"message": "another"})).await;
    let long = format!("Bearer {}", "a".repeat(10 * 1024));
    let others = format!("Bearer {other}");
    let basic = format!("Basic {token}");
    let upper = format!("Bearer {}", token.to_ascii_uppercase());
    let wrong = ["Bearer", "Bearer ", long.as_str(), others.as_str(), basic.as_str(), token.as_str(), upper.as_str()];
    for auth in wrong {
        let shown = &auth[..auth.len().min(40)];
        let r = receipt_with(&t, &id, Some(auth)).await;
        assert_eq!((r.status, error_of(&r).as_str()), (404, "Not found"), "receipt with {shown:?}");
        let r = delete_with(&t, &id, Some(auth)).await;
        assert_eq!(r.status, 404, "delete with {shown:?}");
        body_eq(&r, NOT_FOUND);
    }
    // No `Authorization`, or an empty one (which workerd drops), is a request without a token.
    for auth in [None, Some("")] {
        let r = receipt_with(&t, &id, auth).await;
        assert_eq!((r.status, error_of(&r).as_str()), (404, "Not found"), "receipt with {auth:?}");
        let r = delete_with(&t, &id, auth).await;
        assert_eq!((r.status, error_of(&r).as_str()), (405, "Method not allowed"), "delete with {auth:?}");
        assert!(r.header("allow").contains("GET"), "Allow {:?}", r.header("allow"));
    }
    let (state, ..) = receipt_fields(&receipt_with(&t, &id, Some(&format!("Bearer {token}"))).await);
    assert_eq!(state, "unread", "a wrong receipt changed something");
    assert_eq!(t.get(&format!("/{id}")).await.json(), json!({"message": "still mine", "views_left": 0}));
}

/// A receipt lives exactly as long as its message could have: after the original expiry it is
/// gone (404), read or not.
async fn an_expired_receipt_is_gone(launch: Launch) {
    let t = launch(Profile::base()).await;
    if !t.caps.configurable {
        return not_applicable("expired receipt", &t, "needs CRYPT_MIN_TTL_SECS=1");
    }
    let (unread, unread_token) = create_for_sender(&t, json!({"message": "left unread", "ttl": 1})).await;
    let (read, read_token) = create_for_sender(&t, json!({"message": "read at once", "ttl": 1})).await;
    assert_eq!(t.get(&format!("/{read}")).await.status, 200);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    for (id, token) in [(unread, unread_token), (read, read_token)] {
        let bearer = format!("Bearer {token}");
        let r = receipt_with(&t, &id, Some(&bearer)).await;
        assert_eq!((r.status, error_of(&r).as_str()), (404, "Not found"), "an expired receipt");
        let r = delete_with(&t, &id, Some(&bearer)).await;
        assert_eq!(r.status, 404, "a delete after the expiry");
        body_eq(&r, NOT_FOUND);
    }
}

/// Every answer a stranger can get about an id that was read is the one for an id never
/// stored: the same status, body and headers (but `Date`), for a read, a receipt request and
/// a delete, with and without a token.
async fn a_stranger_cannot_tell_a_read_id_from_one_never_stored(launch: Launch) {
    let t = launch(Profile::base()).await;
    let (read, _) = create_for_sender(&t, json!({"message": "already read"})).await;
    assert_eq!(t.get(&format!("/{read}")).await.status, 200);
    let never = "z".repeat(read.len());
    let guess = format!("Bearer {}", "Q".repeat(32));
    let asks: [(&str, &str, Option<&str>); 5] = [
        ("GET", "", None),
        ("GET", "/receipt", None),
        ("GET", "/receipt", Some(guess.as_str())),
        ("DELETE", "", None),
        ("DELETE", "", Some(guess.as_str())),
    ];
    for (method, tail, auth) in asks {
        let answer = |id: String| {
            let t = &t;
            async move {
                let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
                let r = t.send(method, &format!("/{id}{tail}"), None, &headers).await;
                let mut headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .filter(|(k, _)| *k != "date")
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
                    .collect();
                headers.sort();
                (r.status, String::from_utf8_lossy(&r.body).into_owned(), headers)
            }
        };
        let (of_read, of_never) = (answer(read.clone()).await, answer(never.clone()).await);
        assert_eq!(of_read, of_never, "{method} /{{id}}{tail} with {auth:?} tells a read id from one never stored");
    }
}

/// Many concurrent reads of an id given N views: exactly N get 200 (each a different
/// `views_left`), every other a 404. 20 ids of 3 views, 10 readers each, 4 ids at a time.
async fn concurrent_reads_of_n_views_give_exactly_n_200s(launch: Launch) {
    let t = launch(Profile::base()).await;
    if !t.caps.exact_once {
        return not_applicable("exactly N views under concurrent reads", &t, "the store cannot count atomically (KV)");
    }
    for batch in 0..5 {
        let creates =
            (0..4).map(|i| create_for_sender(&t, json!({"message": format!("race {batch}/{i}"), "views": 3})));
        let ids: Vec<(String, String)> = futures::future::join_all(creates).await;
        let rounds = ids.iter().map(|(id, _)| {
            let t = &t;
            async move {
                let path = format!("/{id}");
                let reads = futures::future::join_all((0..10).map(|_| t.get(&path))).await;
                (id, reads)
            }
        });
        for (id, reads) in futures::future::join_all(rounds).await {
            let statuses: Vec<u16> = reads.iter().map(|r| r.status).collect();
            assert!(statuses.iter().all(|&s| s == 200 || s == 404), "batch {batch}, {id}: {statuses:?}");
            let mut left: Vec<u64> =
                reads.iter().filter(|r| r.status == 200).map(|r| r.json()["views_left"].as_u64().unwrap()).collect();
            left.sort_unstable();
            assert_eq!(left, [0, 1, 2], "batch {batch}, {id}: {statuses:?}");
        }
    }
}

/// The sender's delete racing the last read: exactly one wins, and the receipt says which
/// (the reader got the message and the delete answers `read`, or the delete answers `deleted`
/// and the reader 404). 30 ids.
async fn a_delete_racing_the_last_read_has_one_winner(launch: Launch) {
    let t = launch(Profile::base()).await;
    if !t.caps.exact_once {
        return not_applicable("one winner between a delete and a read", &t, "the store cannot burn atomically (KV)");
    }
    let (mut read_won, mut delete_won) = (0, 0);
    for i in 0..30 {
        let (id, token) = create_for_sender(&t, json!({"message": format!("race {i}")})).await;
        let bearer = format!("Bearer {token}");
        let path = format!("/{id}");
        let (read, deleted) = futures::join!(t.get(&path), delete_with(&t, &id, Some(&bearer)));
        let (state, ..) = receipt_fields(&deleted);
        match (read.status, state.as_str()) {
            (200, "read") => read_won += 1,
            (404, "deleted") => delete_won += 1,
            other => panic!("{id}: read and delete answered {other:?}"),
        }
        let (after, ..) = receipt_fields(&receipt_with(&t, &id, Some(&bearer)).await);
        assert_eq!(after, state, "{id}: the receipt changed its mind");
    }
    println!("delete racing the last read: the read won {read_won}, the delete {delete_won}");
}

/// The sender's requests count against the rate limit like any other, and preflights allow
/// them (`DELETE`, `Authorization`).
async fn receipt_requests_are_rate_limited_and_allowed_by_cors(launch: Launch) {
    let t = launch(Profile::base().with("CRYPT_RATE_LIMIT_MAX", 3).with("CRYPT_RATE_LIMIT_WINDOW_SECS", 60)).await;
    let headers = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "DELETE"),
        ("access-control-request-headers", "authorization"),
    ];
    let r = t.send("OPTIONS", "/abcde", None, &headers).await;
    assert_eq!(r.status, 204);
    assert!(
        r.header("access-control-allow-methods").contains("DELETE"),
        "{:?}",
        r.header("access-control-allow-methods")
    );
    assert!(
        r.header("access-control-allow-headers").to_ascii_lowercase().contains("authorization"),
        "{:?}",
        r.header("access-control-allow-headers")
    );
    if !t.caps.configurable {
        return not_applicable("the sender's requests and the rate limit", &t, "needs CRYPT_RATE_LIMIT_MAX=3");
    }
    let (id, token) = create_for_sender(&t, json!({"message": "counted"})).await;
    let bearer = format!("Bearer {token}");
    assert_eq!(receipt_with(&t, &id, Some(&bearer)).await.status, 200);
    assert_eq!(delete_with(&t, &id, Some("Bearer wrong")).await.status, 404);
    for r in [receipt_with(&t, &id, Some(&bearer)).await, delete_with(&t, &id, Some(&bearer)).await] {
        assert_eq!((r.status, error_of(&r).as_str()), (429, "Rate limit exceeded"));
    }
}

/// `/healthz` and `/readyz` answer 200 and are not rate limited.
async fn health_and_readiness_answer(launch: Launch) {
    let t = launch(Profile::base().with("CRYPT_RATE_LIMIT_MAX", 2)).await;
    for _ in 0..5 {
        let r = t.get("/healthz").await;
        assert_eq!(r.status, 200);
        assert_eq!(t.get("/readyz").await.status, 200);
    }
}

/// A full store answers 507 `{"error":"Storage full"}` and evicts nothing.
async fn full_store_is_507_and_keeps_what_it_has(launch: Launch) {
    let t = launch(Profile::base().with("CRYPT_MEMORY_CAPACITY_BYTES", 8192)).await;
    if !t.caps.capacity {
        return not_applicable("full store", &t, "the store has no capacity a test can fill");
    }
    let text = "k".repeat(1500);
    let mut ids = Vec::new();
    let full = loop {
        let r = t.post(json!({ "message": text })).await;
        if r.status != 200 {
            break r;
        }
        ids.push(r.json()["id"].as_str().unwrap().to_owned());
        assert!(ids.len() < 100, "the capacity is never reached");
    };
    assert_eq!(full.status, 507);
    body_eq(&full, r#"{"error":"Storage full"}"#);
    assert!(!ids.is_empty());
    for id in &ids[1..] {
        assert_eq!(t.get(&format!("/{id}")).await.json()["message"], text.as_str(), "a stored message was lost");
    }
    // Reading freed room.
    assert_eq!(t.post(json!({ "message": text })).await.status, 200);
}

/// `CRYPT_ID_LENGTH=64` gives 64-character ids that work like any other.
async fn longer_configured_ids_work(launch: Launch) {
    let t = launch(Profile::base().with("CRYPT_ID_LENGTH", 64)).await;
    if !t.caps.configurable {
        return not_applicable("id length", &t, "needs CRYPT_ID_LENGTH");
    }
    let id = t.create("long id").await;
    assert_eq!(id.len(), 64);
    assert_eq!(t.get(&format!("/{id}")).await.status, 200);
}

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

/// A browser asking for `/` gets the page to write a secret, with a strict CSP; every other
/// `GET /` is still the reference's 405. The page's assets come from the service itself.
async fn the_page_is_for_browsers_and_loads_only_its_own_assets(launch: Launch) {
    let t = launch(Profile::base()).await;
    let page = t.send("GET", "/", None, &[("accept", BROWSER_ACCEPT)]).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    let csp = page.header("content-security-policy");
    for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(
        (page.header("referrer-policy").as_str(), page.header("cache-control").as_str()),
        ("no-referrer", "no-store")
    );
    let html = String::from_utf8_lossy(&page.body).into_owned();
    let assets: Vec<&str> = html.split('"').filter(|s| s.starts_with("assets/")).collect();
    assert!(assets.len() >= 3, "{assets:?}");
    for asset in assets {
        let r = t.get(&format!("/{asset}")).await;
        assert_eq!(r.status, 200, "{asset}");
        assert!(
            r.header("content-type").starts_with("text/") || r.header("content-type") == "image/svg+xml",
            "{asset}"
        );
    }
    let api = t.send("GET", "/", None, &[("accept", "application/json")]).await;
    assert_eq!((api.status, error_of(&api)), (405, "Method not allowed".to_owned()));
}

/// Chat apps and mail scanners fetch a share link to preview it: the reveal page answers them
/// and touches nothing, so the secret still reads, once, through the API afterwards.
async fn link_preview_bots_burn_nothing(launch: Launch) {
    let t = launch(Profile::base()).await;
    let id = t.create("previewed by every bot").await;
    let bots = [
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "*/*"),
        ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", BROWSER_ACCEPT),
        (
            "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) SkypeUriPreview Preview/0.5 \
             skype-url-preview@microsoft.com",
            "text/html",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 \
             (mail link scanner)",
            BROWSER_ACCEPT,
        ),
    ];
    let link = format!("/s/{id}");
    for (agent, accept) in bots {
        let r = t.send("GET", &link, None, &[("user-agent", agent), ("accept", accept)]).await;
        assert_eq!(r.status, 200, "{agent}");
        assert!(r.header("content-type").starts_with("text/html"), "{agent}");
        assert!(!String::from_utf8_lossy(&r.body).contains("previewed by every bot"));
        let head = t.send("HEAD", &link, None, &[("user-agent", agent)]).await;
        assert!(head.status == 200 || head.status == 405, "{agent}: HEAD {}", head.status);
    }
    let r = t.get(&format!("/{id}")).await;
    assert_eq!((r.status, r.json()), (200, json!({"message": "previewed by every bot", "views_left": 0})));
    assert_eq!(t.get(&format!("/{id}")).await.status, 404);
}

/// `GET /openapi.json` is the OpenAPI 3.1 document of the API, with or without a query string,
/// and is never rate limited; other methods are 405.
async fn openapi_document_is_served_and_never_limited(launch: Launch) {
    let t = launch(Profile::base().with("CRYPT_RATE_LIMIT_MAX", 1)).await;
    for path in ["/openapi.json", "/openapi.json?format=json", "/openapi.json"] {
        let r = t.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), "application/json");
        let doc = r.json();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/"]["post"].is_object() && doc["paths"]["/{id}"]["get"].is_object());
    }
    let r = t.send("POST", "/openapi.json", Some(b"{}".to_vec()), &[]).await;
    assert_eq!((r.status, error_of(&r)), (405, "Method not allowed".to_owned()));
    if t.caps.configurable {
        assert_eq!(t.get("/zzzzz").await.status, 404, "the one counted request");
        assert_eq!(t.get("/zzzzz").await.status, 429, "the budget of 1 is spent");
        assert_eq!(t.get("/openapi.json").await.status, 200, "the document is never limited");
    }
}

/// With create tokens configured, `POST /` needs `Authorization: Bearer <token>` (the scheme in
/// any case): without one, with a wrong, empty or 10 KB one, it is 401 `Unauthorized`. Reads,
/// pages and preflights stay open: the link is the capability.
async fn create_tokens_guard_creates_and_reads_stay_open(launch: Launch) {
    // SHA-256 of "conformance-token".
    let t = launch(
        Profile::base()
            .with("CRYPT_CREATE_TOKEN_HASHES", "b77fd4981604b694cac2ed17303e9881dcbc2af00ddd4065ac989366caeb5336"),
    )
    .await;
    if !t.caps.configurable {
        return not_applicable("create tokens", &t, "needs CRYPT_CREATE_TOKEN_HASHES");
    }
    let body = Some(br#"{"message":"behind a token"}"#.to_vec());
    let long = format!("Bearer {}", "t".repeat(10_240));
    for auth in [
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer "),
        Some("Bearer wrong-token"),
        Some("Basic conformance-token"),
        Some(long.as_str()),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
        let r = t.send("POST", "/", body.clone(), &headers).await;
        assert_eq!((r.status, error_of(&r)), (401, "Unauthorized".to_owned()), "{auth:?}");
        assert_eq!(r.header("www-authenticate"), "Bearer");
    }
    let mut ids = Vec::new();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("{scheme} conformance-token");
        let r = t.send("POST", "/", body.clone(), &[("authorization", auth.as_str())]).await;
        assert_eq!(r.status, 200, "{scheme}");
        ids.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    for id in ids {
        let r = t.get(&format!("/{id}")).await;
        assert_eq!(
            (r.status, r.json()),
            (200, json!({"message": "behind a token", "views_left": 0})),
            "reads need no token"
        );
    }
    assert_eq!(t.send("OPTIONS", "/", None, &[]).await.status, 204);
    assert_eq!(t.send("GET", "/s/abcde", None, &[("accept", BROWSER_ACCEPT)]).await.status, 200);
}

const OCTET_STREAM: [(&str, &str); 1] = [("content-type", "application/octet-stream")];
const FILE_TOO_LARGE: &str = "File exceeds maximum size of 10MB";

/// A file (SPEC Part 2 item 11): the largest the default allows (10 MiB, every byte value)
/// reads back as the same bytes on each of its views, with `X-Views-Left`; then 404 as a text.
/// Its receipt and the sender's delete work as for a text; an empty file, or bad `ttl` or
/// `views` in the query, are 400 with Part 1's strings.
async fn a_file_reads_back_as_its_bytes(launch: Launch) {
    let t = launch(Profile::base()).await;
    let bytes: Vec<u8> = (0..10 * 1024 * 1024).map(|i: usize| (i.wrapping_mul(31) ^ (i >> 12)) as u8).collect();
    let r = t.send("POST", "/?ttl=600&views=2", Some(bytes.clone()), &OCTET_STREAM).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_api_headers(&r, "file create");
    let created = r.json();
    let (id, receipt) = (created["id"].as_str().unwrap().to_owned(), created["receipt"].as_str().unwrap().to_owned());
    let expires = parse_rfc3339(created["expires_at"].as_str().unwrap());
    assert!((expires - now_secs() - 600).abs() <= 5, "ttl=600 from the query: {created}");
    for left in ["1", "0"] {
        let r = t.get(&format!("/{id}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), "application/octet-stream");
        assert_eq!(r.header("x-views-left"), left);
        assert_eq!(r.header("cache-control"), "no-store");
        assert_eq!(r.header("x-content-type-options"), "nosniff");
        assert!(r.body == bytes, "the file came back changed: {} bytes of {}", r.body.len(), bytes.len());
    }
    let r = t.get(&format!("/{id}")).await;
    assert_eq!(r.status, 404);
    body_eq(&r, NOT_FOUND);
    let bearer = format!("Bearer {receipt}");
    let (state, left, read_at, _) = receipt_fields(&receipt_with(&t, &id, Some(&bearer)).await);
    assert_eq!((state.as_str(), left, read_at.len()), ("read", 0, 2));
    // A one-byte file that is not UTF-8, deleted by its sender before it is read.
    let r = t.send("POST", "/", Some(vec![0xff]), &OCTET_STREAM).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (small, receipt) =
        (r.json()["id"].as_str().unwrap().to_owned(), r.json()["receipt"].as_str().unwrap().to_owned());
    let deleted = delete_with(&t, &small, Some(&format!("Bearer {receipt}"))).await;
    assert_eq!((deleted.status, deleted.json()["state"].as_str()), (200, Some("deleted")));
    assert_eq!(t.get(&format!("/{small}")).await.status, 404);
    for (path, body, error) in [
        ("/", vec![], MESSAGE_REQUIRED.to_owned()),
        ("/?views=0", vec![1], format!("{VIEWS_RANGE}100")),
        ("/?views=two", vec![1], format!("{VIEWS_RANGE}100")),
        ("/?ttl=86401", vec![1], "Field 'ttl' must be a whole number of seconds from ".to_owned()),
    ] {
        let r = t.send("POST", path, Some(body), &OCTET_STREAM).await;
        assert_eq!(r.status, 400, "{path}");
        assert!(error_of(&r).starts_with(&error), "{path}: {}", error_of(&r));
    }
}

/// A file over `CRYPT_MAX_FILE_BYTES` (11 MiB against 10), with Content-Length and chunked, is
/// 413 `File exceeds maximum size of 10MB`, read by the client; the service goes on serving.
async fn a_file_over_its_limit_is_413(launch: Launch) {
    let t = launch(Profile::base()).await;
    if !t.caps.raw_tcp {
        return not_applicable("a file over its limit", &t, "raw TCP needs plain http");
    }
    let host = t.authority();
    let piece = vec![0xa5; 65_536];
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        176 * piece.len()
    );
    let r = raw_exchange(&host, head, vec![piece.clone(); 176], Duration::from_secs(20)).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.text.contains(&format!(r#""error":"{FILE_TOO_LARGE}""#)), "{}", r.text);
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
    chunk.extend_from_slice(&piece);
    chunk.extend_from_slice(b"\r\n");
    let mut chunks = vec![chunk; 176];
    chunks.push(b"0\r\n\r\n".to_vec());
    let r = raw_exchange(&host, head, chunks, Duration::from_secs(20)).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.text.contains(&format!(r#""error":"{FILE_TOO_LARGE}""#)), "{}", r.text);
    t.create("still serving after an 11 MiB file").await;
}
