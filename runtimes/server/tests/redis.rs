//! crypt-server processes on real Redis: several processes on one Redis, Redis killed and
//! restarted under load, Redis absent at start, Redis full. Every Redis here is started by the
//! test on a free port.

use crypt_redis_harness::RedisServer;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::{client, create, read, status, Crypt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_rate_limit() {
    let redis = RedisServer::start();
    let limit = [("CRYPT_RATE_LIMIT_MAX", "10"), ("CRYPT_RATE_LIMIT_WINDOW_SECS", "60")];
    let (a, b) = (Crypt::start(&redis.url(), &limit), Crypt::start(&redis.url(), &limit));
    let http = client();
    for i in 0..10 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        assert_eq!(status(&http, format!("{base}/zzzzz")).await, 404, "request {i} is within the budget");
    }
    // The budget of 10 is spent across both processes: each has seen only 5.
    for base in [&a.base, &b.base] {
        let r = http.get(format!("{base}/zzzzz")).send().await.unwrap();
        assert_eq!(r.status(), 429);
        let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_on_two_processes_burn_each_message_exactly_once() {
    let redis = RedisServer::start();
    let (a, b) = (Crypt::start(&redis.url(), &[]), Crypt::start(&redis.url(), &[]));
    let http = client();
    let bases = [a.base.clone(), b.base.clone()];
    let mut ids = Vec::new();
    for chunk in 0..20 {
        let creates = (0..50).map(|i| {
            let (http, base) = (&http, &bases[i % 2]);
            async move { create(http, base, &format!("secret {chunk}-{i}")).await }
        });
        for (code, body) in futures::future::join_all(creates).await {
            assert_eq!(code, 200);
            ids.push(body["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(ids.len(), 1000);
    for id in &ids {
        // 8 readers, 4 on each process, all at once.
        let reads = (0..8).map(|r| read(&http, &bases[r % 2], id));
        let codes: Vec<u16> = futures::future::join_all(reads).await.into_iter().map(|(c, _)| c).collect();
        assert_eq!(codes.iter().filter(|&&c| c == 200).count(), 1, "id {}…: {codes:?}", &id[..2]);
        assert!(codes.iter().all(|&c| c == 200 || c == 404), "{codes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_load_then_restarted_loses_no_acknowledged_message() {
    // The shipped configuration, with `appendfsync always`: under `everysec` (its default) Redis
    // answers a write before handing it to the kernel whenever the previous second's fsync is
    // still running (it postpones the write up to 2 s, see `flushAppendOnlyFile`), so on a busy
    // disk a SIGKILL loses writes it acknowledged (CI's coverage run lost one that way; three
    // `dd ... conv=fsync` loops beside this test reproduce it). Under `always` Redis promises
    // that what it acknowledged is kept, so this test can hold crypt to its own promise: a 200
    // only after Redis acknowledged the write.
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/redis.conf");
    let mut redis = RedisServer::start_with(&[conf, "--appendfsync", "always"]);
    let timeout_ms = 500;
    let crypt = Crypt::start(&redis.url(), &[("CRYPT_REDIS_TIMEOUT_MS", "500")]);
    let http = client();
    let base = crypt.base.clone();

    // Writers create messages without pause; each remembers what got a 200.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acknowledged: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let slowest_failure = Arc::new(Mutex::new(Duration::ZERO));
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (http, base, stop) = (http.clone(), base.clone(), stop.clone());
            let (acknowledged, slowest, failures) = (acknowledged.clone(), slowest_failure.clone(), failures.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let text = format!("writer {w} message {n}");
                    n += 1;
                    let started = Instant::now();
                    let (code, body) = create(&http, &base, &text).await;
                    match code {
                        200 => {
                            acknowledged.lock().unwrap().insert(body["id"].as_str().unwrap().to_owned(), text);
                        }
                        503 => {
                            assert_eq!(body, json!({"error": "Storage unavailable"}));
                            failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let took = started.elapsed();
                            {
                                let mut s = slowest.lock().unwrap();
                                *s = (*s).max(took);
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        other => panic!("create answered {other}: {body}"),
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(700)).await;
    let before_kill = acknowledged.lock().unwrap().len();
    assert!(before_kill > 0, "no message was created before the kill");
    redis.kill();

    // During the outage: 503s within the timeout, readiness 503, reads 503 (not 404).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(status(&http, format!("{base}/readyz")).await, 503);
    assert_eq!(status(&http, format!("{base}/healthz")).await, 200, "the process itself is alive");
    let some_id = acknowledged.lock().unwrap().keys().next().unwrap().clone();
    let (code, _) = read(&http, &base, &some_id).await;
    assert_eq!(code, 503, "a read during the outage must be 503, not 404");
    assert!(failures.load(std::sync::atomic::Ordering::SeqCst) > 0, "no request saw the outage");

    // Redis comes back from its AOF; crypt must recover by itself.
    let restarted_at = Instant::now();
    tokio::task::block_in_place(|| redis.restart());
    let mut recovered = None;
    while restarted_at.elapsed() < Duration::from_secs(10) {
        if status(&http, format!("{base}/readyz")).await == 200 {
            recovered = Some(restarted_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = recovered.expect("crypt never became ready again");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    let slowest = *slowest_failure.lock().unwrap();
    println!(
        "outage: slowest 503 took {slowest:?} (timeout {timeout_ms} ms); ready again {recovered:?} after Redis restarted; {} acknowledged",
        acknowledged.lock().unwrap().len()
    );
    assert!(recovered <= Duration::from_secs(2), "service returned only after {recovered:?}");
    assert!(slowest < Duration::from_millis(timeout_ms + 1500), "a 503 took {slowest:?}");

    // Every acknowledged message is readable exactly once (none was read before).
    let acknowledged = acknowledged.lock().unwrap().clone();
    for (id, text) in &acknowledged {
        let (code, body) = read(&http, &base, id).await;
        assert_eq!(code, 200, "acknowledged message {}… was lost", &id[..2]);
        assert_eq!(body["message"], text.as_str());
        assert_eq!(read(&http, &base, id).await.0, 404);
    }
    assert!(!crypt.logs.lock().unwrap().iter().any(|l| l.contains("panicked")), "crypt panicked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_while_redis_is_down_and_becomes_ready_by_itself() {
    // Reserve a port, then free it: Redis will appear there later.
    let redis_gone = RedisServer::start();
    let url = redis_gone.url();
    let port = redis_gone.port();
    drop(redis_gone);
    let crypt = Crypt::start(&url, &[("CRYPT_REDIS_TIMEOUT_MS", "300")]);
    let http = client();
    assert_eq!(status(&http, format!("{}/readyz", crypt.base)).await, 503);
    let started = Instant::now();
    let (code, body) = create(&http, &crypt.base, "nowhere to go").await;
    assert_eq!((code, body), (503, json!({"error": "Storage unavailable"})));
    assert!(started.elapsed() < Duration::from_secs(2), "503 took {:?}", started.elapsed());

    let redis = tokio::task::block_in_place(|| RedisServer::start_on(port, &["--save", "", "--appendonly", "no"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&http, format!("{}/readyz", crypt.base)).await != 200 {
        assert!(Instant::now() < deadline, "never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, body) = create(&http, &crypt.base, "now it works").await;
    assert_eq!(code, 200);
    assert_eq!(read(&http, &crypt.base, body["id"].as_str().unwrap()).await.1["message"], "now it works");
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_redis_answers_507_and_keeps_what_it_has() {
    let redis = RedisServer::start_with(&[
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxmemory",
        "3mb",
        "--maxmemory-policy",
        "noeviction",
    ]);
    let crypt = Crypt::start(&redis.url(), &[]);
    let http = client();
    let text = "f".repeat(50_000);
    let mut ids = Vec::new();
    let full = loop {
        let (code, body) = create(&http, &crypt.base, &text).await;
        if code != 200 {
            break (code, body);
        }
        ids.push(body["id"].as_str().unwrap().to_owned());
        assert!(ids.len() < 500, "maxmemory was never reached");
    };
    assert_eq!(full, (507, json!({"error": "Storage full"})));
    assert!(!ids.is_empty());
    for id in &ids {
        let (code, body) = read(&http, &crypt.base, id).await;
        assert_eq!(code, 200, "a message was evicted");
        assert_eq!(body["message"], text.as_str());
    }
    assert_eq!(create(&http, &crypt.base, "room again").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_stops_answering_gives_503_within_the_timeout_never_a_hang() {
    let redis = RedisServer::start();
    let crypt = Crypt::start(&redis.url(), &[("CRYPT_REDIS_TIMEOUT_MS", "400")]);
    let http = client();
    let (_, body) = create(&http, &crypt.base, "stored before the freeze").await;
    let id = body["id"].as_str().unwrap().to_owned();
    let (_, body) = create(&http, &crypt.base, "read during the freeze").await;
    let read_during = body["id"].as_str().unwrap().to_owned();
    redis.pause();
    for _ in 0..3 {
        let started = Instant::now();
        let (code, body) = create(&http, &crypt.base, "into the void").await;
        assert_eq!((code, body), (503, json!({"error": "Storage unavailable"})));
        assert_eq!(read(&http, &crypt.base, &read_during).await.0, 503);
        assert_eq!(status(&http, format!("{}/readyz", crypt.base)).await, 503);
        assert!(started.elapsed() < Duration::from_secs(3), "three answers took {:?}", started.elapsed());
    }
    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(&http, format!("{}/readyz", crypt.base)).await != 200 {
        assert!(Instant::now() < deadline, "never recovered after the freeze");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The freeze lost nothing that was stored before it.
    let (code, body) = read(&http, &crypt.base, &id).await;
    assert_eq!((code, body["message"].as_str()), (200, Some("stored before the freeze")));
    // The reads that timed out were on the wire: a frozen (not dead) Redis carries out what it
    // can when it thaws, and SPEC allows a view spent whose reply was lost ("unless the store
    // carried out the delete and only its reply was lost"; the README says so). Whether one was
    // spent depends on Redis's script cache: a read script it had not seen yet answers
    // `NOSCRIPT`, and the retry with its body went with the abandoned request. Either way the
    // message is whole or gone, never half.
    let (code, body) = read(&http, &crypt.base, &read_during).await;
    match code {
        404 => {}
        200 => assert_eq!(body["message"], "read during the freeze"),
        other => panic!("a read after the thaw answered {other}: {body}"),
    }
}

/// Redis next to crypt on a Unix socket, as Debian's and most distributions' packages offer it
/// (`unixsocket /run/redis/redis-server.sock`), with a password (`?pass=`, the `redis` crate's
/// way to give one for a socket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_with_a_password_stores_burns_and_limits_and_never_logs_the_password() {
    let socket = std::env::temp_dir().join(format!("crypt-redis-{}.sock", std::process::id()));
    let socket = socket.to_str().expect("a UTF-8 path").to_owned();
    let mut redis = RedisServer::start_with(&[
        "--save",
        "",
        "--appendonly",
        "no",
        "--unixsocket",
        &socket,
        "--unixsocketperm",
        "700",
        "--requirepass",
        "socket-s3cret",
    ]);
    let limit = [("CRYPT_RATE_LIMIT_MAX", "4"), ("CRYPT_REDIS_TIMEOUT_MS", "400")];
    let crypt = Crypt::start(&format!("unix://{socket}?pass=socket-s3cret"), &limit);
    let http = client();
    assert_eq!(status(&http, format!("{}/readyz", crypt.base)).await, 200);
    // Four counted requests: a create, its read, a second read, a guess; the fifth is refused.
    let (code, body) = create(&http, &crypt.base, "over the socket").await;
    assert_eq!(code, 200, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(read(&http, &crypt.base, &id).await, (200, json!({"message": "over the socket", "views_left": 0})));
    assert_eq!(read(&http, &crypt.base, &id).await.0, 404);
    assert_eq!(status(&http, format!("{}/zzzzz", crypt.base)).await, 404);
    assert_eq!(status(&http, format!("{}/zzzzz", crypt.base)).await, 429, "the limit is kept in Redis");
    let logs = crypt.log_text();
    assert!(logs.contains(&format!("unix://{socket}?pass=***")), "the log names the socket: {logs}");
    assert!(!logs.contains("socket-s3cret"), "the password leaked into the log: {logs}");

    // A wrong password: not ready, 503, and the log says why without the password tried.
    let wrong = Crypt::start(&format!("unix://{socket}?pass=not-the-one"), &limit);
    assert_eq!(status(&http, format!("{}/readyz", wrong.base)).await, 503);
    assert_eq!(create(&http, &wrong.base, "refused").await, (503, json!({"error": "Storage unavailable"})));
    let logs = wrong.log_text();
    assert!(logs.contains("Password authentication failed"), "{logs}");
    assert!(!logs.contains("not-the-one"), "the password leaked into the log: {logs}");

    // The socket gone with its Redis: 503, never a hang or a panic.
    redis.kill();
    let started = Instant::now();
    assert_eq!(create(&http, &crypt.base, "nowhere").await, (503, json!({"error": "Storage unavailable"})));
    assert_eq!(status(&http, format!("{}/readyz", crypt.base)).await, 503);
    assert!(started.elapsed() < Duration::from_secs(3), "503s took {:?}", started.elapsed());
    let _ = std::fs::remove_file(&socket);
}

#[test]
fn a_url_that_is_not_redis_stops_start_up_with_one_line_saying_what_is_wanted() {
    for (url, says) in [
        ("unix://redis.sock", "a Unix socket needs its absolute path, three slashes in all"),
        ("unix:///r.sock?db=two", "Invalid database number"),
        ("http://127.0.0.1:6379", "not a Redis URL"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_crypt-server"))
            .env_clear()
            .env("CRYPT_LISTEN", "127.0.0.1:0")
            .env("CRYPT_STORE", "redis")
            .env("CRYPT_REDIS_URL", url)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {stderr}");
        assert!(stderr.starts_with("crypt-server: CRYPT_REDIS_URL"), "{url}: {stderr}");
        assert!(stderr.contains(says), "{url}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{url}: {stderr}");
    }
}
