//! The Worker with invalid `[vars]`: every request answers 500 `{"error":"Service misconfigured"}`
//! (the reason goes to the Worker's log, not to clients), with the usual API headers.

use crypt_conformance::wrangler::WranglerDev;
use std::collections::HashMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_vars_answer_500_and_log_the_setting() {
    let vars: HashMap<String, String> = [("CRYPT_ID_LENGTH".to_owned(), "3".to_owned())].into_iter().collect();
    let dev = tokio::task::spawn_blocking(move || WranglerDev::start(&vars)).await.unwrap();
    let http = crypt_conformance::client();
    for req in
        [http.get(format!("{}/healthz", dev.url())), http.post(format!("{}/", dev.url())).body(r#"{"message":"x"}"#)]
    {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 500);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"error": "Service misconfigured"}));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logs = dev.output.lock().unwrap().join("\n");
    assert!(logs.contains("CRYPT_ID_LENGTH"), "the log should name the bad setting:\n{logs}");
}
