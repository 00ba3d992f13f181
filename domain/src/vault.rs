//! The use cases: admit a request, create a message, open (read and burn) a message.

use crate::{
    is_reserved, Clock, Content, Counted, CountingStore, IdSource, Inserted, Message, MessageError, MessageId,
    MessageStore, Policy, RateDecision, RateLimit, RateLimiter, Receipt, ReceiptDigest, StoreError, StoredMessage, Ttl,
    TtlError, UnixMillis, Viewed,
};
use std::sync::Arc;

/// A create request as a client sent it, before validation.
#[derive(Clone, PartialEq, Eq)]
pub struct Draft {
    /// The text or file to store.
    pub message: Content,
    /// The requested time to live in seconds, if any.
    pub ttl_secs: Option<u64>,
    /// The requested number of views, if any (SPEC Part 2 item 9); 0 for a value that is not
    /// a whole number, which no policy allows.
    pub views: Option<u64>,
}

impl std::fmt::Debug for Draft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Draft")
            .field("message", &self.message)
            .field("ttl_secs", &self.ttl_secs)
            .field("views", &self.views)
            .finish()
    }
}

/// What a create answers: where the message is, and the sender's receipt token.
#[derive(Clone, PartialEq, Eq)]
pub struct Created {
    /// The id to read it with.
    pub id: MessageId,
    /// The instant it stops being readable.
    pub expires_at: UnixMillis,
    /// Views it can be read for.
    pub views: u32,
    /// The receipt token (SPEC Part 2 item 10): shown to the sender once, stored only as its
    /// digest. Never logged.
    pub receipt: String,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("id", &self.id)
            .field("expires_at", &self.expires_at)
            .field("views", &self.views)
            .finish_non_exhaustive()
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The client is over its rate limit.
    #[error("rate limited, retry after {retry_after_secs} s")]
    RateLimited {
        /// Whole seconds until the client may try again (≥ 1).
        retry_after_secs: u64,
    },
    /// The rate limiter's backend failed.
    #[error(transparent)]
    Store(StoreError),
}

/// Why a message was not created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The text is empty, whitespace only, or over the size limit.
    #[error(transparent)]
    Message(MessageError),
    /// The requested time to live is outside the allowed range.
    #[error(transparent)]
    Ttl(TtlError),
    /// The requested views are not a whole number from 1 to the policy's maximum.
    #[error("views must be a whole number from 1 to {max}")]
    Views {
        /// The most views a create may ask for.
        max: u32,
    },
    /// Every id tried was taken (or reserved).
    #[error("no unused id after {attempts} attempts")]
    NoUniqueId {
        /// How many ids were tried.
        attempts: u32,
    },
    /// The store failed; nothing was stored.
    #[error(transparent)]
    Store(StoreError),
}

/// Why a message could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// No such id, already read, expired, or not an id at all. Deliberately one case: the
    /// service never says which.
    #[error("message not found")]
    NotFound,
    /// The store failed; the message, if any, stays readable.
    #[error(transparent)]
    Store(StoreError),
}

/// The service: the rules applied over the ports.
#[derive(Clone)]
pub struct Vault {
    store: Arc<dyn MessageStore>,
    limiter: Arc<dyn RateLimiter>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    policy: Policy,
    /// The store and limiter in one, when they are one backend (see [`Vault::with_counting_store`]).
    counting: Option<Arc<dyn CountingStore>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl Vault {
    /// Wires the use cases to their ports. `policy` should have passed [`Policy::validate`].
    pub fn new(
        store: Arc<dyn MessageStore>,
        limiter: Arc<dyn RateLimiter>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
        policy: Policy,
    ) -> Self {
        Self { store, limiter, clock, ids, policy, counting: None }
    }

    /// The vault that counts a create or a read and runs it in one step of `counting`, which
    /// must be the same backend as the store and the limiter (Redis: one round trip instead of
    /// two). Every other request is still counted through the limiter.
    pub fn with_counting_store(mut self, counting: Arc<dyn CountingStore>) -> Self {
        self.counting = Some(counting);
        self
    }

    /// The limits in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The clock's current time.
    pub fn now(&self) -> UnixMillis {
        self.clock.now()
    }

    /// Counts one API request by `client` against the rate limit. This is the one place that
    /// knows whether limiting is on, and the one place a wait becomes whole seconds.
    ///
    /// `client` is called only when the request is counted, so a deployment without rate
    /// limiting never formats an address.
    ///
    /// # Errors
    /// [`AdmitError::RateLimited`] over the limit; [`AdmitError::Store`] when the limiter fails.
    pub async fn admit<K: AsRef<str>>(&self, client: impl FnOnce() -> K) -> Result<(), AdmitError> {
        let Some(limit) = self.policy.rate_limit() else {
            return Ok(());
        };
        let (client, now) = (client(), self.clock.now());
        let decision = match self.limiter.hit_at_once(client.as_ref(), now, limit) {
            Some(decision) => decision,
            None => self.limiter.hit(client.as_ref(), now, limit).await,
        };
        match decision {
            Ok(RateDecision::Allowed) => Ok(()),
            Ok(RateDecision::Limited { retry_after_ms }) => Err(limited(retry_after_ms, limit)),
            Err(e) => Err(AdmitError::Store(e)),
        }
    }

    /// Validates `draft` and stores it under a fresh id.
    ///
    /// Ids are drawn until one is free, at most `policy.id_attempts` times; a reserved name
    /// ([`crate::RESERVED_NAMES`]) is never used and counts as an attempt.
    ///
    /// # Errors
    /// A [`CreateError`] saying what was wrong; nothing is stored after an error.
    pub async fn create(&self, draft: Draft) -> Result<Created, CreateError> {
        let (stored, ttl, receipt) = self.prepare(draft)?;
        match self.insert(&stored, ttl, receipt, None).await {
            Ok(created) => created,
            Err(_) => unreachable!("an insert without counting is never limited"),
        }
    }

    /// [`Vault::admit`] and [`Vault::create`] for one request by `client`: in one step of the
    /// counting store when there is one (the count and the first insert together), else one
    /// after the other. An invalid draft is counted too, and a limited client is told so
    /// before it is told its draft was wrong, as with [`Vault::admit`] first.
    ///
    /// # Errors
    /// The outer error when the request is not admitted (nothing is stored); the inner one
    /// as [`Vault::create`].
    pub async fn create_counted<K: AsRef<str>>(
        &self,
        client: impl FnOnce() -> K,
        draft: Draft,
    ) -> Result<Result<Created, CreateError>, AdmitError> {
        let (Some(limit), Some(counting)) = (self.policy.rate_limit(), &self.counting) else {
            self.admit(client).await?;
            return Ok(self.create(draft).await);
        };
        let client = client();
        let (stored, ttl, receipt) = match self.prepare(draft) {
            Ok(prepared) => prepared,
            Err(e) => {
                self.admit(|| client).await?;
                return Ok(Err(e));
            }
        };
        self.insert(&stored, ttl, receipt, Some((client.as_ref(), limit, counting.as_ref()))).await
    }

    fn prepare(&self, draft: Draft) -> Result<(StoredMessage, Ttl, String), CreateError> {
        let message = Message::of(draft.message, &self.policy).map_err(CreateError::Message)?;
        let ttl = match draft.ttl_secs {
            Some(secs) => Ttl::new(secs, &self.policy).map_err(CreateError::Ttl)?,
            None => Ttl::default_for(&self.policy),
        };
        let max = self.policy.max_views();
        let views = match draft.views {
            None => 1,
            Some(n) => u32::try_from(n).ok().filter(|n| (1..=max).contains(n)).ok_or(CreateError::Views { max })?,
        };
        let expires_at = self.clock.now().saturating_add(ttl.secs().saturating_mul(1000));
        // The token is drawn per message; a retry under another id keeps it.
        let receipt = self.ids.next_receipt();
        let stored = StoredMessage { message, expires_at, views, receipt: Some(ReceiptDigest::of(&receipt)) };
        Ok((stored, ttl, receipt))
    }

    /// Stores under a fresh id; with `count`, the first insert also counts the request (and a
    /// limited request stores nothing). An id that is taken is retried uncounted.
    async fn insert(
        &self,
        stored: &StoredMessage,
        ttl: Ttl,
        receipt: String,
        mut count: Option<(&str, RateLimit, &dyn CountingStore)>,
    ) -> Result<Result<Created, CreateError>, AdmitError> {
        for _ in 0..self.policy.id_attempts() {
            let candidate = self.ids.next_id(self.policy.id_length(), self.policy.id_alphabet());
            if is_reserved(&candidate) {
                continue;
            }
            let Some(id) = MessageId::parse(&candidate) else { continue };
            let inserted = match count.take() {
                Some((client, limit, counting)) => {
                    match counting.insert_new_counted(client, self.clock.now(), limit, &id, stored, ttl).await {
                        Ok(Counted::Allowed(inserted)) => Ok(inserted),
                        Ok(Counted::Limited { retry_after_ms }) => return Err(limited(retry_after_ms, limit)),
                        Err(e) => Err(e),
                    }
                }
                None => match self.store.insert_new_at_once(&id, stored, ttl) {
                    Some(inserted) => inserted,
                    None => self.store.insert_new(&id, stored, ttl).await,
                },
            };
            match inserted {
                Ok(Inserted::Stored) => {
                    return Ok(Ok(Created { id, expires_at: stored.expires_at, views: stored.views, receipt }))
                }
                Ok(Inserted::Taken) => continue,
                Err(e) => return Ok(Err(CreateError::Store(e))),
            }
        }
        // Every candidate was reserved before the store was asked: the request still counts.
        if let Some((client, _, _)) = count {
            self.admit(|| client).await?;
        }
        Ok(Err(CreateError::NoUniqueId { attempts: self.policy.id_attempts() }))
    }

    /// Reads the message under `raw_id`, spending one view; the last view destroys it.
    ///
    /// # Errors
    /// [`OpenError::NotFound`] when `raw_id` is not an id, holds nothing, holds an expired
    /// message, or has no view left; [`OpenError::Store`] when the store fails.
    pub async fn open(&self, raw_id: &str) -> Result<Viewed, OpenError> {
        let id = MessageId::parse(raw_id).ok_or(OpenError::NotFound)?;
        let now = self.clock.now();
        let viewed = match self.store.spend_view_at_once(&id, now) {
            Some(viewed) => viewed,
            None => self.store.spend_view(&id, now).await,
        };
        unexpired(viewed.map_err(OpenError::Store)?, now)
    }

    /// [`Vault::admit`] and [`Vault::open`] for one request by `client`: in one step of the
    /// counting store when there is one, else one after the other. A raw id that is not an id
    /// is counted too.
    ///
    /// # Errors
    /// The outer error when the request is not admitted (nothing is read or burned); the inner
    /// one as [`Vault::open`].
    pub async fn open_counted<K: AsRef<str>>(
        &self,
        client: impl FnOnce() -> K,
        raw_id: &str,
    ) -> Result<Result<Viewed, OpenError>, AdmitError> {
        let (Some(limit), Some(counting), Some(id)) =
            (self.policy.rate_limit(), &self.counting, MessageId::parse(raw_id))
        else {
            self.admit(client).await?;
            return Ok(self.open(raw_id).await);
        };
        let now = self.clock.now();
        match counting.spend_view_counted(client().as_ref(), now, limit, &id).await {
            Ok(Counted::Allowed(viewed)) => Ok(unexpired(viewed, now)),
            Ok(Counted::Limited { retry_after_ms }) => Err(limited(retry_after_ms, limit)),
            Err(e) => Ok(Err(OpenError::Store(e))),
        }
    }

    /// The receipt of the message under `raw_id`, for the holder of its receipt `token`. It
    /// never spends a view and never shows the message. (The request is counted by
    /// [`Vault::admit`] first, as every request that is not a create or a read.)
    ///
    /// # Errors
    /// [`OpenError::NotFound`] when `raw_id` is not an id, holds no receipt (never stored, or
    /// past its original expiry), or `token` is not its receipt: deliberately one case.
    /// [`OpenError::Store`] when the store fails.
    pub async fn receipt(&self, raw_id: &str, token: &str) -> Result<Receipt, OpenError> {
        let (id, digest) = Self::receipt_key(raw_id, token)?;
        let now = self.clock.now();
        let record = self.store.record(&id, now).await.map_err(OpenError::Store)?;
        record.and_then(|r| r.receipt_for(&digest, now)).ok_or(OpenError::NotFound)
    }

    /// The sender's delete of the message under `raw_id`, for the holder of its receipt
    /// `token`: the message is destroyed unread if a view is left. The answer is the receipt
    /// afterwards: `Deleted` when this or an earlier delete destroyed it, `Read` when every
    /// view had been spent first (the delete lost the race, or came late).
    ///
    /// # Errors
    /// As [`Vault::receipt`].
    pub async fn delete(&self, raw_id: &str, token: &str) -> Result<Receipt, OpenError> {
        let (id, digest) = Self::receipt_key(raw_id, token)?;
        let outcome = self.store.delete(&id, &digest, self.clock.now()).await.map_err(OpenError::Store)?;
        outcome.map(|o| o.receipt).ok_or(OpenError::NotFound)
    }

    fn receipt_key(raw_id: &str, token: &str) -> Result<(MessageId, ReceiptDigest), OpenError> {
        let id = MessageId::parse(raw_id).ok_or(OpenError::NotFound)?;
        if token.is_empty() || token.len() > ReceiptDigest::MAX_TOKEN_LEN {
            return Err(OpenError::NotFound);
        }
        Ok((id, ReceiptDigest::of(token)))
    }

    /// Succeeds when the store answers.
    ///
    /// # Errors
    /// The store's error when it does not.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
}

/// The store refuses an expired message itself ([`MessageStore::spend_view`]); this is the
/// domain's own check that it did, since the domain, not a backend, decides expiry.
fn unexpired(viewed: Option<Viewed>, now: UnixMillis) -> Result<Viewed, OpenError> {
    viewed.filter(|v| now < v.expires_at).ok_or(OpenError::NotFound)
}

fn limited(retry_after_ms: Option<u64>, limit: RateLimit) -> AdmitError {
    AdmitError::RateLimited { retry_after_secs: retry_after_secs(retry_after_ms, limit) }
}

/// The whole seconds a limited client is told to wait: the limiter's wait rounded up (never 0,
/// or the client would retry at once), or one whole window when the limiter cannot say. Never
/// more than one window: concurrent requests read the clock in one order and reach the
/// limiter in another, so a limiter can see its oldest hit a little after "now".
fn retry_after_secs(wait_ms: Option<u64>, limit: RateLimit) -> u64 {
    match wait_ms {
        Some(ms) => ms.div_ceil(1000).clamp(1, limit.window_secs()),
        None => limit.window_secs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{FixedIds, LogLimiter, ManualClock, MapStore, NoLimit};
    use crate::{Limits, ReceiptState};
    use futures::executor::block_on;

    fn vault_with(ids: &[&str], policy: Policy) -> (Vault, Arc<ManualClock>, Arc<MapStore>) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let store = Arc::new(MapStore::default());
        let vault = Vault::new(store.clone(), Arc::new(NoLimit), clock.clone(), Arc::new(FixedIds::new(ids)), policy);
        (vault, clock, store)
    }

    fn draft(text: &str, ttl: Option<u64>) -> Draft {
        Draft { message: text.into(), ttl_secs: ttl, views: None }
    }

    #[test]
    fn create_then_open_once() {
        let (vault, _, _) = vault_with(&["aaaaa"], Policy::default());
        let created = block_on(vault.create(draft("secret", None))).unwrap();
        assert_eq!(created.id.as_str(), "aaaaa");
        assert_eq!(created.expires_at, 1_000_000 + 86_400_000);
        assert_eq!(block_on(vault.open("aaaaa")).unwrap().message.as_text().unwrap(), "secret");
        assert_eq!(block_on(vault.open("aaaaa")), Err(OpenError::NotFound));
    }

    #[test]
    fn a_taken_id_is_retried_and_reserved_names_are_skipped() {
        let policy = Policy::new(Limits { id_length: 7, ..Limits::default() }).unwrap();
        let (vault, _, _) = vault_with(&["bbbbbbb", "healthz", "bbbbbbb", "ccccccc"], policy);
        assert_eq!(block_on(vault.create(draft("one", None))).unwrap().id.as_str(), "bbbbbbb");
        assert_eq!(block_on(vault.create(draft("two", None))).unwrap().id.as_str(), "ccccccc");
    }

    #[test]
    fn gives_up_after_the_configured_attempts() {
        let policy = Policy::new(Limits { id_attempts: 3, ..Limits::default() }).unwrap();
        let (vault, _, _) = vault_with(&["ddddd"], policy);
        block_on(vault.create(draft("first", None))).unwrap();
        assert_eq!(block_on(vault.create(draft("second", None))), Err(CreateError::NoUniqueId { attempts: 3 }));
    }

    #[test]
    fn a_reserved_name_is_never_returned_even_if_it_is_all_the_source_gives() {
        let policy = Policy::new(Limits { id_length: 7, ..Limits::default() }).unwrap();
        let (vault, _, store) = vault_with(&["metrics"], policy);
        assert_eq!(block_on(vault.create(draft("x", None))), Err(CreateError::NoUniqueId { attempts: 5 }));
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn expired_messages_are_not_found_and_removed() {
        let (vault, clock, store) = vault_with(&["eeeee"], Policy::default());
        block_on(vault.create(draft("short", Some(60)))).unwrap();
        clock.advance(60_000);
        assert_eq!(block_on(vault.open("eeeee")), Err(OpenError::NotFound));
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn a_message_is_readable_until_the_last_millisecond() {
        let (vault, clock, _) = vault_with(&["fffff"], Policy::default());
        block_on(vault.create(draft("short", Some(60)))).unwrap();
        clock.advance(59_999);
        assert!(block_on(vault.open("fffff")).is_ok());
    }

    #[test]
    fn invalid_drafts_are_refused_before_the_store_is_touched() {
        let (vault, _, store) = vault_with(&["ggggg"], Policy::default());
        assert_eq!(block_on(vault.create(draft("   ", None))), Err(CreateError::Message(MessageError::Empty)));
        assert!(matches!(
            block_on(vault.create(draft(&"x".repeat(102_401), None))),
            Err(CreateError::Message(MessageError::TooLarge { .. }))
        ));
        assert!(matches!(block_on(vault.create(draft("x", Some(59)))), Err(CreateError::Ttl(_))));
        assert!(matches!(block_on(vault.create(draft("x", Some(86_401)))), Err(CreateError::Ttl(_))));
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn wrong_shaped_ids_are_not_found() {
        let (vault, _, _) = vault_with(&["hhhhh"], Policy::default());
        for bad in ["", "abc", "../../x", "abcd/", "héllo"] {
            assert_eq!(block_on(vault.open(bad)), Err(OpenError::NotFound));
        }
    }

    #[test]
    fn store_failures_are_reported_not_hidden() {
        let (vault, _, store) = vault_with(&["iiiii"], Policy::default());
        store.fail(true);
        assert!(matches!(block_on(vault.create(draft("x", None))), Err(CreateError::Store(_))));
        assert!(matches!(block_on(vault.open("iiiii")), Err(OpenError::Store(_))));
        assert!(block_on(vault.ready()).is_err());
        store.fail(false);
        assert!(block_on(vault.ready()).is_ok());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_never_zero() {
        let limit = RateLimit::of(3, 60).unwrap();
        assert_eq!(retry_after_secs(Some(0), limit), 1);
        assert_eq!(retry_after_secs(Some(1), limit), 1);
        assert_eq!(retry_after_secs(Some(1000), limit), 1);
        assert_eq!(retry_after_secs(Some(1001), limit), 2);
        assert_eq!(retry_after_secs(None, limit), 60, "a limiter that cannot say: one window");
        assert_eq!(retry_after_secs(Some(60_005), limit), 60, "never more than one window");
    }

    #[test]
    fn admit_counts_only_while_limiting_is_on_and_names_the_wait() {
        let clock = Arc::new(ManualClock::new(0));
        let make = |limits: Limits| {
            Vault::new(
                Arc::new(MapStore::default()),
                Arc::new(LogLimiter::default()),
                clock.clone(),
                Arc::new(FixedIds::new(&["aaaaa"])),
                Policy::new(limits).unwrap(),
            )
        };
        let off = make(Limits { rate_limit_max: 0, ..Limits::default() });
        let mut asked = false;
        for _ in 0..100 {
            assert_eq!(
                block_on(off.admit(|| {
                    asked = true;
                    "c"
                })),
                Ok(())
            );
        }
        assert!(!asked, "no client key is built while limiting is off");
        let on = make(Limits { rate_limit_max: 2, rate_limit_window_secs: 10, ..Limits::default() });
        assert_eq!(block_on(on.admit(|| "c")), Ok(()));
        clock.advance(1500);
        assert_eq!(block_on(on.admit(|| "c")), Ok(()));
        assert_eq!(block_on(on.admit(|| "c")), Err(AdmitError::RateLimited { retry_after_secs: 9 }));
        assert_eq!(block_on(on.admit(|| "other")), Ok(()));
    }

    /// A store and a limiter that answer only at once (the test kit's, whose futures are
    /// ready when made): awaiting either is a bug in the vault.
    struct AtOnce {
        store: MapStore,
        limiter: LogLimiter,
    }

    use futures::FutureExt as _;

    #[async_trait::async_trait]
    impl MessageStore for AtOnce {
        async fn insert_new(&self, _: &MessageId, _: &StoredMessage, _: Ttl) -> Result<Inserted, StoreError> {
            unreachable!("the vault awaited a store that answers at once")
        }
        async fn spend_view(&self, _: &MessageId, _: UnixMillis) -> Result<Option<Viewed>, StoreError> {
            unreachable!("the vault awaited a store that answers at once")
        }
        async fn record(&self, id: &MessageId, now: UnixMillis) -> Result<Option<crate::Record>, StoreError> {
            self.store.record(id, now).await
        }
        async fn delete(
            &self,
            id: &MessageId,
            receipt: &ReceiptDigest,
            now: UnixMillis,
        ) -> Result<Option<crate::DeleteOutcome>, StoreError> {
            self.store.delete(id, receipt, now).await
        }
        async fn ping(&self) -> Result<(), StoreError> {
            Ok(())
        }
        fn insert_new_at_once(
            &self,
            id: &MessageId,
            message: &StoredMessage,
            ttl: Ttl,
        ) -> Option<Result<Inserted, StoreError>> {
            self.store.insert_new(id, message, ttl).now_or_never()
        }
        fn spend_view_at_once(&self, id: &MessageId, now: UnixMillis) -> Option<Result<Option<Viewed>, StoreError>> {
            self.store.spend_view(id, now).now_or_never()
        }
    }

    #[async_trait::async_trait]
    impl RateLimiter for AtOnce {
        async fn hit(&self, _: &str, _: UnixMillis, _: RateLimit) -> Result<RateDecision, StoreError> {
            unreachable!("the vault awaited a limiter that answers at once")
        }
        fn hit_at_once(
            &self,
            client: &str,
            now: UnixMillis,
            limit: RateLimit,
        ) -> Option<Result<RateDecision, StoreError>> {
            self.limiter.hit(client, now, limit).now_or_never()
        }
    }

    #[test]
    fn a_store_and_a_limiter_that_answer_at_once_are_never_awaited() {
        let both = Arc::new(AtOnce { store: MapStore::default(), limiter: LogLimiter::default() });
        let policy =
            Policy::new(Limits { rate_limit_max: 2, rate_limit_window_secs: 10, ..Limits::default() }).unwrap();
        let vault = Vault::new(
            both.clone(),
            both.clone(),
            Arc::new(ManualClock::new(1_000_000)),
            Arc::new(FixedIds::new(&["aaaaa", "aaaaa", "bbbbb"])),
            policy,
        );
        let first = block_on(vault.create(draft("one", None))).unwrap();
        // The second draw is taken: retried at once too.
        let second = block_on(vault.create(draft("two", None))).unwrap();
        assert_eq!((first.id.as_str(), second.id.as_str()), ("aaaaa", "bbbbb"));
        assert_eq!(block_on(vault.open("aaaaa")).unwrap().message.as_text().unwrap(), "one");
        assert_eq!(block_on(vault.open("aaaaa")), Err(OpenError::NotFound));
        assert_eq!(block_on(vault.admit(|| "c")), Ok(()));
        assert_eq!(block_on(vault.admit(|| "c")), Ok(()));
        assert_eq!(block_on(vault.admit(|| "c")), Err(AdmitError::RateLimited { retry_after_secs: 10 }));
    }

    /// A vault whose store, limiter and counting store are one [`Joined`] backend, limited to
    /// `max` requests per minute.
    fn counting_vault(ids: &[&str], max: u32) -> (Vault, Arc<crate::testkit::Joined>) {
        let joined = Arc::new(crate::testkit::Joined::default());
        let policy = Policy::new(Limits { rate_limit_max: max, ..Limits::default() }).unwrap();
        let vault = Vault::new(
            joined.store.clone(),
            joined.limiter.clone(),
            Arc::new(ManualClock::new(1_000_000)),
            Arc::new(FixedIds::new(ids)),
            policy,
        )
        .with_counting_store(joined.clone());
        (vault, joined)
    }

    #[test]
    fn a_counted_create_is_one_step_and_a_limited_one_stores_nothing() {
        let (v, joined) = counting_vault(&["aaaaa", "bbbbb"], 1);
        let created = block_on(v.create_counted(|| "c", draft("hi", None))).unwrap().unwrap();
        assert_eq!(created.id.as_str(), "aaaaa");
        assert_eq!(joined.calls.load(std::sync::atomic::Ordering::SeqCst), 1, "one step, not admit then insert");
        let limited = block_on(v.create_counted(|| "c", draft("again", None)));
        assert!(matches!(limited, Err(AdmitError::RateLimited { retry_after_secs: 60 })));
        assert_eq!(joined.store.len(), 1);
    }

    #[test]
    fn an_invalid_draft_and_a_non_id_are_still_counted() {
        let (v, _) = counting_vault(&["aaaaa"], 2);
        let bad = block_on(v.create_counted(|| "c", draft("   ", None))).unwrap();
        assert!(matches!(bad, Err(CreateError::Message(MessageError::Empty))));
        assert_eq!(block_on(v.open_counted(|| "c", "not-an-id!")).unwrap(), Err(OpenError::NotFound));
        assert!(block_on(v.open_counted(|| "c", "zzzzz")).is_err(), "the budget of 2 is spent");
    }

    #[test]
    fn a_taken_id_is_retried_without_counting_twice() {
        let (v, joined) = counting_vault(&["aaaaa", "aaaaa", "bbbbb"], 2);
        block_on(v.create_counted(|| "other", draft("first", None))).unwrap().unwrap();
        let created = block_on(v.create_counted(|| "c", draft("second", None))).unwrap().unwrap();
        assert_eq!(created.id.as_str(), "bbbbb");
        assert_eq!(joined.store.len(), 2);
        // "c" spent one of its two: one more is allowed.
        assert!(block_on(v.open_counted(|| "c", "aaaaa")).unwrap().is_ok());
    }

    #[test]
    fn a_limited_counted_read_burns_nothing() {
        let (v, _) = counting_vault(&["aaaaa"], 1);
        block_on(v.create_counted(|| "writer", draft("keep me", None))).unwrap().unwrap();
        block_on(v.open_counted(|| "reader", "zzzzz")).unwrap().unwrap_err();
        assert!(block_on(v.open_counted(|| "reader", "aaaaa")).is_err(), "limited");
        let read = block_on(v.open_counted(|| "someone else", "aaaaa")).unwrap().unwrap();
        assert_eq!(read.message.as_text().unwrap(), "keep me");
    }

    fn with_views(text: &str, views: Option<u64>) -> Draft {
        Draft { message: text.into(), ttl_secs: None, views }
    }

    #[test]
    fn a_message_of_n_views_is_read_n_times() {
        let (vault, _, _) = vault_with(&["aaaaa"], Policy::default());
        let created = block_on(vault.create(with_views("team", Some(3)))).unwrap();
        assert_eq!(created.views, 3);
        let left: Vec<u32> = (0..3).map(|_| block_on(vault.open("aaaaa")).unwrap().views_left).collect();
        assert_eq!(left, [2, 1, 0]);
        assert_eq!(block_on(vault.open("aaaaa")), Err(OpenError::NotFound));
    }

    #[test]
    fn views_outside_the_range_are_refused_before_the_store_is_touched() {
        let (vault, _, store) = vault_with(&["aaaaa"], Policy::default());
        for bad in [0, 101, u64::from(u32::MAX) + 2] {
            assert_eq!(block_on(vault.create(with_views("x", Some(bad)))), Err(CreateError::Views { max: 100 }));
        }
        assert_eq!(store.len(), 0);
        assert_eq!(block_on(vault.create(with_views("x", Some(100)))).unwrap().views, 100);
    }

    #[test]
    fn the_receipt_token_shows_the_receipt_and_deletes_and_nothing_else_does() {
        let (vault, clock, _) = vault_with(&["aaaaa"], Policy::default());
        let created = block_on(vault.create(with_views("mine", Some(2)))).unwrap();
        assert!(created.receipt.len() >= 22, "at least 128 bits");
        assert!(!format!("{created:?}").contains(&created.receipt), "the token is never in Debug");
        assert_eq!(block_on(vault.receipt("aaaaa", &created.receipt)).unwrap().state, ReceiptState::Unread);
        for wrong in ["", "receipt", &"x".repeat(10_000)] {
            assert_eq!(block_on(vault.receipt("aaaaa", wrong)), Err(OpenError::NotFound));
            assert_eq!(block_on(vault.delete("aaaaa", wrong)), Err(OpenError::NotFound));
        }
        clock.advance(5);
        block_on(vault.open("aaaaa")).unwrap();
        let receipt = block_on(vault.receipt("aaaaa", &created.receipt)).unwrap();
        assert_eq!((receipt.state, receipt.views_left, receipt.read_at), (ReceiptState::Read, 1, vec![1_000_005]));
        let deleted = block_on(vault.delete("aaaaa", &created.receipt)).unwrap();
        assert_eq!((deleted.state, deleted.views_left), (ReceiptState::Deleted, 0));
        assert_eq!(block_on(vault.open("aaaaa")), Err(OpenError::NotFound));
        clock.advance(86_400_000);
        assert_eq!(block_on(vault.receipt("aaaaa", &created.receipt)), Err(OpenError::NotFound), "gone at expiry");
    }
}
