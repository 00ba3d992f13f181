//! The Worker's global first line: a Workers rate-limiting binding named RATE_LIMITER, checked
//! before the per-isolate sliding window (here set far above the binding's limit).

use crypt_conformance::wrangler::WranglerDev;
use std::collections::HashMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limiting_binding_limits_before_the_isolate_window() {
    let vars: HashMap<String, String> = [("CRYPT_RATE_LIMIT_MAX", "1000"), ("CRYPT_RATE_LIMIT_WINDOW_SECS", "60")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let binding =
        "\n[[ratelimits]]\nname = \"RATE_LIMITER\"\nnamespace_id = \"1001\"\nsimple = { limit = 3, period = 60 }\n";
    let dev = tokio::task::spawn_blocking(move || WranglerDev::start_with(&vars, binding)).await.unwrap();
    let http = crypt_conformance::client();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = http.get(format!("{}/zzzzz", dev.url())).send().await.unwrap();
        statuses.push((r.status().as_u16(), r.headers().get("retry-after").is_some()));
    }
    assert_eq!(&statuses[..3], &[(404, false); 3], "{statuses:?}");
    assert!(statuses[3..].iter().all(|&s| s == (429, true)), "{statuses:?}\n{}", dev.output.lock().unwrap().join("\n"));
}
