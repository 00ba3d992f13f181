//! The use cases: admit a request, create a message, open (read and burn) a message.

use crate::{
    is_reserved, Clock, IdSource, Inserted, Message, MessageError, MessageId, MessageStore, Policy, RateDecision,
    RateLimit, RateLimiter, StoreError, StoredMessage, Ttl, TtlError, UnixMillis,
};
use std::sync::Arc;

/// A create request as a client sent it, before validation.
#[derive(Clone, PartialEq, Eq)]
pub struct Draft {
    /// The text to store.
    pub message: String,
    /// The requested time to live in seconds, if any.
    pub ttl_secs: Option<u64>,
}

impl std::fmt::Debug for Draft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Draft").field("message_bytes", &self.message.len()).field("ttl_secs", &self.ttl_secs).finish()
    }
}

/// A stored message's receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The id to read it with.
    pub id: MessageId,
    /// The instant it stops being readable.
    pub expires_at: UnixMillis,
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
        Self { store, limiter, clock, ids, policy }
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
        match self.limiter.hit(client().as_ref(), self.clock.now(), limit).await {
            Ok(RateDecision::Allowed) => Ok(()),
            Ok(RateDecision::Limited { retry_after_ms }) => {
                Err(AdmitError::RateLimited { retry_after_secs: retry_after_secs(retry_after_ms, limit) })
            }
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
        let message = Message::new(draft.message, &self.policy).map_err(CreateError::Message)?;
        let ttl = match draft.ttl_secs {
            Some(secs) => Ttl::new(secs, &self.policy).map_err(CreateError::Ttl)?,
            None => Ttl::default_for(&self.policy),
        };
        let expires_at = self.clock.now().saturating_add(ttl.secs().saturating_mul(1000));
        let stored = StoredMessage { message, expires_at };
        for _ in 0..self.policy.id_attempts() {
            let candidate = self.ids.next_id(self.policy.id_length(), self.policy.id_alphabet());
            if is_reserved(&candidate) {
                continue;
            }
            let Some(id) = MessageId::parse(&candidate) else { continue };
            match self.store.insert_new(&id, &stored, ttl).await.map_err(CreateError::Store)? {
                Inserted::Stored => return Ok(Created { id, expires_at }),
                Inserted::Taken => continue,
            }
        }
        Err(CreateError::NoUniqueId { attempts: self.policy.id_attempts() })
    }

    /// Reads the message under `raw_id` and destroys it.
    ///
    /// # Errors
    /// [`OpenError::NotFound`] when `raw_id` is not an id, holds nothing, or holds an expired
    /// message (which this call also removes); [`OpenError::Store`] when the store fails.
    pub async fn open(&self, raw_id: &str) -> Result<Message, OpenError> {
        let id = MessageId::parse(raw_id).ok_or(OpenError::NotFound)?;
        let stored = self.store.take(&id).await.map_err(OpenError::Store)?.ok_or(OpenError::NotFound)?;
        if stored.is_expired(self.clock.now()) {
            return Err(OpenError::NotFound);
        }
        Ok(stored.message)
    }

    /// Succeeds when the store answers.
    ///
    /// # Errors
    /// The store's error when it does not.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
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
    use crate::Limits;
    use futures::executor::block_on;

    fn vault_with(ids: &[&str], policy: Policy) -> (Vault, Arc<ManualClock>, Arc<MapStore>) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let store = Arc::new(MapStore::default());
        let vault = Vault::new(store.clone(), Arc::new(NoLimit), clock.clone(), Arc::new(FixedIds::new(ids)), policy);
        (vault, clock, store)
    }

    fn draft(text: &str, ttl: Option<u64>) -> Draft {
        Draft { message: text.into(), ttl_secs: ttl }
    }

    #[test]
    fn create_then_open_once() {
        let (vault, _, _) = vault_with(&["aaaaa"], Policy::default());
        let created = block_on(vault.create(draft("secret", None))).unwrap();
        assert_eq!(created.id.as_str(), "aaaaa");
        assert_eq!(created.expires_at, 1_000_000 + 86_400_000);
        assert_eq!(block_on(vault.open("aaaaa")).unwrap().as_str(), "secret");
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
}
