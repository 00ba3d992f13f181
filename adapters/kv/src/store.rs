use crate::kv_expiration;
use async_trait::async_trait;
use crypt_domain::{
    DeleteOutcome, Inserted, MessageId, MessageStore, ReceiptDigest, Record, StoreError, StoredMessage, Ttl,
    UnixMillis, Viewed,
};
use wasm_bindgen::prelude::*;
use worker::js_sys::Uint8Array;

// Each KV step is one call into JavaScript and one promise, however many KV calls it makes.
// (Through `worker::kv`, every call looks its method up, builds its options object through
// serde and awaits its own promise; measured: see docs/PERFORMANCE.md, "At the edge".) No
// decision is made here: `insert` hands a held value back to Rust, which decides whether it
// is live, and a view or a delete is a `get`, the domain's rule in Rust, then a `put`.
// `value` is a view of wasm memory, so it is copied before the first await. `expiration` is
// KV's absolute expiry, in seconds since the Unix epoch.
#[wasm_bindgen(inline_js = r#"
export async function crypt_kv_insert(kv, key, value, expiration) {
  const copy = value.slice();
  const held = await kv.get(key, "arrayBuffer");
  if (held !== null) return new Uint8Array(held);
  await kv.put(key, copy, { expiration });
  return null;
}
export async function crypt_kv_get(kv, key) {
  const held = await kv.get(key, "arrayBuffer");
  return held === null ? null : new Uint8Array(held);
}
export async function crypt_kv_put(kv, key, value, expiration) {
  await kv.put(key, value.slice(), { expiration });
}
export async function crypt_kv_ping(kv) {
  await kv.get("crypt:ping");
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    async fn crypt_kv_insert(kv: &JsValue, key: &str, value: &[u8], expiration: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn crypt_kv_get(kv: &JsValue, key: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn crypt_kv_put(kv: &JsValue, key: &str, value: &[u8], expiration: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn crypt_kv_ping(kv: &JsValue) -> Result<JsValue, JsValue>;
}

/// Messages and their receipts in a Workers KV namespace, one [`Record`] under `m:<id>`. Not
/// atomic: see the crate docs for what that allows.
#[derive(Debug, Clone)]
pub struct KvMessageStore {
    /// The namespace binding (`env.MESSAGES`).
    kv: JsValue,
    /// The clock the domain uses (`Date.now()`), to tell an expired held id (reusable) from a
    /// live one when inserting, and to keep KV's expiry at least its minimum ahead.
    now: fn() -> u64,
}

fn unavailable(e: JsValue) -> StoreError {
    let why = e.as_string().or_else(|| e.dyn_ref::<worker::js_sys::Error>().map(|e| e.message().into()));
    StoreError::Unavailable(format!("kv: {}", why.unwrap_or_else(|| format!("{e:?}"))))
}

fn corrupt(e: crypt_domain::DecodeError) -> StoreError {
    StoreError::Unavailable(format!("kv value is corrupt: {e}"))
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

    /// Writes `bytes` under `id` as they are, kept by KV until `expires_at`: for tests of values
    /// written by an older build (the format-1 `StoredMessage::encode`). Test bundles only.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when KV refuses it.
    #[cfg(feature = "inspect")]
    pub async fn put_encoded(&self, id: &MessageId, bytes: &[u8], expires_at: UnixMillis) -> Result<(), StoreError> {
        crypt_kv_put(&self.kv, &key(id), bytes, self.expiration(expires_at)).await.map(|_| ()).map_err(unavailable)
    }

    /// KV's expiry for a record that lives until `expires_at`, written now.
    fn expiration(&self, expires_at: UnixMillis) -> f64 {
        kv_expiration(expires_at, (self.now)()) as f64
    }

    /// The record under `key`, as KV (this location's view of it) holds it.
    async fn get(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let held = crypt_kv_get(&self.kv, key).await.map_err(unavailable)?;
        bytes_of(held).map(Record::decode).transpose().map_err(corrupt)
    }

    /// Writes `record` under `key`, to be collected by KV at its original expiry.
    async fn put(&self, key: &str, record: &Record) -> Result<(), StoreError> {
        let expiration = self.expiration(record.expires_at);
        crypt_kv_put(&self.kv, key, &record.encode(), expiration).await.map(|_| ()).map_err(unavailable)
    }
}

#[async_trait(?Send)]
impl MessageStore for KvMessageStore {
    async fn insert_new(&self, id: &MessageId, message: &StoredMessage, _ttl: Ttl) -> Result<Inserted, StoreError> {
        let key = key(id);
        let value = Record::new(message).encode();
        let expiration = self.expiration(message.expires_at);
        // Not atomic: see the crate docs. The common case (nothing held) is one call.
        let held = crypt_kv_insert(&self.kv, &key, &value, expiration).await.map_err(unavailable)?;
        let Some(held) = bytes_of(held) else {
            return Ok(Inserted::Stored);
        };
        // A record whose message is gone still holds the id until its expiry; a value that
        // cannot be read is kept too (it may be a format this build does not know).
        let live = Record::decode(held).map(|held| !held.is_expired((self.now)())).unwrap_or(true);
        if live {
            return Ok(Inserted::Taken);
        }
        crypt_kv_put(&self.kv, &key, &value, expiration).await.map_err(unavailable)?;
        Ok(Inserted::Stored)
    }

    async fn spend_view(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Viewed>, StoreError> {
        // Not atomic: see the crate docs. The updated record is written before the answer, so
        // an error leaves the view unspent rather than answering a view that was not recorded.
        let key = key(id);
        let Some(mut record) = self.get(&key).await? else {
            return Ok(None);
        };
        let Some(viewed) = record.spend_view(now) else {
            // Expired, deleted or read to its end: nothing changes (KV collects it at expiry).
            return Ok(None);
        };
        // On the last view `record` no longer holds the message: this overwrites its bytes.
        self.put(&key, &record).await?;
        Ok(Some(viewed))
    }

    async fn record(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Record>, StoreError> {
        let record = self.get(&key(id)).await?.filter(|r| !r.is_expired(now));
        // The receipt only: the message is not handed on.
        Ok(record.map(|r| Record { message: None, ..r }))
    }

    async fn delete(
        &self,
        id: &MessageId,
        receipt: &ReceiptDigest,
        now: UnixMillis,
    ) -> Result<Option<DeleteOutcome>, StoreError> {
        // Not atomic: see the crate docs.
        let key = key(id);
        let Some(mut record) = self.get(&key).await? else {
            return Ok(None);
        };
        if !record.owned_by(receipt, now) {
            return Ok(None);
        }
        let deletion = record.delete();
        if deletion == crypt_domain::Deletion::Deleted {
            self.put(&key, &record).await?;
        }
        Ok(Some(DeleteOutcome { deletion, receipt: record.receipt() }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        crypt_kv_ping(&self.kv).await.map(|_| ()).map_err(unavailable)
    }
}
