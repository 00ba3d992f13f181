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

macro_rules! kv_contract {
    ($($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                run(stringify!($check)).await;
            }
        )*
    };
}

kv_contract!(
    insert_then_take_once,
    take_of_unknown_id_is_none,
    insert_on_a_held_id_is_taken_and_keeps_the_first,
    largest_message_round_trips,
    ids_are_case_sensitive,
    concurrent_takes_yield_exactly_one,
    concurrent_inserts_yield_exactly_one,
    expiry_instant_is_kept,
    ping_succeeds
);
