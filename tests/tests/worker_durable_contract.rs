//! The MessageStore port contract against real Durable Objects, inside workerd: each check runs
//! in the Worker's test bundle (feature `contract-routes`) behind
//! `POST /__contract/durable/<check>`. Unlike on KV, the two atomicity checks run and must pass.

use crypt_conformance::wrangler::WranglerDev;
use std::collections::HashMap;

async fn run(check: &str) {
    let dev = tokio::task::spawn_blocking(|| WranglerDev::start(&HashMap::new())).await.unwrap();
    let resp = crypt_conformance::client()
        .post(format!("{}/__contract/durable/{check}", dev.url()))
        .send()
        .await
        .expect("the contract route answers");
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
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
