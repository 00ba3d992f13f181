//! The Durable Object store's own promises, against the Worker under `wrangler dev` (real
//! workerd, local SQLite-backed objects): storage freed by the expiry alarm, a read racing the
//! alarm, creates that draw one id, and a misconfigured namespace.

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

/// A message with the minimum TTL is gone after it, and the alarm freed its object's storage
/// (no row, no alarm, no table) without anyone reading it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_message_is_freed_by_its_alarm_at_expiry() {
    let dev = start(durable(&[("CRYPT_MIN_TTL_SECS", "1")])).await;
    let http = crypt_conformance::client();
    let (status, body) = create(&http, &dev, serde_json::json!({"message": "short-lived", "ttl": 1})).await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let held = inspect(&http, &dev, &id).await;
    assert!(held.starts_with("rows=1 alarm=1"), "{held}");

    // The alarm fires at the expiry instant; give the runtime a little slack.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = held;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        seen = inspect(&http, &dev, &id).await;
        if seen.starts_with("rows=0 alarm=none tables=0") {
            break;
        }
    }
    assert!(
        seen.starts_with("rows=0 alarm=none tables=0"),
        "the alarm did not free the object: {seen}\n{}",
        logs(&dev)
    );
    let r = http.get(format!("{}/{id}", dev.url())).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

/// A read also frees the object at once: no row, no alarm left to fire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_frees_the_object_and_its_alarm() {
    let dev = start(durable(&[])).await;
    let http = crypt_conformance::client();
    let (_, body) = create(&http, &dev, serde_json::json!({"message": "read me"})).await;
    let id = body["id"].as_str().unwrap().to_owned();
    let r = http.get(format!("{}/{id}", dev.url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let after = inspect(&http, &dev, &id).await;
    assert!(after.starts_with("rows=0 alarm=none tables=0"), "{after}");
    // A read of an id never stored writes nothing either.
    let r = http.get(format!("{}/zz9zz", dev.url())).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let never = inspect(&http, &dev, "zz9zz").await;
    assert!(never.starts_with("rows=0 alarm=none"), "{never}");
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
