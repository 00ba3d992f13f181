use crate::{shard_of, SHARDS};
use async_trait::async_trait;
use crypt_domain::{
    Clock, DeleteOutcome, Inserted, MessageId, MessageStore, ReceiptDigest, Record, StoreError, StoredMessage, Ttl,
    UnixMillis, Viewed,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Bytes charged per record on top of its text, id and receipt: the map slot, the `String`
/// and `Vec` headers and allocator rounding. An estimate, so the capacity bounds real memory,
/// not just payload.
const ENTRY_OVERHEAD: usize = 96;

/// Bytes a record keeps after its message is gone: the id, the overhead and room for one
/// instant per view (reserved at insert, so spending a view never needs room that may not be
/// there).
fn receipt_cost(id: &MessageId, views: u32) -> usize {
    id.as_str().len() + ENTRY_OVERHEAD + 8 * views as usize
}

/// Messages in this process's memory, bounded by a byte capacity.
///
/// When the capacity would be exceeded, `insert_new` answers [`StoreError::Full`]: an unread
/// message is never evicted to make room. A message's bytes are given back at its last view or
/// its delete; its receipt's (a hundred bytes or so) at its expiry. Restarting the process
/// loses every message.
pub struct MemoryStore {
    /// One lock per shard, held only for a map operation, never across an await: each change
    /// to a record ([`Record::spend_view`], [`Record::delete`]) happens under it, so it is
    /// atomic with the answer.
    shards: Box<[Mutex<HashMap<MessageId, Record>>]>,
    /// Bytes charged for stored records, reserved before an insert so concurrent inserts
    /// cannot overshoot the capacity together.
    used: AtomicUsize,
    capacity: usize,
    /// Needed to tell an expired entry (which may be replaced or swept) from a live one.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("used", &self.used.load(Ordering::Relaxed))
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// What a record is charged: its receipt's bytes, and its message's while it holds one.
fn cost(id: &MessageId, r: &Record) -> usize {
    receipt_cost(id, r.views) + r.message.as_ref().map_or(0, |m| m.len())
}

impl MemoryStore {
    /// An empty store holding at most `capacity_bytes` (text, ids, receipts and per-entry
    /// overhead).
    pub fn new(capacity_bytes: usize, clock: Arc<dyn Clock>) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect();
        Self { shards, used: AtomicUsize::new(0), capacity: capacity_bytes, clock }
    }

    /// Records held (messages, and receipts of messages already read or deleted), expired or
    /// not.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes charged against the capacity.
    pub fn used_bytes(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Removes every expired record (a message and its receipt, or a receipt alone) and frees
    /// its bytes; returns how many of them still held their message: the messages that expired
    /// before their last view. Locks one shard at a time, so readers and writers of other shards
    /// are not held up.
    pub fn sweep(&self) -> usize {
        let now = self.clock.now();
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut map = lock(shard);
            let mut freed = 0;
            map.retain(|id, r| {
                let keep = !r.is_expired(now);
                if !keep {
                    freed += cost(id, r);
                    removed += usize::from(r.message.is_some());
                }
                keep
            });
            self.release(freed);
        }
        removed
    }

    fn reserve(&self, bytes: usize) -> Result<(), StoreError> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.capacity)
            })
            .map(|_| ())
            .map_err(|_| StoreError::Full)
    }

    fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
        }
    }

    fn shard(&self, id: &MessageId) -> MutexGuard<'_, HashMap<MessageId, Record>> {
        lock(&self.shards[shard_of(id.as_str().as_bytes())])
    }

    /// Applies `change` to the live record under `id` under its shard's lock, and gives back
    /// the bytes of a message the change dropped. An expired record is removed instead.
    fn change<T>(&self, id: &MessageId, now: UnixMillis, change: impl FnOnce(&mut Record) -> Option<T>) -> Option<T> {
        let mut map = self.shard(id);
        let record = map.get_mut(id)?;
        if record.is_expired(now) {
            let gone = map.remove(id).map_or(0, |r| cost(id, &r));
            drop(map);
            self.release(gone);
            return None;
        }
        let before = cost(id, record);
        let answer = change(record);
        let after = cost(id, record);
        drop(map);
        self.release(before - after);
        answer
    }
}

/// A poisoned lock only means another thread panicked mid-operation; every operation here
/// leaves the map consistent, so the data is still good.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryStore {
    fn insert_now(&self, id: &MessageId, message: &StoredMessage) -> Result<Inserted, StoreError> {
        let record = Record::new(message);
        let bytes = cost(id, &record);
        self.reserve(bytes)?;
        let now = self.clock.now();
        let mut map = self.shard(id);
        match map.get(id) {
            Some(held) if !held.is_expired(now) => {
                drop(map);
                self.release(bytes);
                Ok(Inserted::Taken)
            }
            _ => {
                if let Some(old) = map.insert(id.clone(), record) {
                    drop(map);
                    self.release(cost(id, &old));
                }
                Ok(Inserted::Stored)
            }
        }
    }

    fn spend_now(&self, id: &MessageId, now: UnixMillis) -> Option<Viewed> {
        self.change(id, now, |r| r.spend_view(now))
    }
}

/// Every answer is ready at once, so the `*_at_once` methods give it and the vault never
/// awaits this store; the `async` methods give the same answers for callers that do.
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl MessageStore for MemoryStore {
    async fn insert_new(&self, id: &MessageId, message: &StoredMessage, _ttl: Ttl) -> Result<Inserted, StoreError> {
        self.insert_now(id, message)
    }

    async fn spend_view(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Viewed>, StoreError> {
        Ok(self.spend_now(id, now))
    }

    async fn record(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Record>, StoreError> {
        let map = self.shard(id);
        // The receipt only: the message is not copied out.
        Ok(map.get(id).filter(|r| !r.is_expired(now)).map(|r| Record {
            message: None,
            expires_at: r.expires_at,
            views: r.views,
            read_at: r.read_at.clone(),
            deleted: r.deleted,
            receipt: r.receipt,
        }))
    }

    async fn delete(
        &self,
        id: &MessageId,
        receipt: &ReceiptDigest,
        now: UnixMillis,
    ) -> Result<Option<DeleteOutcome>, StoreError> {
        Ok(self.change(id, now, |r| {
            if !r.owned_by(receipt, now) {
                return None;
            }
            let deletion = r.delete();
            Some(DeleteOutcome { deletion, receipt: r.receipt() })
        }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn insert_new_at_once(
        &self,
        id: &MessageId,
        message: &StoredMessage,
        _ttl: Ttl,
    ) -> Option<Result<Inserted, StoreError>> {
        Some(self.insert_now(id, message))
    }

    fn spend_view_at_once(&self, id: &MessageId, now: UnixMillis) -> Option<Result<Option<Viewed>, StoreError>> {
        Some(Ok(self.spend_now(id, now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypt_domain::testkit::ManualClock;
    use crypt_domain::{Message, Policy};

    fn wall_clock_now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
    }

    async fn fresh() -> Box<MemoryStore> {
        Box::new(MemoryStore::new(1 << 30, Arc::new(ManualClock::new(wall_clock_now()))))
    }

    crypt_domain::store_contract!(fresh(), wall_clock_now());

    fn msg(text: &str, expires_at: u64) -> StoredMessage {
        StoredMessage::new(Message::new(text.into(), &Policy::default()).unwrap(), expires_at)
    }

    fn id(s: &str) -> MessageId {
        MessageId::parse(s).unwrap()
    }

    fn ttl() -> Ttl {
        Ttl::default_for(&Policy::default())
    }

    #[tokio::test]
    async fn a_full_store_refuses_and_keeps_what_it_has() {
        let clock = Arc::new(ManualClock::new(0));
        // Room for two messages, and a third's receipt but not its text.
        let store = MemoryStore::new(2 * (5 + 100 + 8 + ENTRY_OVERHEAD) + 5 + 8 + ENTRY_OVERHEAD, clock);
        let text = "x".repeat(100);
        assert_eq!(store.insert_new(&id("aaaaa"), &msg(&text, 10), ttl()).await, Ok(Inserted::Stored));
        assert_eq!(store.insert_new(&id("bbbbb"), &msg(&text, 10), ttl()).await, Ok(Inserted::Stored));
        assert_eq!(store.insert_new(&id("ccccc"), &msg(&text, 10), ttl()).await, Err(StoreError::Full));
        assert_eq!(store.len(), 2);
        // Reading one frees its message's room, not its receipt's.
        assert!(store.spend_view(&id("aaaaa"), 0).await.unwrap().is_some());
        assert_eq!(store.used_bytes(), 2 * (5 + 8 + ENTRY_OVERHEAD) + 100);
        assert_eq!(store.insert_new(&id("ccccc"), &msg(&text, 10), ttl()).await, Ok(Inserted::Stored));
    }

    #[tokio::test]
    async fn a_refused_duplicate_gives_its_reservation_back() {
        let store = MemoryStore::new(1 << 20, Arc::new(ManualClock::new(0)));
        store.insert_new(&id("aaaaa"), &msg("one", 10), ttl()).await.unwrap();
        let before = store.used_bytes();
        assert_eq!(store.insert_new(&id("aaaaa"), &msg("two", 10), ttl()).await, Ok(Inserted::Taken));
        assert_eq!(store.used_bytes(), before);
    }

    #[tokio::test]
    async fn sweep_frees_expired_messages_only() {
        let clock = Arc::new(ManualClock::new(0));
        let store = MemoryStore::new(1 << 20, clock.clone());
        store.insert_new(&id("short"), &msg("a", 1_000), ttl()).await.unwrap();
        store.insert_new(&id("longr"), &msg("b", 5_000), ttl()).await.unwrap();
        clock.advance(1_000);
        assert_eq!(store.sweep(), 1);
        assert_eq!(store.len(), 1);
        assert_eq!(store.used_bytes(), cost(&id("longr"), &Record::new(&msg("b", 5_000))));
        clock.advance(4_000);
        assert_eq!(store.sweep(), 1);
        assert_eq!(store.used_bytes(), 0);
    }

    #[tokio::test]
    async fn an_expired_id_can_be_reused() {
        let clock = Arc::new(ManualClock::new(0));
        let store = MemoryStore::new(1 << 20, clock.clone());
        store.insert_new(&id("reuse"), &msg("old", 1_000), ttl()).await.unwrap();
        clock.advance(1_000);
        assert_eq!(store.insert_new(&id("reuse"), &msg("new", 9_000), ttl()).await, Ok(Inserted::Stored));
        assert_eq!(store.spend_view(&id("reuse"), 1_000).await.unwrap().unwrap().message.as_text().unwrap(), "new");
        assert_eq!(store.used_bytes(), receipt_cost(&id("reuse"), 1), "the receipt is charged until its expiry");
        clock.advance(8_000);
        assert_eq!(store.sweep(), 0, "a receipt alone is not a message that expired unread");
        assert_eq!((store.len(), store.used_bytes()), (0, 0));
    }

    #[test]
    fn parallel_takes_on_threads_yield_exactly_one() {
        let store = Arc::new(MemoryStore::new(1 << 30, Arc::new(ManualClock::new(0))));
        for round in 0..200 {
            let key = id(&format!("Thr{round:03}"));
            futures::executor::block_on(store.insert_new(&key, &msg("once", u64::MAX), ttl())).unwrap();
            let barrier = Arc::new(std::sync::Barrier::new(8));
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (store, key, barrier) = (store.clone(), key.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        futures::executor::block_on(store.spend_view(&key, 0)).unwrap().is_some()
                    })
                })
                .collect();
            let winners = handles.into_iter().map(|h| h.join().unwrap()).filter(|&w| w).count();
            assert_eq!(winners, 1, "round {round}");
        }
    }
}
