//! Test support shared by every adapter: controllable [`Clock`] and [`IdSource`], a small
//! reference store for the domain's own unit tests, and the **port contract suites**.
//!
//! The contract suites are written once here and run against every adapter (memory, Redis,
//! KV) through [`store_contract!`](crate::store_contract) and
//! [`limiter_contract!`](crate::limiter_contract), so the adapters cannot drift apart.

use crate::{
    Clock, Counted, CountingStore, DeleteOutcome, Deletion, IdAlphabet, IdSource, Inserted, Message, MessageId,
    MessageStore, Policy, RateDecision, RateLimit, RateLimiter, Receipt, ReceiptDigest, ReceiptState, Record,
    StoreError, StoredMessage, Ttl, UnixMillis, Viewed, WindowLog,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// A clock that moves only when told.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: UnixMillis) -> Self {
        Self(AtomicU64::new(start))
    }
    /// Moves the clock forward.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixMillis {
        self.0.load(Ordering::SeqCst)
    }
}

/// Hands out the given ids in turn, repeating the last one forever.
#[derive(Debug)]
pub struct FixedIds {
    ids: Vec<String>,
    next: AtomicUsize,
}

impl FixedIds {
    /// A source of `ids`, in order.
    pub fn new(ids: &[&str]) -> Self {
        Self { ids: ids.iter().map(|s| s.to_string()).collect(), next: AtomicUsize::new(0) }
    }
}

impl IdSource for FixedIds {
    fn next_id(&self, _len: usize, _alphabet: IdAlphabet) -> String {
        let i = self.next.fetch_add(1, Ordering::SeqCst).min(self.ids.len() - 1);
        self.ids[i].clone()
    }

    /// Receipts are counted, so they never disturb the ids' order: `receipt000…0001`, 32 long.
    fn next_receipt(&self) -> String {
        static RECEIPTS: AtomicU64 = AtomicU64::new(0);
        format!("receipt{:025}", RECEIPTS.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

/// A limiter that allows everything.
#[derive(Debug)]
pub struct NoLimit;

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl RateLimiter for NoLimit {
    async fn hit(&self, _: &str, _: UnixMillis, _: RateLimit) -> Result<RateDecision, StoreError> {
        Ok(RateDecision::Allowed)
    }
}

/// The simplest correct store, for the domain's unit tests: [`Record`]s in a map, each change
/// under one lock. It can be told to fail.
#[derive(Debug, Default)]
pub struct MapStore {
    map: Mutex<HashMap<MessageId, Record>>,
    failing: AtomicBool,
}

impl MapStore {
    /// Makes every call fail with [`StoreError::Unavailable`] (or stop failing).
    pub fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
    /// Records held (messages and receipts), expired or not.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }
    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("told to fail".into()))
        } else {
            Ok(())
        }
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl MessageStore for MapStore {
    async fn insert_new(&self, id: &MessageId, message: &StoredMessage, _: Ttl) -> Result<Inserted, StoreError> {
        self.check()?;
        let mut map = self.map.lock().unwrap();
        if map.contains_key(id) {
            return Ok(Inserted::Taken);
        }
        map.insert(id.clone(), Record::new(message));
        Ok(Inserted::Stored)
    }
    async fn spend_view(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Viewed>, StoreError> {
        self.check()?;
        let mut map = self.map.lock().unwrap();
        let Some(record) = map.get_mut(id) else { return Ok(None) };
        if record.is_expired(now) {
            map.remove(id);
            return Ok(None);
        }
        Ok(record.spend_view(now))
    }
    async fn record(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Record>, StoreError> {
        self.check()?;
        Ok(self.map.lock().unwrap().get(id).filter(|r| !r.is_expired(now)).cloned())
    }
    async fn delete(
        &self,
        id: &MessageId,
        receipt: &ReceiptDigest,
        now: UnixMillis,
    ) -> Result<Option<DeleteOutcome>, StoreError> {
        self.check()?;
        let mut map = self.map.lock().unwrap();
        let Some(record) = map.get_mut(id).filter(|r| r.owned_by(receipt, now)) else { return Ok(None) };
        let deletion = record.delete();
        Ok(Some(DeleteOutcome { deletion, receipt: record.receipt() }))
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()
    }
}

/// A [`CountingStore`] that is a store and a limiter called one after the other: what a
/// one-step store must be equivalent to, for the vault's tests. Counts how often it was asked.
#[derive(Debug, Default)]
pub struct Joined {
    /// The messages.
    pub store: std::sync::Arc<MapStore>,
    /// The counts.
    pub limiter: std::sync::Arc<LogLimiter>,
    /// Counted operations asked for.
    pub calls: AtomicUsize,
}

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl CountingStore for Joined {
    async fn insert_new_counted(
        &self,
        client: &str,
        now: UnixMillis,
        limit: RateLimit,
        id: &MessageId,
        message: &StoredMessage,
        ttl: Ttl,
    ) -> Result<Counted<Inserted>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.limiter.hit(client, now, limit).await? {
            RateDecision::Allowed => Ok(Counted::Allowed(self.store.insert_new(id, message, ttl).await?)),
            RateDecision::Limited { retry_after_ms } => Ok(Counted::Limited { retry_after_ms }),
        }
    }

    async fn spend_view_counted(
        &self,
        client: &str,
        now: UnixMillis,
        limit: RateLimit,
        id: &MessageId,
    ) -> Result<Counted<Option<Viewed>>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.limiter.hit(client, now, limit).await? {
            RateDecision::Allowed => Ok(Counted::Allowed(self.store.spend_view(id, now).await?)),
            RateDecision::Limited { retry_after_ms } => Ok(Counted::Limited { retry_after_ms }),
        }
    }
}

/// A per-process limiter over [`WindowLog`], for unit tests.
#[derive(Debug, Default)]
pub struct LogLimiter(Mutex<HashMap<String, WindowLog>>);

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl RateLimiter for LogLimiter {
    async fn hit(&self, client: &str, now: UnixMillis, limit: RateLimit) -> Result<RateDecision, StoreError> {
        Ok(self.0.lock().unwrap().entry(client.to_owned()).or_default().hit(now, limit))
    }
}

fn id(s: &str) -> MessageId {
    MessageId::parse(s).expect("test ids are valid")
}

fn stored(text: &str, expires_at: UnixMillis) -> StoredMessage {
    with_views(text, expires_at, 1)
}

/// A message of `views` views whose receipt token is `receipt:<text>`.
fn with_views(text: &str, expires_at: UnixMillis, views: u32) -> StoredMessage {
    StoredMessage {
        message: Message::new(text.to_owned(), &Policy::default()).expect("valid text"),
        expires_at,
        views,
        receipt: Some(receipt_of(text)),
    }
}

/// A file of `views` views whose receipt token is `receipt:file`.
fn file_with_views(bytes: Vec<u8>, expires_at: UnixMillis, views: u32) -> StoredMessage {
    StoredMessage {
        message: Message::file(bytes.into(), &Policy::default()).expect("a valid file"),
        expires_at,
        views,
        receipt: Some(receipt_of("file")),
    }
}

fn receipt_of(text: &str) -> ReceiptDigest {
    ReceiptDigest::of(&format!("receipt:{text}"))
}

fn ttl() -> Ttl {
    Ttl::default_for(&Policy::default())
}

/// Far enough ahead that no store's own expiry interferes; near enough to fit any backend's TTL.
fn later(now: UnixMillis) -> UnixMillis {
    now + 3_600_000
}

/// The text of a spent view.
fn text(v: &Option<Viewed>) -> Option<&str> {
    v.as_ref().map(|v| v.message.as_text().unwrap())
}

/// The [`MessageStore`] contract. Each function is one check; `now` is the current wall-clock
/// time in milliseconds (stores with their own expiry need real instants).
pub mod store {
    use super::*;

    /// A one-view message comes back once, byte for byte, then never again.
    async fn insert_then_spend_once(s: &dyn MessageStore, now: UnixMillis) {
        let m = stored("line one\nline two\0 \"quoted\" 🔥 日本語", later(now));
        assert_eq!(s.insert_new(&id("Take1"), &m, ttl()).await.unwrap(), Inserted::Stored);
        let viewed = s.spend_view(&id("Take1"), now).await.unwrap().expect("the one view");
        assert_eq!((viewed.message, viewed.views_left, viewed.expires_at), (m.message, 0, m.expires_at));
        assert_eq!(s.spend_view(&id("Take1"), now).await.unwrap(), None);
    }

    /// An id that never held anything: no view, no record, no delete; nothing is left behind.
    async fn an_unknown_id_has_nothing(s: &dyn MessageStore, now: UnixMillis) {
        assert_eq!(s.spend_view(&id("Never"), now).await.unwrap(), None);
        assert_eq!(s.record(&id("Never"), now).await.unwrap(), None);
        assert_eq!(s.delete(&id("Never"), &receipt_of("x"), now).await.unwrap(), None);
        assert_eq!(s.record(&id("Never"), now).await.unwrap(), None);
        // The id is still free.
        assert_eq!(s.insert_new(&id("Never"), &stored("x", later(now)), ttl()).await.unwrap(), Inserted::Stored);
    }

    /// A second insert under a held id is refused and the first message is untouched.
    async fn insert_on_a_held_id_is_taken_and_keeps_the_first(s: &dyn MessageStore, now: UnixMillis) {
        let first = stored("first", later(now));
        assert_eq!(s.insert_new(&id("Dupe1"), &first, ttl()).await.unwrap(), Inserted::Stored);
        assert_eq!(s.insert_new(&id("Dupe1"), &stored("second", later(now)), ttl()).await.unwrap(), Inserted::Taken);
        assert_eq!(text(&s.spend_view(&id("Dupe1"), now).await.unwrap()), Some("first"));
    }

    /// The largest message the default policy allows survives intact, in multibyte text too.
    async fn largest_message_round_trips(s: &dyn MessageStore, now: UnixMillis) {
        let big = with_views(&"é".repeat(51_200), later(now), 2);
        assert_eq!(s.insert_new(&id("Large1"), &big, ttl()).await.unwrap(), Inserted::Stored);
        for _ in 0..2 {
            assert_eq!(s.spend_view(&id("Large1"), now).await.unwrap().unwrap().message, big.message);
        }
    }

    /// A file (SPEC Part 2 item 11) reads back as a file, byte for byte, on every view: bytes
    /// that are not UTF-8 (a leading 0xFF, a NUL, every byte value), and bytes that are UTF-8
    /// but were sent as a file, which stay a file.
    async fn a_file_reads_back_as_the_same_bytes(s: &dyn MessageStore, now: UnixMillis) {
        let every_byte: Vec<u8> = (0..=255u8).rev().cycle().take(70_000).collect();
        for (name, bytes) in [("File1", every_byte), ("File2", b"plain words".to_vec()), ("File3", vec![0])] {
            let m = file_with_views(bytes, later(now), 2);
            assert_eq!(s.insert_new(&id(name), &m, ttl()).await.unwrap(), Inserted::Stored);
            for left in [1, 0] {
                let viewed = s.spend_view(&id(name), now).await.unwrap().expect("a view");
                assert!(viewed.message.is_file(), "{name} came back as text");
                assert_eq!((viewed.message.as_bytes(), viewed.views_left), (m.message.as_bytes(), left), "{name}");
            }
            assert_eq!(s.spend_view(&id(name), now).await.unwrap(), None);
            let receipt = s.record(&id(name), now).await.unwrap().expect("the receipt stays");
            assert_eq!(receipt.receipt().state, ReceiptState::Read);
        }
    }

    /// The largest file the default policy allows (10 MiB) is kept whole, and deleted whole.
    async fn largest_file_round_trips(s: &dyn MessageStore, now: UnixMillis) {
        let max = Policy::default().max_file_bytes();
        let bytes: Vec<u8> = (0..max).map(|i| (i * 7 + i / 65_536) as u8).collect();
        let m = file_with_views(bytes, later(now), 2);
        assert_eq!(s.insert_new(&id("Big10"), &m, ttl()).await.unwrap(), Inserted::Stored);
        let viewed = s.spend_view(&id("Big10"), now).await.unwrap().expect("a view");
        assert!(viewed.message.as_bytes() == m.message.as_bytes(), "the 10 MiB file changed");
        let digest = m.receipt.expect("a receipt");
        let deleted = s.delete(&id("Big10"), &digest, now).await.unwrap().expect("the owner's delete");
        assert_eq!(deleted.deletion, Deletion::Deleted);
        assert_eq!(s.spend_view(&id("Big10"), now).await.unwrap(), None);
    }

    /// Ids differ by case: `abcde` and `ABCDE` are two messages.
    async fn ids_are_case_sensitive(s: &dyn MessageStore, now: UnixMillis) {
        s.insert_new(&id("caseA"), &stored("lower", later(now)), ttl()).await.unwrap();
        assert_eq!(s.insert_new(&id("CASEA"), &stored("upper", later(now)), ttl()).await.unwrap(), Inserted::Stored);
        assert_eq!(text(&s.spend_view(&id("CASEA"), now).await.unwrap()), Some("upper"));
        assert_eq!(text(&s.spend_view(&id("caseA"), now).await.unwrap()), Some("lower"));
    }

    /// Views are spent one at a time, each answer saying how many remain, each instant kept
    /// in the receipt, oldest first; after the last, nothing.
    async fn views_are_spent_one_by_one(s: &dyn MessageStore, now: UnixMillis) {
        s.insert_new(&id("Views3"), &with_views("three", later(now), 3), ttl()).await.unwrap();
        let fresh = s.record(&id("Views3"), now).await.unwrap().expect("a record");
        assert_eq!(fresh.receipt_for(&receipt_of("three"), now).unwrap().state, ReceiptState::Unread);
        assert_eq!(fresh.receipt_for(&receipt_of("three"), now).unwrap().views_left, 3);
        for (i, left) in [2, 1, 0].into_iter().enumerate() {
            let viewed = s.spend_view(&id("Views3"), now + i as u64 * 1000).await.unwrap().expect("a view");
            assert_eq!((viewed.message.as_text().unwrap(), viewed.views_left), ("three", left));
        }
        assert_eq!(s.spend_view(&id("Views3"), now + 5000).await.unwrap(), None);
        let receipt = s.record(&id("Views3"), now + 5000).await.unwrap().unwrap();
        let receipt = receipt.receipt_for(&receipt_of("three"), now + 5000).expect("the receipt outlives the message");
        assert_eq!(
            receipt,
            Receipt {
                state: ReceiptState::Read,
                views_left: 0,
                read_at: vec![now, now + 1000, now + 2000],
                expires_at: later(now)
            }
        );
    }

    /// Once the last view is spent, only the receipt is left, and it keeps the id taken until
    /// the original expiry.
    async fn the_receipt_outlives_the_message_and_keeps_the_id(s: &dyn MessageStore, now: UnixMillis) {
        s.insert_new(&id("Outlv"), &stored("gone", later(now)), ttl()).await.unwrap();
        s.spend_view(&id("Outlv"), now).await.unwrap().unwrap();
        let record = s.record(&id("Outlv"), now).await.unwrap().expect("the receipt is kept");
        assert_eq!(record.receipt_for(&receipt_of("gone"), now).unwrap().read_at, vec![now]);
        assert_eq!(record.receipt_for(&receipt_of("other"), now), None);
        assert_eq!(s.insert_new(&id("Outlv"), &stored("new", later(now)), ttl()).await.unwrap(), Inserted::Taken);
        assert_eq!(s.spend_view(&id("Outlv"), now).await.unwrap(), None);
    }

    /// At its expiry a message spends no view and its receipt is gone (from `record` at once,
    /// whatever the backend still holds), and nothing is recorded.
    async fn an_expired_message_and_its_receipt_are_gone(s: &dyn MessageStore, now: UnixMillis) {
        let m = with_views("timed", later(now) + 123, 2);
        s.insert_new(&id("Exp01"), &m, ttl()).await.unwrap();
        assert_eq!(s.spend_view(&id("Exp01"), now).await.unwrap().unwrap().expires_at, later(now) + 123);
        assert_eq!(s.spend_view(&id("Exp01"), later(now) + 123).await.unwrap(), None);
        assert_eq!(s.record(&id("Exp01"), later(now) + 123).await.unwrap(), None);
        assert_eq!(s.delete(&id("Exp01"), &receipt_of("timed"), later(now) + 123).await.unwrap(), None);
        let before = s.record(&id("Exp01"), now).await.unwrap();
        if let Some(before) = before {
            assert_eq!(before.read_at, vec![now], "a refused view was recorded");
        }
    }

    /// The sender's delete destroys the message unread, says so, and says so again when asked
    /// twice; a wrong receipt changes nothing.
    async fn delete_destroys_the_message_and_keeps_the_receipt(s: &dyn MessageStore, now: UnixMillis) {
        s.insert_new(&id("Del01"), &with_views("delete me", later(now), 3), ttl()).await.unwrap();
        s.spend_view(&id("Del01"), now).await.unwrap().unwrap();
        assert_eq!(s.delete(&id("Del01"), &receipt_of("someone else"), now).await.unwrap(), None);
        assert_eq!(
            s.spend_view(&id("Del01"), now + 1).await.unwrap().unwrap().views_left,
            1,
            "a wrong receipt deleted it"
        );
        let deleted = s.delete(&id("Del01"), &receipt_of("delete me"), now + 2).await.unwrap().expect("deleted");
        let want = Receipt {
            state: ReceiptState::Deleted,
            views_left: 0,
            read_at: vec![now, now + 1],
            expires_at: later(now),
        };
        assert_eq!(deleted, DeleteOutcome { deletion: Deletion::Deleted, receipt: want.clone() });
        assert_eq!(s.spend_view(&id("Del01"), now + 3).await.unwrap(), None);
        assert_eq!(
            s.delete(&id("Del01"), &receipt_of("delete me"), now + 4).await.unwrap(),
            Some(DeleteOutcome { deletion: Deletion::AlreadyGone, receipt: want.clone() }),
            "a second delete destroys nothing more"
        );
        let record = s.record(&id("Del01"), now + 5).await.unwrap().unwrap();
        assert_eq!(record.receipt_for(&receipt_of("delete me"), now + 5), Some(want));
    }

    /// A delete after the last view destroys nothing and says the message was read.
    async fn delete_after_the_last_view_says_read(s: &dyn MessageStore, now: UnixMillis) {
        s.insert_new(&id("Del02"), &stored("read first", later(now)), ttl()).await.unwrap();
        s.spend_view(&id("Del02"), now).await.unwrap().unwrap();
        let DeleteOutcome { deletion, receipt } =
            s.delete(&id("Del02"), &receipt_of("read first"), now + 1).await.unwrap().unwrap();
        assert_eq!(deletion, Deletion::AlreadyGone);
        assert_eq!((receipt.state, receipt.views_left, receipt.read_at), (ReceiptState::Read, 0, vec![now]));
    }

    /// A message stored before receipts existed (no digest) has no receipt and no delete.
    async fn a_message_without_a_receipt_cannot_be_deleted(s: &dyn MessageStore, now: UnixMillis) {
        let old = StoredMessage { receipt: None, ..stored("old", later(now)) };
        s.insert_new(&id("NoRcp"), &old, ttl()).await.unwrap();
        assert_eq!(s.delete(&id("NoRcp"), &receipt_of("old"), now).await.unwrap(), None);
        let record = s.record(&id("NoRcp"), now).await.unwrap().unwrap();
        assert_eq!(record.receipt_for(&receipt_of("old"), now), None);
        assert_eq!(text(&s.spend_view(&id("NoRcp"), now).await.unwrap()), Some("old"));
    }

    /// Many concurrent reads of one id with N views: exactly N get the message, their answers
    /// count down from N-1 to 0, and the receipt holds N instants.
    async fn concurrent_views_yield_exactly_n(s: &dyn MessageStore, now: UnixMillis) {
        for (round, views) in [1u32, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 7, 7, 7, 15, 16].into_iter().enumerate()
        {
            let key = id(&format!("Race{round:02}"));
            s.insert_new(&key, &with_views("only n times", later(now), views), ttl()).await.unwrap();
            let spends = (0..16).map(|_| s.spend_view(&key, now));
            let got = futures::future::join_all(spends).await;
            assert!(got.iter().all(|r| r.is_ok()));
            let mut left: Vec<u32> =
                got.iter().filter_map(|r| r.as_ref().unwrap().as_ref().map(|v| v.views_left)).collect();
            left.sort_unstable();
            assert_eq!(left, (0..views).collect::<Vec<_>>(), "round {round}: {views} views");
            let record = s.record(&key, now).await.unwrap().unwrap();
            assert_eq!(record.receipt_for(&receipt_of("only n times"), now).unwrap().read_at.len(), views as usize);
        }
    }

    /// A delete racing the last view's read: exactly one wins, and the receipt says which.
    async fn delete_racing_the_last_read_has_one_winner(s: &dyn MessageStore, now: UnixMillis) {
        for round in 0..20 {
            let key = id(&format!("DRace{round:02}"));
            s.insert_new(&key, &stored("race", later(now)), ttl()).await.unwrap();
            let digest = receipt_of("race");
            let (read, deleted) = futures::join!(s.spend_view(&key, now), s.delete(&key, &digest, now));
            let (read, DeleteOutcome { deletion, receipt: deleted }) = (read.unwrap(), deleted.unwrap().unwrap());
            let receipt = s.record(&key, now).await.unwrap().unwrap().receipt_for(&digest, now).unwrap();
            match read {
                Some(_) => assert_eq!(
                    (deletion, deleted.state, receipt.state),
                    (Deletion::AlreadyGone, ReceiptState::Read, ReceiptState::Read)
                ),
                None => assert_eq!(
                    (deletion, deleted.state, receipt.state),
                    (Deletion::Deleted, ReceiptState::Deleted, ReceiptState::Deleted)
                ),
            }
            assert_eq!(receipt, deleted, "round {round}");
        }
    }

    /// Many concurrent inserts under one id: exactly one is stored, and it is the one read.
    async fn concurrent_inserts_yield_exactly_one(s: &dyn MessageStore, now: UnixMillis) {
        let key = id("Ins01");
        let messages: Vec<_> = (0..16).map(|i| stored(&format!("writer {i}"), later(now))).collect();
        let got = futures::future::join_all(messages.iter().map(|m| s.insert_new(&key, m, ttl()))).await;
        let winners: Vec<_> = got.iter().enumerate().filter(|(_, r)| matches!(r, Ok(Inserted::Stored))).collect();
        assert_eq!(winners.len(), 1);
        let winner = winners[0].0;
        assert_eq!(s.spend_view(&key, now).await.unwrap().unwrap().message, messages[winner].message);
    }

    /// A healthy store answers a ping.
    async fn ping_succeeds(s: &dyn MessageStore, _now: UnixMillis) {
        s.ping().await.unwrap();
    }

    /// The checks that need atomic changes and insert-if-absent, which an eventually
    /// consistent store (Workers KV) cannot give.
    pub const NEED_ATOMICITY: [&str; 3] = [
        "concurrent_views_yield_exactly_n",
        "delete_racing_the_last_read_has_one_winner",
        "concurrent_inserts_yield_exactly_one",
    ];

    /// Every check, by name, so runners that cannot expand [`store_contract!`](crate::store_contract)
    /// (a Worker route) can run them one at a time.
    pub static CHECKS: &[(&str, Check)] = crate::store_contract!(@list @table);

    /// One check: it panics when the store breaks the contract.
    pub type Check =
        for<'a> fn(&'a dyn MessageStore, UnixMillis) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;

    /// Runs the check called `name`; `false` when there is none.
    pub async fn run_named(name: &str, s: &dyn MessageStore, now: UnixMillis) -> bool {
        match CHECKS.iter().find(|(n, _)| *n == name) {
            Some((_, check)) => {
                check(s, now).await;
                true
            }
            None => false,
        }
    }
}

/// The [`RateLimiter`] contract. Each check uses its own client keys and the instants it is
/// given, so it needs no sleeping.
pub mod limiter {
    use super::*;

    const LIMIT: RateLimit = match RateLimit::of(5, 10) {
        Some(l) => l,
        None => unreachable!(),
    };

    /// The budget is allowed, the next request is limited with a Retry-After inside the window.
    async fn allows_the_budget_then_limits(l: &dyn RateLimiter, now: UnixMillis) {
        for i in 0..5 {
            assert_eq!(l.hit("budget-client", now + i, LIMIT).await.unwrap(), RateDecision::Allowed, "hit {i}");
        }
        match l.hit("budget-client", now + 5, LIMIT).await.unwrap() {
            // The first hit (at `now`) leaves the window at now + 10 s, 9,995 ms after this one.
            RateDecision::Limited { retry_after_ms } => assert_eq!(retry_after_ms, Some(9_995)),
            other => panic!("expected Limited, got {other:?}"),
        }
    }

    /// One client's use does not spend another's budget.
    async fn clients_are_independent(l: &dyn RateLimiter, now: UnixMillis) {
        for i in 0..5 {
            l.hit("noisy-client", now + i, LIMIT).await.unwrap();
        }
        assert!(matches!(l.hit("noisy-client", now + 6, LIMIT).await.unwrap(), RateDecision::Limited { .. }));
        assert_eq!(l.hit("quiet-client", now + 6, LIMIT).await.unwrap(), RateDecision::Allowed);
    }

    /// Requests leave the window one by one as it slides.
    async fn the_window_slides(l: &dyn RateLimiter, now: UnixMillis) {
        for i in 0..5 {
            l.hit("slide-client", now + i * 1000, LIMIT).await.unwrap();
        }
        assert!(matches!(l.hit("slide-client", now + 9_000, LIMIT).await.unwrap(), RateDecision::Limited { .. }));
        // The first hit (at `now`) leaves the window at now + 10 s: one more is allowed, not five.
        assert_eq!(l.hit("slide-client", now + 10_000, LIMIT).await.unwrap(), RateDecision::Allowed);
        assert!(matches!(l.hit("slide-client", now + 10_001, LIMIT).await.unwrap(), RateDecision::Limited { .. }));
    }

    /// Limited requests do not extend the wait.
    async fn limited_requests_are_not_counted(l: &dyn RateLimiter, now: UnixMillis) {
        for i in 0..5 {
            l.hit("retry-client", now + i, LIMIT).await.unwrap();
        }
        for i in 0..20 {
            assert!(matches!(l.hit("retry-client", now + 100 + i, LIMIT).await.unwrap(), RateDecision::Limited { .. }));
        }
        assert_eq!(l.hit("retry-client", now + 10_004, LIMIT).await.unwrap(), RateDecision::Allowed);
    }

    /// Concurrent hits never let more than the budget through.
    async fn concurrent_hits_respect_the_budget(l: &dyn RateLimiter, now: UnixMillis) {
        let hits = (0..40).map(|_| l.hit("burst-client", now, LIMIT));
        let got = futures::future::join_all(hits).await;
        let allowed = got.iter().filter(|r| matches!(r, Ok(RateDecision::Allowed))).count();
        assert_eq!(allowed, 5);
    }

    /// Every check, by name.
    pub static CHECKS: &[(&str, Check)] = crate::limiter_contract!(@list @table);

    /// One check: it panics when the limiter breaks the contract.
    pub type Check =
        for<'a> fn(&'a dyn RateLimiter, UnixMillis) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;
}

/// Expands to one `#[tokio::test]` per [`store`] check, each on a fresh store from `$make`
/// (an async expression evaluated once per test, giving anything that derefs to the store, so
/// a fixture can keep a server alive beside it). The calling crate needs tokio as a
/// dev-dependency.
///
/// `store_contract!(@tests |name| { ... })` instead expands to one test per check that runs the
/// block with `name` bound to the check's name (for runners that reach the store another way).
/// The list of checks is written once, in the `@list` arm; every check function that is not
/// in it is dead code, which the lints refuse.
#[macro_export]
macro_rules! store_contract {
    (@list $($then:tt)*) => {
        $crate::store_contract! {$($then)*;
            insert_then_spend_once, an_unknown_id_has_nothing, insert_on_a_held_id_is_taken_and_keeps_the_first,
            largest_message_round_trips, a_file_reads_back_as_the_same_bytes, largest_file_round_trips,
            ids_are_case_sensitive, views_are_spent_one_by_one,
            the_receipt_outlives_the_message_and_keeps_the_id, an_expired_message_and_its_receipt_are_gone,
            delete_destroys_the_message_and_keeps_the_receipt, delete_after_the_last_view_says_read,
            a_message_without_a_receipt_cannot_be_deleted, concurrent_views_yield_exactly_n,
            delete_racing_the_last_read_has_one_winner, concurrent_inserts_yield_exactly_one, ping_succeeds}
    };
    (@table; $($check:ident),*) => {
        &[$((stringify!($check), |s, now| Box::pin($check(s, now)))),*]
    };
    (@tests |$name:ident| $body:block) => {
        $crate::store_contract! {@list @each [|$name| $body]}
    };
    (@each [|$name:ident| $body:block]; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let $name: &str = stringify!($check);
                $body
            }
        )*
    };
    ($make:expr, $now:expr) => {
        $crate::store_contract! {@tests |check| {
            let fixture = $make.await;
            assert!($crate::testkit::store::run_named(check, &*fixture, $now).await);
        }}
    };
}

/// Expands to one `#[tokio::test]` per [`limiter`] check, each on a fresh limiter from `$make`.
/// The list of checks is written once, in the `@list` arm.
#[macro_export]
macro_rules! limiter_contract {
    (@list $($then:tt)*) => {
        $crate::limiter_contract! {$($then)*;
            allows_the_budget_then_limits, clients_are_independent, the_window_slides,
            limited_requests_are_not_counted, concurrent_hits_respect_the_budget}
    };
    (@table; $($check:ident),*) => {
        &[$((stringify!($check), |l, now| Box::pin($check(l, now)))),*]
    };
    ($make:expr, $now:expr) => {
        $crate::limiter_contract! {@list @each_with [$make, $now]}
    };
    (@each_with [$make:expr, $now:expr]; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let fixture = $make.await;
                let (_, check) = $crate::testkit::limiter::CHECKS
                    .iter()
                    .find(|(n, _)| *n == stringify!($check))
                    .expect("the check is in the table");
                check(&*fixture, $now).await;
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn the_reference_store_meets_the_contract() {
        block_on(async {
            for (name, check) in store::CHECKS {
                println!("store check {name}");
                check(&MapStore::default(), 1_700_000_000_000).await;
            }
        });
    }

    #[test]
    fn unknown_check_names_are_reported() {
        assert!(!block_on(store::run_named("no_such_check", &MapStore::default(), 0)));
        assert!(block_on(store::run_named("ping_succeeds", &MapStore::default(), 0)));
    }

    #[test]
    fn the_reference_limiter_meets_the_contract() {
        block_on(async {
            for (name, check) in limiter::CHECKS {
                println!("limiter check {name}");
                check(&LogLimiter::default(), 1_700_000_000_000).await;
            }
        });
    }
}
