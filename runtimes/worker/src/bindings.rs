//! What the Worker is bound to: the message store (the KV namespace or the Durable Object
//! namespace, as `CRYPT_EDGE_STORE` chooses), the optional rate-limiting binding, the clock and
//! the random source of the Workers runtime.

use crypt_domain::{Clock, IdAlphabet, IdSource, MessageStore, UnixMillis};
use crypt_durable::DurableMessageStore;
use crypt_http::EdgeStore;
use crypt_kv::KvMessageStore;
use std::sync::Arc;
use worker::Env;

/// The KV namespace binding that holds the messages.
pub(crate) const KV_BINDING: &str = "MESSAGES";
/// An optional Workers rate-limiting binding, used as a global first line before the
/// per-isolate sliding window.
pub(crate) const RATE_LIMIT_BINDING: &str = "RATE_LIMITER";

pub(crate) fn now_millis() -> UnixMillis {
    // `Date.now()` in one call (`worker::Date::now()` builds a `Date` object, then asks it).
    worker::js_sys::Date::now() as UnixMillis
}

/// `Date.now()`: `SystemTime::now()` panics on wasm32.
pub(crate) struct DateClock;

impl Clock for DateClock {
    fn now(&self) -> UnixMillis {
        now_millis()
    }
}

/// Ids from the Web Crypto random source (`crypto.getRandomValues`).
pub(crate) struct WebCryptoIds;

impl IdSource for WebCryptoIds {
    fn next_id(&self, len: usize, alphabet: IdAlphabet) -> String {
        alphabet
            .random_id(len, |buf| getrandom::getrandom(buf).expect("crypto.getRandomValues is available in Workers"))
    }
}

/// The message store on the KV binding, or a sentence naming the missing binding.
pub(crate) fn kv_store(env: &Env) -> Result<KvMessageStore, String> {
    KvMessageStore::from_env(env, KV_BINDING, now_millis).ok_or_else(|| {
        format!("the KV namespace binding {KV_BINDING} is missing or not a KV namespace; see wrangler.toml")
    })
}

/// The store `CRYPT_EDGE_STORE` chooses, or a sentence naming the binding it needs when that
/// binding is missing.
pub(crate) fn message_store(env: &Env, choice: EdgeStore) -> Result<Arc<dyn MessageStore>, String> {
    Ok(match choice {
        EdgeStore::Kv => Arc::new(kv_store(env)?),
        EdgeStore::DurableObject => Arc::new(DurableMessageStore::from_env(env)?),
    })
}

/// Test bundles only: `CRYPT_TEST_FIXED_ID` in `[vars]` makes every drawn id that one, so tests
/// can make concurrent creates collide. Receipts stay random (the default `next_receipt` would
/// draw them through `next_id`, and every receipt would be the fixed id).
#[cfg(feature = "contract-routes")]
pub(crate) struct FixedIds(pub(crate) String);

#[cfg(feature = "contract-routes")]
impl IdSource for FixedIds {
    fn next_id(&self, _len: usize, _alphabet: IdAlphabet) -> String {
        self.0.clone()
    }

    fn next_receipt(&self) -> String {
        WebCryptoIds.next_receipt()
    }
}
