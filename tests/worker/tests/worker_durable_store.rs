//! The Durable Object store's own promises, against the Worker under `wrangler dev` (real
//! workerd, local SQLite-backed objects): a message's bytes dropped at its last view or its
//! delete, the receipt kept until the expiry alarm frees the object, nothing stored for an id
//! never stored, exactly N views and one winner between a delete and the last read over HTTP,
//! a row in the old format still read, a read racing the alarm, creates that draw one id, and
//! a misconfigured namespace.

use crypt_conformance::wrangler::WranglerDev;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn durable(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    vars.insert("CRYPT_EDGE_STORE".into(), "durable-object".into());
    vars.insert("CRYPT_RATE_LIMIT_MAX".into(), "0".into());
    vars
}

async fn start(vars: HashMap<String, String>) -> WranglerDev {
    tokio::task::spawn_blocking(move || WranglerDev::start(&vars)).await.unwrap()
}

async fn create(http: &reqwest::Client, dev: &WranglerDev, body: Value) -> (u16, Value) {
    let r = http.post(format!("{}/", dev.url())).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// What the object for `id` stores, read without touching the message.
async fn inspect(http: &reqwest::Client, dev: &WranglerDev, id: &str) -> String {
    let r = http.get(format!("{}/__contract/durable-inspect/{id}", dev.url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

fn logs(dev: &WranglerDev) -> String {
    dev.output.lock().unwrap().join("\n")
}

/// A create's id and receipt.
async fn create_with(http: &reqwest::Client, dev: &WranglerDev, body: Value) -> (String, String) {
    let (status, body) = create(http, dev, body).await;
    assert_eq!(status, 200, "{body}");
    (body["id"].as_str().unwrap().to_owned(), body["receipt"].as_str().unwrap().to_owned())
}

/// `GET /{id}`: the status and the body.
async fn read(http: &reqwest::Client, dev: &WranglerDev, id: &str) -> (u16, Value) {
    let r = http.get(format!("{}/{id}", dev.url())).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// `GET /{id}/receipt` with the receipt token.
async fn receipt(http: &reqwest::Client, dev: &WranglerDev, id: &str, token: &str) -> (u16, Value) {
    let r = http.get(format!("{}/{id}/receipt", dev.url())).bearer_auth(token).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// `DELETE /{id}` with the receipt token.
async fn delete(http: &reqwest::Client, dev: &WranglerDev, id: &str, token: &str) -> (u16, Value) {
    let r = http.delete(format!("{}/{id}", dev.url())).bearer_auth(token).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Waits (up to 10 s) until the object for `id` holds nothing: no row, no alarm, no table.
async fn wait_until_freed(http: &reqwest::Client, dev: &WranglerDev, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = inspect(http, dev, id).await;
    while Instant::now() < deadline && !seen.starts_with("rows=0 alarm=none tables=0") {
        tokio::time::sleep(Duration::from_millis(250)).await;
        seen = inspect(http, dev, id).await;
    }
    seen
}

/// A message with the minimum TTL is gone after it, and the alarm freed its object's storage
/// (no row, no alarm, no table) without anyone reading it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_message_is_freed_by_its_alarm_at_expiry() {
    let dev = start(durable(&[("CRYPT_MIN_TTL_SECS", "1")])).await;
    let http = crypt_conformance::client();
    let (id, _) = create_with(&http, &dev, serde_json::json!({"message": "short-lived", "ttl": 1})).await;
    let held = inspect(&http, &dev, &id).await;
    assert!(held.starts_with("rows=1 alarm=1") && held.ends_with(" message=11"), "{held}");

    // The alarm fires at the expiry instant; give the runtime a little slack.
    let seen = wait_until_freed(&http, &dev, &id).await;
    assert!(
        seen.starts_with("rows=0 alarm=none tables=0"),
        "the alarm did not free the object: {seen}\n{}",
        logs(&dev)
    );
    assert_eq!(read(&http, &dev, &id).await.0, 404);
}

/// The last view drops the message's bytes from the row at once; the receipt stays (and keeps
/// the id) until the alarm at the original expiry frees the whole object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_drops_the_message_at_once_and_the_alarm_frees_the_receipt() {
    let dev = start(durable(&[("CRYPT_MIN_TTL_SECS", "1")])).await;
    let http = crypt_conformance::client();
    let (id, token) = create_with(&http, &dev, serde_json::json!({"message": "read me", "ttl": 2})).await;
    assert_eq!(read(&http, &dev, &id).await, (200, serde_json::json!({"message": "read me", "views_left": 0})));
    let after = inspect(&http, &dev, &id).await;
    assert!(after.starts_with("rows=1 alarm=1") && after.ends_with(" message=none"), "{after}");
    let (status, shown) = receipt(&http, &dev, &id, &token).await;
    assert_eq!((status, &shown["state"], &shown["views_left"]), (200, &Value::from("read"), &Value::from(0)));
    assert_eq!(shown["read_at"].as_array().map(Vec::len), Some(1), "{shown}");
    assert_eq!(read(&http, &dev, &id).await.0, 404);

    let seen = wait_until_freed(&http, &dev, &id).await;
    assert!(seen.starts_with("rows=0 alarm=none tables=0"), "the receipt outlived its expiry: {seen}\n{}", logs(&dev));
    assert_eq!(receipt(&http, &dev, &id, &token).await.0, 404);
}

/// Reading, asking for the receipt of, or deleting an id that was never stored writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_never_stored_leaves_no_storage() {
    let dev = start(durable(&[])).await;
    let http = crypt_conformance::client();
    assert_eq!(read(&http, &dev, "zz9zz").await.0, 404);
    assert_eq!(receipt(&http, &dev, "zz9zz", "no-such-receipt").await.0, 404);
    assert_eq!(delete(&http, &dev, "zz9zz", "no-such-receipt").await.0, 404);
    let never = inspect(&http, &dev, "zz9zz").await;
    assert!(never.starts_with("rows=0 alarm=none "), "{never}");
    // Miniflare records an object's name in a table of its own on first access (a local
    // simulator's bookkeeping, not crypt's): the tables crypt creates are none.
    let names = never.split(" names=").nth(1).and_then(|rest| rest.split(' ').next()).unwrap_or("?");
    assert!(names.split(',').all(|t| t.is_empty() || t.starts_with("__miniflare")), "{never}");
}

/// The sender's delete drops the message's bytes at once, unread views and all; reads answer
/// 404 and the receipt says it was deleted, with the view spent before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_drops_the_message_at_once_and_keeps_the_receipt() {
    let dev = start(durable(&[])).await;
    let http = crypt_conformance::client();
    let (id, token) = create_with(&http, &dev, serde_json::json!({"message": "three views", "views": 3})).await;
    assert_eq!(read(&http, &dev, &id).await.1["views_left"], 2);
    assert_eq!(delete(&http, &dev, &id, "not-the-receipt").await.0, 404);
    let (status, deleted) = delete(&http, &dev, &id, &token).await;
    assert_eq!((status, &deleted["state"], &deleted["views_left"]), (200, &Value::from("deleted"), &Value::from(0)));
    let after = inspect(&http, &dev, &id).await;
    assert!(after.starts_with("rows=1 alarm=1") && after.ends_with(" message=none"), "{after}");
    assert_eq!(read(&http, &dev, &id).await, (404, serde_json::json!({"error": "Message not found"})));
    let (_, shown) = receipt(&http, &dev, &id, &token).await;
    assert_eq!((&shown["state"], shown["read_at"].as_array().map(Vec::len)), (&Value::from("deleted"), Some(1)));
}

/// Many clients reading a message of N views at once over HTTP: exactly N get it, counting
/// down, and the receipt lists N reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_get_exactly_n_views() {
    let dev = start(durable(&[])).await;
    let http = crypt_conformance::client();
    for views in [1u64, 4] {
        let (id, token) = create_with(&http, &dev, serde_json::json!({"message": "n times", "views": views})).await;
        let reads = (0..12).map(|_| read(&http, &dev, &id));
        let answers = futures::future::join_all(reads).await;
        let mut left: Vec<u64> =
            answers.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b["views_left"].as_u64().unwrap()).collect();
        left.sort_unstable();
        assert_eq!(left, (0..views).collect::<Vec<_>>(), "{answers:?}");
        assert!(answers.iter().all(|(s, _)| *s == 200 || *s == 404), "{answers:?}");
        let (_, shown) = receipt(&http, &dev, &id, &token).await;
        assert_eq!(shown["read_at"].as_array().map(Vec::len), Some(views as usize), "{shown}");
    }
}

/// A delete racing the read of the last view over HTTP: exactly one wins, and the receipt
/// says which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_racing_the_last_read_has_one_winner() {
    let dev = start(durable(&[])).await;
    let http = crypt_conformance::client();
    for round in 0..8 {
        let (id, token) = create_with(&http, &dev, serde_json::json!({"message": "race"})).await;
        let ((read_status, _), (delete_status, deleted)) =
            futures::join!(read(&http, &dev, &id), delete(&http, &dev, &id, &token));
        assert_eq!(delete_status, 200, "round {round}: {deleted}");
        let want = if read_status == 200 { "read" } else { "deleted" };
        assert_eq!(deleted["state"], want, "round {round}: read {read_status}, delete {deleted}");
        assert_eq!(receipt(&http, &dev, &id, &token).await.1["state"], want, "round {round}");
    }
}

/// A row written by an older build (format 1: one view, no receipt) still reads, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_in_the_old_format_still_reads_once() {
    let dev = start(durable(&[])).await;
    let http = crypt_conformance::client();
    let r = http.post(format!("{}/__contract/legacy/durable/old01", dev.url())).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(
        read(&http, &dev, "old01").await,
        (200, serde_json::json!({"message": "legacy message", "views_left": 0}))
    );
    assert_eq!(read(&http, &dev, "old01").await.0, 404);
    let after = inspect(&http, &dev, "old01").await;
    assert!(after.starts_with("rows=1 alarm=1") && after.ends_with(" message=none"), "{after}");
}

/// Reads that land around the expiry instant, while the alarm runs: each gets the message or
/// 404, never an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_racing_the_alarm_gets_the_message_or_404() {
    let dev = start(durable(&[("CRYPT_MIN_TTL_SECS", "1")])).await;
    let http = crypt_conformance::client();
    let mut ids = Vec::new();
    for i in 0..40 {
        let (status, body) = create(&http, &dev, serde_json::json!({"message": format!("racer {i}"), "ttl": 1})).await;
        assert_eq!(status, 200, "{body}");
        ids.push((Instant::now(), body["id"].as_str().unwrap().to_owned()));
    }
    // Read message i at (created + 800 ms + 10 i ms): from before the expiry to after it.
    let reads = ids.iter().enumerate().map(|(i, (created, id))| {
        let http = http.clone();
        let url = format!("{}/{id}", dev.url());
        let at = *created + Duration::from_millis(800 + 10 * i as u64);
        async move {
            tokio::time::sleep_until(at.into()).await;
            let r = http.get(url).send().await.unwrap();
            r.status().as_u16()
        }
    });
    let statuses = futures::future::join_all(reads).await;
    assert!(statuses.iter().all(|s| *s == 200 || *s == 404), "{statuses:?}\n{}", logs(&dev));
    for (_, id) in &ids {
        let r = http.get(format!("{}/{id}", dev.url())).send().await.unwrap();
        assert_eq!(r.status(), 404, "a message outlived its expiry or its read");
    }
}

/// Concurrent creates that all draw the same id (the test bundle's `CRYPT_TEST_FIXED_ID`):
/// exactly one is stored, none overwrites it, the others fail as the reference does when no
/// free id is found, and the id reads back the winner's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_id_do_not_overwrite_each_other() {
    let dev = start(durable(&[("CRYPT_TEST_FIXED_ID", "same1"), ("CRYPT_ID_ATTEMPTS", "1")])).await;
    let http = crypt_conformance::client();
    let creates = (0..8).map(|i| {
        let http = http.clone();
        let dev = &dev;
        async move { (i, create(&http, dev, serde_json::json!({"message": format!("writer {i}")})).await) }
    });
    let answers = futures::future::join_all(creates).await;
    let winners: Vec<_> = answers.iter().filter(|(_, (status, _))| *status == 200).collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    assert_eq!(winners[0].1 .1["id"], "same1");
    for (_, (status, body)) in &answers {
        assert!(*status == 200 || *status == 500, "{status} {body}");
    }
    let r = http.get(format!("{}/same1", dev.url())).send().await.unwrap();
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["message"], format!("writer {}", winners[0].0));
}

/// The binding exists but points at a class no Worker serves here (a wrong `script_name`):
/// every store call fails, so creates, reads and readiness answer 503, never a false success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_namespace_answers_503() {
    let vars = durable(&[]);
    let wrong = "\n[[durable_objects.bindings]]\nname = \"MESSAGE_OBJECTS\"\nclass_name = \"MessageObject\"\nscript_name = \"crypt-elsewhere\"\n";
    let dev = tokio::task::spawn_blocking(move || WranglerDev::start_without_durable(&vars, wrong)).await.unwrap();
    let http = crypt_conformance::client();
    let (status, body) = create(&http, &dev, serde_json::json!({"message": "nowhere to go"})).await;
    assert_eq!((status, body), (503, serde_json::json!({"error": "Storage unavailable"})), "{}", logs(&dev));
    let r = http.get(format!("{}/abcde", dev.url())).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let r = http.get(format!("{}/readyz", dev.url())).send().await.unwrap();
    assert_eq!(r.status(), 503);
}
