//! The ports: what the rules need from the outside world, and what every adapter MUST guarantee.

use crate::{
    DeleteOutcome, IdAlphabet, MessageId, RateLimit, ReceiptDigest, Record, StoredMessage, Ttl, UnixMillis, Viewed,
};
use async_trait::async_trait;

/// `Send + Sync` on native targets, where hyper runs handlers on a multi-threaded runtime;
/// nothing on wasm32, where Workers futures and handles are not `Send`.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}
/// `Send + Sync` on native targets, where hyper runs handlers on a multi-threaded runtime;
/// nothing on wasm32, where Workers futures and handles are not `Send`.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSendSync for T {}

/// A store could not do what was asked. The cause is for logs, never for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend did not answer, answered an error, or timed out. Nothing can be said about
    /// whether a write happened, except what each method's guarantees say.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend refuses new data because it is at capacity. Nothing was evicted to make room.
    #[error("store full")]
    Full,
}

/// The answer to [`MessageStore::insert_new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The message is stored under the id.
    Stored,
    /// The id already holds an unexpired message; nothing was written.
    Taken,
}

/// Where messages live until their last view is spent, the sender deletes them, or they
/// expire; and their receipts, until the original expiry.
///
/// A store keeps one [`Record`] per id. [`Record`]'s methods are the rules for every change
/// (spend a view, delete, show the receipt): a store applies them atomically where its backend
/// allows, or, like Redis, runs the same rules server-side, and the contract suite
/// (`testkit::store`) checks that it does.
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait MessageStore: MaybeSendSync {
    /// Stores `message` under `id` only if `id` holds nothing (or only an expired record).
    ///
    /// An implementation MUST:
    /// - never overwrite an unexpired record, even one whose message is gone and whose receipt
    ///   is all that is left: an id is taken until its original expiry. Two concurrent
    ///   `insert_new`s of one id MUST NOT both return [`Inserted::Stored`] (where the backend
    ///   is strongly consistent);
    /// - keep the record at least until `message.expires_at` unless it is taken, and may drop
    ///   it any time after (`ttl` is given so that backends with their own expiry can use it);
    /// - never evict another record to make room.
    ///
    /// # Errors
    /// [`StoreError::Full`] when the backend is at capacity; [`StoreError::Unavailable`] when it
    /// cannot be reached. After an error the caller must not report the message as stored.
    async fn insert_new(&self, id: &MessageId, message: &StoredMessage, ttl: Ttl) -> Result<Inserted, StoreError>;

    /// Spends one view of the message under `id` at `now` ([`Record::spend_view`]): the message
    /// and the views left after it, recording `now` in its receipt; on the last view the
    /// message is destroyed and only the receipt stays. `None` when there is no message, it
    /// was deleted, every view is spent, or it expired at `now` (nothing is recorded then).
    ///
    /// An implementation MUST make this atomic where the backend allows it: of any number of
    /// concurrent calls on a message with N views left, exactly N return `Some` (so two
    /// concurrent calls on a one-view message MUST NOT both return `Some`), and the views
    /// spent, `read_at` and the destruction are one step with the answer.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached. The view then stays
    /// unspent, unless the backend carried out the change and only its reply was lost.
    async fn spend_view(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Viewed>, StoreError>;

    /// The record under `id`, for its receipt; `None` when there is none or it expired at
    /// `now`. It changes nothing. The caller compares the receipt's digest
    /// ([`Record::receipt_for`]); the message, if still held, MAY be left out of the answer.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    async fn record(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Record>, StoreError>;

    /// The sender's delete ([`Record::delete`]): when the record under `id` is live at `now`
    /// and its receipt's digest is `receipt` (compared in constant time), destroys the message
    /// at once if a view is left, and answers what it did ([`crate::Deletion::Deleted`] only for the
    /// one call that destroyed it) with the receipt as it is afterwards; `None`, with nothing
    /// changed, when there is no such record or the digest is another's.
    ///
    /// An implementation MUST make the check and the delete one atomic step with
    /// [`MessageStore::spend_view`] where the backend allows it: a delete and a read of the
    /// last view racing each other, exactly one wins, and the receipt says which.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached; the message then stays,
    /// unless the backend carried out the delete and only its reply was lost.
    async fn delete(
        &self,
        id: &MessageId,
        receipt: &ReceiptDigest,
        now: UnixMillis,
    ) -> Result<Option<DeleteOutcome>, StoreError>;

    /// Succeeds when the backend is reachable and answering, for readiness probes.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when it is not.
    async fn ping(&self) -> Result<(), StoreError>;

    /// [`MessageStore::insert_new`]'s answer without a future, from a store that never waits
    /// (one in this process's memory); `None`, the default, from any other, which the
    /// [`crate::Vault`] then awaits. Same contract, same answer.
    ///
    /// A store behind `Arc<dyn MessageStore>` answers `async` methods with a boxed future: an
    /// allocation, a free and a poll for an answer that was ready at once (with a decorator
    /// such as the server's metrics, twice). Measured on the server's request path, memory
    /// store: about 650 instructions a create+read pair for its two calls, and 900 for the
    /// limiter's two (`scripts/bench-instructions`).
    fn insert_new_at_once(
        &self,
        _id: &MessageId,
        _message: &StoredMessage,
        _ttl: Ttl,
    ) -> Option<Result<Inserted, StoreError>> {
        None
    }

    /// [`MessageStore::spend_view`]'s answer without a future, as
    /// [`MessageStore::insert_new_at_once`].
    fn spend_view_at_once(&self, _id: &MessageId, _now: UnixMillis) -> Option<Result<Option<Viewed>, StoreError>> {
        None
    }
}

/// What [`RateLimiter::hit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// The request is within the limit and has been counted.
    Allowed,
    /// The request is over the limit.
    Limited {
        /// Milliseconds until a request would be allowed again, when the limiter knows; `None`
        /// when it cannot say (a limiter run by the platform). The [`crate::Vault`] turns it into
        /// the whole seconds a client is told to wait.
        retry_after_ms: Option<u64>,
    },
}

/// Counts requests per client.
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait RateLimiter: MaybeSendSync {
    /// Counts one request by `client` at `now` against `limit` (a sliding window), and says
    /// whether it is allowed.
    ///
    /// An implementation MUST allow at most `limit.max()` requests from one client in any
    /// window of `limit.window_secs()` seconds, counting only allowed requests. Within one
    /// limiter the count is exact under concurrency. It is only called while limiting is on.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the limiter's backend cannot be reached.
    async fn hit(&self, client: &str, now: UnixMillis, limit: RateLimit) -> Result<RateDecision, StoreError>;

    /// [`RateLimiter::hit`]'s answer without a future, from a limiter that never waits (one in
    /// this process's memory); `None`, the default, from any other, which the
    /// [`crate::Vault`] then awaits. Same contract, same answer; see
    /// [`MessageStore::insert_new_at_once`] for why.
    fn hit_at_once(
        &self,
        _client: &str,
        _now: UnixMillis,
        _limit: RateLimit,
    ) -> Option<Result<RateDecision, StoreError>> {
        None
    }
}

/// What a [`CountingStore`] answers: the operation's result when the request was within the
/// limit (and was counted), or the wait when it was not (and nothing was done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted<T> {
    /// Within the limit: counted, and the operation ran.
    Allowed(T),
    /// Over the limit: nothing ran. As in [`RateDecision::Limited`].
    Limited {
        /// Milliseconds until the client may try again, when the store can say.
        retry_after_ms: Option<u64>,
    },
}

/// A store that also keeps the rate limit, and can count a request and run its operation in
/// one step: on Redis, one script and one round trip instead of two. Its counts are the same
/// as its [`RateLimiter`]'s and its messages the same as its [`MessageStore`]'s; the
/// [`Vault`](crate::Vault) uses it, when given one, for the two requests that touch a message.
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait CountingStore: MaybeSendSync {
    /// [`RateLimiter::hit`], then, only if allowed, [`MessageStore::insert_new`], as one step.
    async fn insert_new_counted(
        &self,
        client: &str,
        now: UnixMillis,
        limit: RateLimit,
        id: &MessageId,
        message: &StoredMessage,
        ttl: Ttl,
    ) -> Result<Counted<Inserted>, StoreError>;

    /// [`RateLimiter::hit`], then, only if allowed, [`MessageStore::spend_view`] at the same
    /// `now`, as one step.
    async fn spend_view_counted(
        &self,
        client: &str,
        now: UnixMillis,
        limit: RateLimit,
        id: &MessageId,
    ) -> Result<Counted<Option<Viewed>>, StoreError>;
}

/// The current time.
pub trait Clock: MaybeSendSync {
    /// Milliseconds since the Unix epoch. It need not be monotonic.
    fn now(&self) -> UnixMillis;
}

/// Where new ids come from.
pub trait IdSource: MaybeSendSync {
    /// A fresh candidate id of `len` symbols of `alphabet`, drawn from a cryptographically
    /// secure random source (see [`IdAlphabet::random_id`]).
    fn next_id(&self, len: usize, alphabet: IdAlphabet) -> String;

    /// A fresh receipt token (SPEC Part 2 item 10): 32 symbols of `[A-Za-z0-9]` from the same
    /// secure source, about 190 bits.
    fn next_receipt(&self) -> String {
        self.next_id(32, IdAlphabet::Mixed)
    }
}
