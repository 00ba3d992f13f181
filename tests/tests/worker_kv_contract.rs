//! The MessageStore port contract against the real KV binding, inside workerd: each check runs
//! in the Worker's test bundle (feature `contract-routes`) behind `POST /__contract/store/<check>`.

use crypt_conformance::wrangler::WranglerDev;
use std::collections::HashMap;

async fn run(check: &str) {
    let dev = tokio::task::spawn_blocking(|| WranglerDev::start(&HashMap::new())).await.unwrap();
    let resp = crypt_conformance::client()
        .post(format!("{}/__contract/store/{check}", dev.url()))
        .send()
        .await
        .expect("the contract route answers");
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if body.starts_with("not applicable") {
        println!("NOT APPLICABLE {check} on Workers KV: {body}");
        return;
    }
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (200, "ok"),
        "{check} failed in workerd:\n{}",
        dev.output.lock().unwrap().join("\n")
    );
}

// One test per check of the contract, from the one list in crypt-domain's testkit.
crypt_domain::store_contract!(@tests |check| {
    run(check).await;
});
