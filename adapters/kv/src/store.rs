use crate::kv_expiration_ttl;
use async_trait::async_trait;
use crypt_domain::{Inserted, MessageId, MessageStore, StoreError, StoredMessage, Ttl};
use wasm_bindgen::prelude::*;
use worker::js_sys::Uint8Array;

// Each store operation is one call into JavaScript and one promise, however many KV calls it
// makes. (Through `worker::kv`, every call looks its method up, builds its options object
// through serde and awaits its own promise; measured: see docs/PERFORMANCE.md, "At the
// edge".) No decision is made here: `insert` hands a held value back to Rust, which decides
// whether it is live. `value` is a view of wasm memory, so it is copied before the first await.
#[wasm_bindgen(inline_js = r#"
export async function crypt_kv_insert(kv, key, value, ttl) {
  const copy = value.slice();
  const held = await kv.get(key, "arrayBuffer");
  if (held !== null) return new Uint8Array(held);
  await kv.put(key, copy, { expirationTtl: ttl });
  return null;
}
export async function crypt_kv_put(kv, key, value, ttl) {
  await kv.put(key, value.slice(), { expirationTtl: ttl });
}
export async function crypt_kv_take(kv, key) {
  const held = await kv.get(key, "arrayBuffer");
  if (held === null) return null;
  await kv.delete(key);
  return new Uint8Array(held);
}
export async function crypt_kv_ping(kv) {
  await kv.get("crypt:ping");
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    async fn crypt_kv_insert(kv: &JsValue, key: &str, value: &[u8], ttl: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn crypt_kv_put(kv: &JsValue, key: &str, value: &[u8], ttl: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn crypt_kv_take(kv: &JsValue, key: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn crypt_kv_ping(kv: &JsValue) -> Result<JsValue, JsValue>;
}

/// Messages in a Workers KV namespace, under `m:<id>`.
#[derive(Debug, Clone)]
pub struct KvMessageStore {
    /// The namespace binding (`env.MESSAGES`).
    kv: JsValue,
    /// The clock the domain uses, to tell an expired held id (reusable) from a live one.
    now: fn() -> u64,
}

fn unavailable(e: JsValue) -> StoreError {
    let why = e.as_string().or_else(|| e.dyn_ref::<worker::js_sys::Error>().map(|e| e.message().into()));
    StoreError::Unavailable(format!("kv: {}", why.unwrap_or_else(|| format!("{e:?}"))))
}

fn key(id: &MessageId) -> String {
    format!("m:{}", id.as_str())
}

fn bytes_of(value: JsValue) -> Option<Vec<u8>> {
    value.dyn_into::<Uint8Array>().ok().map(|a| a.to_vec())
}

impl KvMessageStore {
    /// A store over the KV namespace bound as `binding` in `env`; `now` gives milliseconds since
    /// the Unix epoch (`Date.now()`). `None` when there is no such binding.
    pub fn from_env(env: &worker::Env, binding: &str, now: fn() -> u64) -> Option<Self> {
        let kv = worker::js_sys::Reflect::get(env, &JsValue::from_str(binding)).ok()?;
        let is_kv = !kv.is_undefined()
            && worker::js_sys::Reflect::has(&kv, &JsValue::from_str("getWithMetadata")).unwrap_or(false);
        is_kv.then_some(Self { kv, now })
    }
}

#[async_trait(?Send)]
impl MessageStore for KvMessageStore {
    async fn insert_new(&self, id: &MessageId, message: &StoredMessage, ttl: Ttl) -> Result<Inserted, StoreError> {
        let key = key(id);
        let value = message.encode();
        let expiration_ttl = kv_expiration_ttl(ttl.secs()) as f64;
        // Not atomic: see the crate docs. The common case (nothing held) is one call.
        let held = crypt_kv_insert(&self.kv, &key, &value, expiration_ttl).await.map_err(unavailable)?;
        let Some(held) = bytes_of(held) else {
            return Ok(Inserted::Stored);
        };
        let live = StoredMessage::decode(held).map(|held| !held.is_expired((self.now)())).unwrap_or(true);
        if live {
            return Ok(Inserted::Taken);
        }
        crypt_kv_put(&self.kv, &key, &value, expiration_ttl).await.map_err(unavailable)?;
        Ok(Inserted::Stored)
    }

    async fn take(&self, id: &MessageId) -> Result<Option<StoredMessage>, StoreError> {
        // Not atomic: see the crate docs. The delete comes before the answer, so an error
        // leaves the message readable rather than answering a message that stays stored.
        let held = crypt_kv_take(&self.kv, &key(id)).await.map_err(unavailable)?;
        let Some(bytes) = bytes_of(held) else {
            return Ok(None);
        };
        StoredMessage::decode(bytes).map(Some).map_err(|e| StoreError::Unavailable(format!("kv value is corrupt: {e}")))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        crypt_kv_ping(&self.kv).await.map(|_| ()).map_err(unavailable)
    }
}
