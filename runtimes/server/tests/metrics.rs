//! Prometheus metrics after known traffic: every count is what the traffic made, labels carry
//! no id, address or text, and `/metrics` is never rate limited. `CRYPT_METRICS_LISTEN` moves
//! them to an address of their own.

use std::io::{Read, Write};

fn http(addr: &str, request: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head[9..12].parse().unwrap(), body.to_owned())
}

fn get(addr: &str, path: &str) -> (u16, String) {
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
}

fn post(addr: &str, body: &str) -> (u16, String) {
    http(
        addr,
        &format!("POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
    )
}

/// The value of the sample line that starts with `series` (name and labels), or 0.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

async fn start(vars: &[(&str, &str)]) -> crypt_server::Running {
    let mut all = vec![("CRYPT_LISTEN", "127.0.0.1:0")];
    all.extend_from_slice(vars);
    crypt_server::spawn(crypt_server::Config::from_vars(all).unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_after_known_traffic_and_no_id_or_text_in_any_label() {
    let crypt = start(&[("CRYPT_RATE_LIMIT_MAX", "10"), ("CRYPT_MIN_TTL_SECS", "1")]).await;
    let addr = crypt.addr().to_string();
    let (secret, ttl_secret, deleted) = ("metrics must not show this", "short lived", "deleted unread");
    let traffic = tokio::task::spawn_blocking(move || {
        let field = |body: &str, name: &str| {
            body.split(&format!(r#""{name}":""#)).nth(1).unwrap().split('"').next().unwrap().to_owned()
        };
        let (_, a) = post(&addr, &format!(r#"{{"message":"{secret}","views":2}}"#));
        let (_, b) = post(&addr, &format!(r#"{{"message":"{ttl_secret}","ttl":1}}"#));
        assert_eq!(post(&addr, "not json").0, 400);
        let (_, c) = post(&addr, &format!(r#"{{"message":"{deleted}"}}"#));
        assert_eq!(get(&addr, &format!("/{}", field(&a, "id"))).0, 200, "the first of two views");
        assert_eq!(get(&addr, &format!("/{}", field(&a, "id"))).0, 200, "the last view");
        let delete = format!(
            "DELETE /{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            field(&c, "id"),
            field(&c, "receipt")
        );
        assert_eq!(http(&addr, &delete).0, 200);
        assert_eq!(http(&addr, &delete).0, 200, "a second delete destroys nothing more");
        // Past the expiry and the memory store's next sweep (once a second).
        std::thread::sleep(std::time::Duration::from_millis(2200));
        assert_eq!(get(&addr, &format!("/{}", field(&b, "id"))).0, 404, "expired");
        assert_eq!(get(&addr, "/zzzzz").0, 404);
        assert_eq!(get(&addr, "/zzzzz").0, 429, "the eleventh counted request");
        // Operations routes are never limited.
        for _ in 0..3 {
            assert_eq!(get(&addr, "/healthz").0, 200);
            assert_eq!(get(&addr, "/metrics?x=1").0, 200);
        }
        let (status, text) = get(&addr, "/metrics");
        assert_eq!(status, 200);
        let post = http(&addr, "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(post.0, 405);
        (text, [a, b, c].map(|body| [field(&body, "id"), field(&body, "receipt")]))
    })
    .await
    .unwrap();
    let (text, ids) = traffic;
    for (series, want) in [
        (r#"crypt_http_requests_total{route="create",status="200"}"#, 3.0),
        (r#"crypt_http_requests_total{route="create",status="400"}"#, 1.0),
        (r#"crypt_http_requests_total{route="open",status="200"}"#, 2.0),
        (r#"crypt_http_requests_total{route="open",status="404"}"#, 2.0),
        (r#"crypt_http_requests_total{route="open",status="429"}"#, 1.0),
        (r#"crypt_http_requests_total{route="delete",status="200"}"#, 2.0),
        (r#"crypt_http_requests_total{route="healthz",status="200"}"#, 3.0),
        (r#"crypt_http_requests_total{route="metrics",status="200"}"#, 3.0),
        ("crypt_messages_created_total", 3.0),
        ("crypt_message_views_total", 2.0),
        ("crypt_messages_burned_total", 1.0),
        ("crypt_messages_deleted_total", 1.0),
        ("crypt_messages_expired_total", 1.0),
        ("crypt_rate_limited_requests_total", 1.0),
        (r#"crypt_store_operation_duration_seconds_count{store="memory",op="insert"}"#, 3.0),
        (r#"crypt_store_operation_duration_seconds_count{store="memory",op="spend_view"}"#, 4.0),
        (r#"crypt_store_operation_duration_seconds_count{store="memory",op="delete"}"#, 2.0),
        (r#"crypt_http_request_duration_seconds_count{route="create"}"#, 4.0),
    ] {
        assert_eq!(sample(&text, series), want, "{series} in:\n{text}");
    }
    assert!(text.contains("crypt_memory_store_bytes") && text.contains("crypt_memory_store_entries"));
    for leak in [secret, ttl_secret, deleted, "127.0.0.1"].into_iter().chain(ids.iter().flatten().map(String::as_str)) {
        assert!(!text.contains(leak), "{leak} in the metrics");
    }
    crypt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_their_own_address_are_not_on_the_api() {
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let crypt = start(&[("CRYPT_METRICS_LISTEN", &metrics_port)]).await;
    let addr = crypt.addr().to_string();
    tokio::task::spawn_blocking(move || {
        assert_eq!(get(&addr, "/metrics").0, 404, "not on the API's address");
        let (status, text) = get(&metrics_port, "/metrics");
        assert_eq!(status, 200);
        assert!(text.contains("crypt_http_requests_total"), "{text}");
        assert!(text.contains(r#"route="metrics",status="404""#), "the API's 404 was counted: {text}");
        assert_eq!(get(&metrics_port, "/").0, 404, "only /metrics there");
        assert_eq!(
            http(&metrics_port, "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                .0,
            405
        );
    })
    .await
    .unwrap();
    crypt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_address_that_cannot_be_bound_names_the_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = taken.local_addr().unwrap().to_string();
    let err = crypt_server::spawn(
        crypt_server::Config::from_vars([("CRYPT_LISTEN", "127.0.0.1:0"), ("CRYPT_METRICS_LISTEN", at.as_str())])
            .unwrap(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("CRYPT_METRICS_LISTEN"), "{err}");
    assert!(err.to_string().contains(&at), "{err}");
}

/// A full memory store answers at once (no future): its refusal is still counted, as an error
/// of kind `full`, and no message is counted as created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_memory_store_is_counted_as_a_store_error() {
    let crypt = start(&[("CRYPT_MEMORY_CAPACITY_BYTES", "8192")]).await;
    let addr = crypt.addr().to_string();
    let (stored, text) = tokio::task::spawn_blocking(move || {
        let body = format!(r#"{{"message":"{}"}}"#, "k".repeat(1500));
        let mut stored = 0;
        loop {
            match post(&addr, &body).0 {
                200 => stored += 1,
                507 => break,
                other => panic!("unexpected status {other}"),
            }
            assert!(stored < 100, "the capacity is never reached");
        }
        (stored, get(&addr, "/metrics").1)
    })
    .await
    .unwrap();
    assert!(stored > 0);
    assert_eq!(sample(&text, r#"crypt_store_errors_total{kind="full"}"#), 1.0, "{text}");
    assert_eq!(sample(&text, "crypt_messages_created_total"), f64::from(stored), "{text}");
    assert_eq!(sample(&text, r#"crypt_http_requests_total{route="create",status="507"}"#), 1.0, "{text}");
    crypt.shutdown().await;
}
