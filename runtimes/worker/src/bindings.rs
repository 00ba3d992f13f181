//! What the Worker is bound to: the KV namespace, the optional rate-limiting binding, the
//! clock and the random source of the Workers runtime.

use crypt_domain::{Clock, IdAlphabet, IdSource, UnixMillis};
use crypt_kv::KvMessageStore;
use worker::Env;

/// The KV namespace binding that holds the messages.
pub(crate) const KV_BINDING: &str = "MESSAGES";
/// An optional Workers rate-limiting binding, used as a global first line before the
/// per-isolate sliding window.
pub(crate) const RATE_LIMIT_BINDING: &str = "RATE_LIMITER";

pub(crate) fn now_millis() -> UnixMillis {
    worker::Date::now().as_millis()
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
    let kv = env.kv(KV_BINDING).map_err(|e| {
        format!("the KV namespace binding {KV_BINDING} is missing or not a KV namespace ({e}); see wrangler.toml")
    })?;
    Ok(KvMessageStore::new(kv, now_millis))
}
