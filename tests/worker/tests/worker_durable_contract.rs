//! The MessageStore port contract against real Durable Objects, inside workerd: each check runs
//! in the Worker's test bundle (feature `contract-routes`) behind
//! `POST /__contract/durable/<check>`. Unlike on KV, the two atomicity checks run and must pass.

use crypt_conformance::wrangler::contract_check;

async fn run(check: &str) {
    let (status, body, output) = contract_check("/__contract/durable/", check).await;
    assert_eq!((status, body.as_str()), (200, "ok"), "{check} failed in workerd:\n{output}");
}

// One test per check of the contract, from the one list in crypt-domain's testkit.
crypt_domain::store_contract!(@tests |check| {
    run(check).await;
});
