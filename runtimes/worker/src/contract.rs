//! Test-only routes (feature `contract-routes`): run one check of the `MessageStore` port
//! contract against the real KV binding inside workerd. `POST /__contract/store/<check>`
//! answers 200 `ok`, 200 `not applicable: <why>`, or fails (a failed assertion aborts the
//! isolate, which wrangler reports as a 500).

use crypt_domain::testkit::store;
use worker::{Env, Request, Response, Result};

pub(crate) async fn run(req: &Request, env: &Env) -> Result<Response> {
    let kv = crate::edge::kv_store(env)?;
    let now = worker::Date::now().as_millis();
    let check = req.path().trim_start_matches("/__contract/store/").to_owned();
    match check.as_str() {
        "insert_then_take_once" => store::insert_then_take_once(&kv, now).await,
        "take_of_unknown_id_is_none" => store::take_of_unknown_id_is_none(&kv, now).await,
        "insert_on_a_held_id_is_taken_and_keeps_the_first" => {
            store::insert_on_a_held_id_is_taken_and_keeps_the_first(&kv, now).await
        }
        "largest_message_round_trips" => store::largest_message_round_trips(&kv, now).await,
        "ids_are_case_sensitive" => store::ids_are_case_sensitive(&kv, now).await,
        "expiry_instant_is_kept" => store::expiry_instant_is_kept(&kv, now).await,
        "ping_succeeds" => store::ping_succeeds(&kv, now).await,
        "concurrent_takes_yield_exactly_one" | "concurrent_inserts_yield_exactly_one" => {
            return Response::ok("not applicable: KV has no atomic read-and-delete or insert-if-absent");
        }
        other => return Response::error(format!("no such check: {other}"), 404),
    }
    Response::ok("ok")
}
