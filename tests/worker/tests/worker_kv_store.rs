//! The KV store's own promises, against the Worker under `wrangler dev` (real workerd, local
//! KV): views spent one by one and the receipt kept after the last, the sender's delete, KV's
//! 60-second floor on expiry never refusing a write of a short-lived message, and a value in
//! the old format still read. (What KV cannot promise under concurrency is in crypt-kv's docs;
//! the contract suite skips those checks.)

use crypt_conformance::wrangler::WranglerDev;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

fn kv(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    vars.insert("CRYPT_RATE_LIMIT_MAX".into(), "0".into());
    vars
}

async fn start(vars: HashMap<String, String>) -> WranglerDev {
    tokio::task::spawn_blocking(move || WranglerDev::start(&vars)).await.unwrap()
}

fn logs(dev: &WranglerDev) -> String {
    dev.output.lock().unwrap().join("\n")
}

/// A create's id and receipt.
async fn create(http: &reqwest::Client, dev: &WranglerDev, body: Value) -> (String, String) {
    let r = http.post(format!("{}/", dev.url())).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}\n{}", logs(dev));
    (body["id"].as_str().unwrap().to_owned(), body["receipt"].as_str().unwrap().to_owned())
}

async fn read(http: &reqwest::Client, dev: &WranglerDev, id: &str) -> (u16, Value) {
    let r = http.get(format!("{}/{id}", dev.url())).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn receipt(http: &reqwest::Client, dev: &WranglerDev, id: &str, token: &str) -> (u16, Value) {
    let r = http.get(format!("{}/{id}/receipt", dev.url())).bearer_auth(token).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn delete(http: &reqwest::Client, dev: &WranglerDev, id: &str, token: &str) -> (u16, Value) {
    let r = http.delete(format!("{}/{id}", dev.url())).bearer_auth(token).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Views are spent one by one; after the last, reads answer 404 while the receipt lists every
/// read; a delete afterwards says it was read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_count_down_and_the_receipt_outlives_the_message() {
    let dev = start(kv(&[])).await;
    let http = crypt_conformance::client();
    let (id, token) = create(&http, &dev, json!({"message": "three views", "views": 3})).await;
    let (status, shown) = receipt(&http, &dev, &id, &token).await;
    assert_eq!((status, &shown["state"], &shown["views_left"]), (200, &json!("unread"), &json!(3)));
    for left in [2, 1, 0] {
        assert_eq!(read(&http, &dev, &id).await, (200, json!({"message": "three views", "views_left": left})));
    }
    assert_eq!(read(&http, &dev, &id).await, (404, json!({"error": "Message not found"})));
    let (status, shown) = receipt(&http, &dev, &id, &token).await;
    assert_eq!((status, &shown["state"], &shown["views_left"]), (200, &json!("read"), &json!(0)));
    assert_eq!(shown["read_at"].as_array().map(Vec::len), Some(3), "{shown}");
    assert_eq!(delete(&http, &dev, &id, &token).await.1["state"], "read");
    assert_eq!(receipt(&http, &dev, &id, "not-the-receipt").await.0, 404);
}

/// The sender's delete destroys the message unread; reads answer 404, the receipt says deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_destroys_the_message_and_keeps_the_receipt() {
    let dev = start(kv(&[])).await;
    let http = crypt_conformance::client();
    let (id, token) = create(&http, &dev, json!({"message": "delete me", "views": 2})).await;
    assert_eq!(delete(&http, &dev, &id, "not-the-receipt").await.0, 404);
    let (status, deleted) = delete(&http, &dev, &id, &token).await;
    assert_eq!((status, &deleted["state"], &deleted["views_left"]), (200, &json!("deleted"), &json!(0)));
    assert_eq!(read(&http, &dev, &id).await.0, 404);
    assert_eq!(receipt(&http, &dev, &id, &token).await.1["state"], "deleted");
}

/// A message of a 2-second TTL: its create and its last view (each a KV write that must keep
/// the record until its expiry, which is under KV's 60-second minimum) are accepted, and at
/// its expiry the message and its receipt are gone, whatever KV still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_messages_are_written_above_kv_s_floor_and_expire_on_time() {
    let dev = start(kv(&[("CRYPT_MIN_TTL_SECS", "1")])).await;
    let http = crypt_conformance::client();
    let (id, token) = create(&http, &dev, json!({"message": "brief", "ttl": 2, "views": 2})).await;
    let (read_once, _) = create(&http, &dev, json!({"message": "brief too", "ttl": 2})).await;
    assert_eq!(read(&http, &dev, &id).await.1["views_left"], 1);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(read(&http, &dev, &read_once).await, (200, json!({"message": "brief too", "views_left": 0})));
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(read(&http, &dev, &id).await.0, 404, "a view was served after the expiry");
    assert_eq!(receipt(&http, &dev, &id, &token).await.0, 404, "a receipt outlived its expiry");
    assert!(!logs(&dev).contains("Invalid expiration"), "{}", logs(&dev));
}

/// A value written by an older build (format 1: one view, no receipt) still reads, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_in_the_old_format_still_reads_once() {
    let dev = start(kv(&[])).await;
    let http = crypt_conformance::client();
    let r = http.post(format!("{}/__contract/legacy/kv/old01", dev.url())).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(read(&http, &dev, "old01").await, (200, json!({"message": "legacy message", "views_left": 0})));
    assert_eq!(read(&http, &dev, "old01").await.0, 404);
}
