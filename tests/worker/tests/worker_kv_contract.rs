//! The MessageStore port contract against the real KV binding, inside workerd: each check runs
//! in the Worker's test bundle (feature `contract-routes`) behind `POST /__contract/store/<check>`.

use crypt_conformance::wrangler::contract_check;

async fn run(check: &str) {
    let (status, body, output) = contract_check("/__contract/store/", check).await;
    if body.starts_with("not applicable") {
        println!("NOT APPLICABLE {check} on Workers KV: {body}");
        return;
    }
    assert_eq!((status, body.as_str()), (200, "ok"), "{check} failed in workerd:\n{output}");
}

// One test per check of the contract, from the one list in crypt-domain's testkit.
crypt_domain::store_contract!(@tests |check| {
    run(check).await;
});
