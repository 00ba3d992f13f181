//! Test-only routes (feature `contract-routes`): run one check of the `MessageStore` port
//! contract against the real KV binding inside workerd. `POST /__contract/store/<check>`
//! answers 200 `ok`, 200 `not applicable: <why>`, 404 for an unknown check, or fails (a failed
//! assertion aborts the isolate, which wrangler reports as a 500).

use crypt_domain::testkit::store;
use worker::{Env, Request, Response, Result};

pub(crate) async fn run(req: &Request, env: &Env) -> Result<Response> {
    let kv = crate::bindings::kv_store(env).map_err(worker::Error::RustError)?;
    let now = crate::bindings::now_millis();
    let check = req.path().trim_start_matches("/__contract/store/").to_owned();
    if store::NEED_ATOMICITY.contains(&check.as_str()) {
        return Response::ok("not applicable: KV has no atomic read-and-delete or insert-if-absent");
    }
    if store::run_named(&check, &kv, now).await {
        Response::ok("ok")
    } else {
        Response::error(format!("no such check: {check}"), 404)
    }
}
