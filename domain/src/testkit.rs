//! Test support shared by every adapter: controllable [`Clock`] and [`IdSource`], a small
//! reference store for the domain's own unit tests, and the **port contract suites**.
//!
//! The contract suites are written once here and run against every adapter (memory, Redis,
//! KV) through [`store_contract!`](crate::store_contract) and
//! [`limiter_contract!`](crate::limiter_contract), so the adapters cannot drift apart.

use crate::{
    Clock, Counted, CountingStore, IdAlphabet, IdSource, Inserted, Message, MessageId, MessageStore, Policy,
    RateDecision, RateLimit, RateLimiter, StoreError, StoredMessage, Ttl, UnixMillis, WindowLog,
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

/// The simplest correct store, for the domain's unit tests. It can be told to fail.
#[derive(Debug, Default)]
pub struct MapStore {
    map: Mutex<HashMap<MessageId, StoredMessage>>,
    failing: AtomicBool,
}

impl MapStore {
    /// Makes every call fail with [`StoreError::Unavailable`] (or stop failing).
    pub fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
    /// Messages held.
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
        map.insert(id.clone(), message.clone());
        Ok(Inserted::Stored)
    }
    async fn take(&self, id: &MessageId) -> Result<Option<StoredMessage>, StoreError> {
        self.check()?;
        Ok(self.map.lock().unwrap().remove(id))
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

    async fn take_counted(
        &self,
        client: &str,
        now: UnixMillis,
        limit: RateLimit,
        id: &MessageId,
    ) -> Result<Counted<Option<StoredMessage>>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.limiter.hit(client, now, limit).await? {
            RateDecision::Allowed => Ok(Counted::Allowed(self.store.take(id).await?)),
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
    StoredMessage { message: Message::new(text.to_owned(), &Policy::default()).expect("valid text"), expires_at }
}

fn ttl() -> Ttl {
    Ttl::default_for(&Policy::default())
}

/// Far enough ahead that no store's own expiry interferes; near enough to fit any backend's TTL.
fn later(now: UnixMillis) -> UnixMillis {
    now + 3_600_000
}

/// The [`MessageStore`] contract. Each function is one check; `now` is the current wall-clock
/// time in milliseconds (stores with their own expiry need real instants).
pub mod store {
    use super::*;

    /// A stored message comes back once, byte for byte, then never again.
    async fn insert_then_take_once(s: &dyn MessageStore, now: UnixMillis) {
        let m = stored("line one\nline two\0 \"quoted\" 🔥 日本語", later(now));
        assert_eq!(s.insert_new(&id("Take1"), &m, ttl()).await.unwrap(), Inserted::Stored);
        assert_eq!(s.take(&id("Take1")).await.unwrap(), Some(m));
        assert_eq!(s.take(&id("Take1")).await.unwrap(), None);
    }

    /// Taking an id that never held anything is `None`, not an error.
    async fn take_of_unknown_id_is_none(s: &dyn MessageStore, _now: UnixMillis) {
        assert_eq!(s.take(&id("Never")).await.unwrap(), None);
    }

    /// A second insert under a held id is refused and the first message is untouched.
    async fn insert_on_a_held_id_is_taken_and_keeps_the_first(s: &dyn MessageStore, now: UnixMillis) {
        let first = stored("first", later(now));
        assert_eq!(s.insert_new(&id("Dupe1"), &first, ttl()).await.unwrap(), Inserted::Stored);
        assert_eq!(s.insert_new(&id("Dupe1"), &stored("second", later(now)), ttl()).await.unwrap(), Inserted::Taken);
        assert_eq!(s.take(&id("Dupe1")).await.unwrap(), Some(first));
    }

    /// The largest message the default policy allows survives intact, in multibyte text too.
    async fn largest_message_round_trips(s: &dyn MessageStore, now: UnixMillis) {
        let big = stored(&"é".repeat(51_200), later(now));
        assert_eq!(s.insert_new(&id("Large1"), &big, ttl()).await.unwrap(), Inserted::Stored);
        assert_eq!(s.take(&id("Large1")).await.unwrap(), Some(big));
    }

    /// Ids differ by case: `abcde` and `ABCDE` are two messages.
    async fn ids_are_case_sensitive(s: &dyn MessageStore, now: UnixMillis) {
        s.insert_new(&id("caseA"), &stored("lower", later(now)), ttl()).await.unwrap();
        assert_eq!(s.insert_new(&id("CASEA"), &stored("upper", later(now)), ttl()).await.unwrap(), Inserted::Stored);
        assert_eq!(s.take(&id("CASEA")).await.unwrap().unwrap().message.as_str(), "upper");
        assert_eq!(s.take(&id("caseA")).await.unwrap().unwrap().message.as_str(), "lower");
    }

    /// Many concurrent takes of one id: exactly one gets the message.
    async fn concurrent_takes_yield_exactly_one(s: &dyn MessageStore, now: UnixMillis) {
        for round in 0..20 {
            let key = id(&format!("Race{round:02}"));
            s.insert_new(&key, &stored("only once", later(now)), ttl()).await.unwrap();
            let takes = (0..16).map(|_| s.take(&key));
            let got = futures::future::join_all(takes).await;
            let winners = got.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
            assert_eq!(winners, 1, "round {round}: {winners} takes won");
            assert!(got.iter().all(|r| r.is_ok()));
        }
    }

    /// Many concurrent inserts under one id: exactly one is stored, and it is the one taken.
    async fn concurrent_inserts_yield_exactly_one(s: &dyn MessageStore, now: UnixMillis) {
        let key = id("Ins01");
        let messages: Vec<_> = (0..16).map(|i| stored(&format!("writer {i}"), later(now))).collect();
        let got = futures::future::join_all(messages.iter().map(|m| s.insert_new(&key, m, ttl()))).await;
        let winners: Vec<_> = got.iter().enumerate().filter(|(_, r)| matches!(r, Ok(Inserted::Stored))).collect();
        assert_eq!(winners.len(), 1);
        let winner = winners[0].0;
        assert_eq!(s.take(&key).await.unwrap(), Some(messages[winner].clone()));
    }

    /// The expiry instant is kept exactly, so the domain can decide expiry itself.
    async fn expiry_instant_is_kept(s: &dyn MessageStore, now: UnixMillis) {
        let m = stored("timed", later(now) + 123);
        s.insert_new(&id("Exp01"), &m, ttl()).await.unwrap();
        assert_eq!(s.take(&id("Exp01")).await.unwrap().unwrap().expires_at, later(now) + 123);
    }

    /// A healthy store answers a ping.
    async fn ping_succeeds(s: &dyn MessageStore, _now: UnixMillis) {
        s.ping().await.unwrap();
    }

    /// The checks that need an atomic read-and-delete and insert-if-absent, which an
    /// eventually consistent store (Workers KV) cannot give.
    pub const NEED_ATOMICITY: [&str; 2] =
        ["concurrent_takes_yield_exactly_one", "concurrent_inserts_yield_exactly_one"];

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
            insert_then_take_once, take_of_unknown_id_is_none, insert_on_a_held_id_is_taken_and_keeps_the_first,
            largest_message_round_trips, ids_are_case_sensitive, concurrent_takes_yield_exactly_one,
            concurrent_inserts_yield_exactly_one, expiry_instant_is_kept, ping_succeeds}
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
