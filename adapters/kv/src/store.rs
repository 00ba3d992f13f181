use crate::kv_expiration_ttl;
use async_trait::async_trait;
use crypt_domain::{Inserted, MessageId, MessageStore, StoreError, StoredMessage, Ttl};
use worker::kv::{KvError, KvStore};

/// Messages in a Workers KV namespace, under `m:<id>`.
#[derive(Debug, Clone)]
pub struct KvMessageStore {
    kv: KvStore,
    /// The clock the domain uses, to tell an expired held id (reusable) from a live one.
    now: fn() -> u64,
}

fn unavailable(e: KvError) -> StoreError {
    StoreError::Unavailable(format!("kv: {e}"))
}

fn key(id: &MessageId) -> String {
    format!("m:{}", id.as_str())
}

impl KvMessageStore {
    /// A store over `kv`; `now` gives milliseconds since the Unix epoch (`Date.now()`).
    pub fn new(kv: KvStore, now: fn() -> u64) -> Self {
        Self { kv, now }
    }
}

#[async_trait(?Send)]
impl MessageStore for KvMessageStore {
    async fn insert_new(&self, id: &MessageId, message: &StoredMessage, ttl: Ttl) -> Result<Inserted, StoreError> {
        let key = key(id);
        if let Some(bytes) = self.kv.get(&key).bytes().await.map_err(unavailable)? {
            let live = StoredMessage::decode(bytes).map(|held| !held.is_expired((self.now)())).unwrap_or(true);
            if live {
                return Ok(Inserted::Taken);
            }
        }
        self.kv
            .put_bytes(&key, &message.encode())
            .map_err(unavailable)?
            .expiration_ttl(kv_expiration_ttl(ttl.secs()))
            .execute()
            .await
            .map_err(unavailable)?;
        Ok(Inserted::Stored)
    }

    async fn take(&self, id: &MessageId) -> Result<Option<StoredMessage>, StoreError> {
        let key = key(id);
        let Some(bytes) = self.kv.get(&key).bytes().await.map_err(unavailable)? else {
            return Ok(None);
        };
        // Not atomic: see the crate docs. The delete comes first so that an error leaves the
        // message readable rather than answering a message that stays stored.
        self.kv.delete(&key).await.map_err(unavailable)?;
        StoredMessage::decode(bytes).map(Some).map_err(|e| StoreError::Unavailable(format!("kv value is corrupt: {e}")))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.kv.get("crypt:ping").bytes().await.map(|_| ()).map_err(unavailable)
    }
}
