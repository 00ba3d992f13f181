//! Test-only routes (feature `contract-routes`): run one check of the `MessageStore` port
//! contract against the real KV binding or the real Durable Object namespace inside workerd.
//! `POST /__contract/store/<check>` (KV) and `POST /__contract/durable/<check>` answer 200 `ok`,
//! 200 `not applicable: <why>`, 404 for an unknown check, or fail (a failed assertion aborts
//! the isolate, which wrangler reports as a 500). `GET /__contract/durable-inspect/<id>` answers
//! what the object for `<id>` stores (see `crypt_durable::route::INSPECT`).
//! `POST /__contract/legacy/kv/<id>` and `/__contract/legacy/durable/<id>` store, under `<id>`,
//! the text `legacy message` for an hour in the format-1 layout an older build wrote
//! (`StoredMessage::encode`: one view, no receipt), as it is, so tests can read it through the API.

use crypt_domain::testkit::store;
use crypt_domain::{Message, MessageId, MessageStore, Policy, StoredMessage};
use crypt_durable::DurableMessageStore;
use worker::{Env, Request, Response, Result};

pub(crate) async fn run(req: &Request, env: &Env) -> Result<Response> {
    let now = crate::bindings::now_millis();
    let path = req.path();
    if let Some(id) = path.strip_prefix("/__contract/durable-inspect/") {
        let store = DurableMessageStore::from_env(env).map_err(worker::Error::RustError)?;
        let id = MessageId::parse(id).ok_or_else(|| worker::Error::RustError("not an id".into()))?;
        return match store.inspect(&id).await {
            Ok(text) => Response::ok(text),
            Err(e) => Response::error(e.to_string(), 503),
        };
    }
    if let Some(rest) = path.strip_prefix("/__contract/legacy/") {
        return legacy(rest, env, now).await;
    }
    let (store, check): (Box<dyn MessageStore>, &str) = if let Some(check) = path.strip_prefix("/__contract/durable/") {
        (Box::new(DurableMessageStore::from_env(env).map_err(worker::Error::RustError)?), check)
    } else {
        let check = path.trim_start_matches("/__contract/store/");
        if store::NEED_ATOMICITY.contains(&check) {
            return Response::ok("not applicable: KV has no atomic read-modify-write or insert-if-absent");
        }
        (Box::new(crate::bindings::kv_store(env).map_err(worker::Error::RustError)?), check)
    };
    if store::run_named(check, store.as_ref(), now).await {
        Response::ok("ok")
    } else {
        Response::error(format!("no such check: {check}"), 404)
    }
}

/// The text a legacy write stores.
const LEGACY_TEXT: &str = "legacy message";

/// `<store>/<id>`: writes a format-1 message under `id` in the store named.
async fn legacy(rest: &str, env: &Env, now: u64) -> Result<Response> {
    let (which, id) = rest.split_once('/').ok_or_else(|| worker::Error::RustError("no id".into()))?;
    let id = MessageId::parse(id).ok_or_else(|| worker::Error::RustError("not an id".into()))?;
    let message =
        Message::new(LEGACY_TEXT.into(), &Policy::default()).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let expires_at = now + 3_600_000;
    let bytes = StoredMessage::new(message, expires_at).encode();
    let written = match which {
        "kv" => {
            crate::bindings::kv_store(env).map_err(worker::Error::RustError)?.put_encoded(&id, &bytes, expires_at).await
        }
        "durable" => DurableMessageStore::from_env(env)
            .map_err(worker::Error::RustError)?
            .insert_encoded(&id, bytes)
            .await
            .and_then(
                |stored| if stored { Ok(()) } else { Err(crypt_domain::StoreError::Unavailable("taken".into())) },
            ),
        _ => return Response::error(format!("no such store: {which}"), 404),
    };
    match written {
        Ok(()) => Response::ok("ok"),
        Err(e) => Response::error(e.to_string(), 503),
    }
}
