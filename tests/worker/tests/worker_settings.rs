//! The Worker misconfigured: invalid `[vars]`, the reference's rate-limit setting beside the
//! window/budget pair, an unknown CRYPT_EDGE_STORE, or no binding for the chosen store. Every request answers 500
//! `{"error":"Internal server error"}` with the usual API headers (the client learns nothing
//! more), and the Worker's log names the setting or binding.

use crypt_conformance::wrangler::WranglerDev;
use std::collections::HashMap;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn every_request_is_500_and_the_log_names(dev: WranglerDev, names: &[&str]) {
    let http = crypt_conformance::client();
    for req in [
        http.get(format!("{}/healthz", dev.url())),
        http.post(format!("{}/", dev.url())).body(r#"{"message":"x"}"#),
        http.get(format!("{}/abcde", dev.url())),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 500);
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"error": "Internal server error"}));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logs = dev.output.lock().unwrap().join("\n");
    for name in names {
        assert!(logs.contains(name), "the log should name {name}:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_vars_answer_500_and_log_the_setting() {
    let v = vars(&[("CRYPT_ID_LENGTH", "3")]);
    let dev = tokio::task::spawn_blocking(move || WranglerDev::start(&v)).await.unwrap();
    every_request_is_500_and_the_log_names(dev, &["CRYPT_ID_LENGTH"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_rate_limit_beside_the_pair_answers_500_and_logs_both() {
    let v = vars(&[("RATE_LIMIT_PER_SECOND", "3"), ("CRYPT_RATE_LIMIT_WINDOW_SECS", "60")]);
    let dev = tokio::task::spawn_blocking(move || WranglerDev::start(&v)).await.unwrap();
    every_request_is_500_and_the_log_names(dev, &["RATE_LIMIT_PER_SECOND", "CRYPT_RATE_LIMIT_WINDOW_SECS"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_kv_binding_answers_500_and_logs_the_binding() {
    let dev = tokio::task::spawn_blocking(|| WranglerDev::start_without_kv(&HashMap::new())).await.unwrap();
    every_request_is_500_and_the_log_names(dev, &["MESSAGES"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_durable_object_binding_answers_500_and_logs_the_binding() {
    let v = vars(&[("CRYPT_EDGE_STORE", "durable-object")]);
    let dev = tokio::task::spawn_blocking(move || WranglerDev::start_without_durable(&v, "")).await.unwrap();
    every_request_is_500_and_the_log_names(dev, &["MESSAGE_OBJECTS"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_edge_store_answers_500_and_logs_the_setting() {
    let v = vars(&[("CRYPT_EDGE_STORE", "d1")]);
    let dev = tokio::task::spawn_blocking(move || WranglerDev::start(&v)).await.unwrap();
    every_request_is_500_and_the_log_names(dev, &["CRYPT_EDGE_STORE"]).await;
}
