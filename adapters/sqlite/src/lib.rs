//! crypt's SQLite store (SPEC Part 2 item 12): messages in one database file on one machine.
//!
//! **Acknowledged means on disk.** Every operation that changes something (a create, a spent
//! view, a delete) is answered only after the transaction holding it is committed with
//! `synchronous=FULL` in WAL mode: the WAL is fsynced, so the change survives a crash of the
//! process and of the machine. Operations are grouped: one writer thread commits everything
//! waiting at that moment in one transaction and one fsync ([`writer`]).
//!
//! **Burned means gone.** The last view, a delete and an expiry remove the message's bytes from
//! the row at once (`secure_delete=ON` zeroes what they occupied), and within
//! [`ERASE_WITHIN`] the WAL, which still holds older page images, is checkpointed into the
//! database file and truncated to nothing. A stolen disk then holds only live messages (and the
//! receipts of burned ones, which hold no text), as far as files go: blocks a file system
//! freed are its own affair (use an encrypted disk).
//!
//! One process per database: a lock file beside it (`<path>-lock`) refuses a second. Expired
//! records are deleted when they expire, on a timer set to the earliest expiry (found through an
//! index), not by scanning.

mod open;
mod writer;

pub use open::{backup, OpenError};
pub use writer::ERASE_WITHIN;

use async_trait::async_trait;
use crypt_domain::{
    Clock, DeleteOutcome, Inserted, MessageId, MessageStore, ReceiptDigest, Record, StoreError, StoredMessage, Ttl,
    UnixMillis, Viewed,
};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use writer::{Answer, Op, Request, Writer};

/// Where the database is and how large it may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// `CRYPT_SQLITE_PATH`: the database file (created when absent; its folder must exist).
    pub path: PathBuf,
    /// `CRYPT_SQLITE_MAX_BYTES`: the most the database's pages in use may hold; beyond it a
    /// create is refused ([`StoreError::Full`], 507), as on a full disk, while reads and deletes
    /// go on (SQLite's own cap, `max_page_count`, sits an eighth higher, at least 1 MiB, for
    /// them). `None`: as much as the disk.
    pub max_bytes: Option<u64>,
}

/// Told of every commit, for metrics. Called on the writer thread: it must not block.
pub trait CommitObserver: Send + Sync {
    /// A transaction that wrote was committed: how many operations it held, and how long the
    /// commit took in nanoseconds (the WAL's write and its fsync).
    fn committed(&self, batch: usize, nanos: u64);
    /// Records that expired were deleted, `unread` of them still holding their message.
    fn expired(&self, unread: usize);
}

/// State the writer and the callers share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// False after a commit failed for another reason than a full disk, until one succeeds.
    pub(crate) healthy: AtomicBool,
}

/// Messages in a SQLite database: durable, exactly-once, erased on burn. Dropping it stops its
/// writer thread after the operations already sent (see [`SqliteStore::close`] to wait).
pub struct SqliteStore {
    ops: Sender<Op>,
    shared: Arc<Shared>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    records: u64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("shared", &self.shared).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the database, deletes what expired while nothing ran, erases the WAL,
    /// and starts the writer.
    ///
    /// # Errors
    /// [`OpenError`], naming `CRYPT_SQLITE_PATH`, when the file cannot be used: a missing
    /// folder, a file that is not a SQLite database or not crypt's, a newer schema, read-only,
    /// or held by another process. Nothing is written to such a file.
    pub fn open(
        config: &SqliteConfig,
        clock: Arc<dyn Clock>,
        observer: Option<Arc<dyn CommitObserver>>,
    ) -> Result<Self, OpenError> {
        let (conn, lock) = open::open(&config.path, config.max_bytes)?;
        let fail = |e: rusqlite::Error| OpenError { path: config.path.clone(), why: format!("cannot be read: {e}") };
        let now = clock.now();
        let expired = conn.execute("DELETE FROM messages WHERE expires_at <= ?1", [now as i64]).map_err(fail)?;
        let (records, next): (i64, Option<i64>) = conn
            .query_row("SELECT count(*), min(expires_at) FROM messages", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(fail)?;
        let shared = Arc::new(Shared { healthy: AtomicBool::new(true) });
        let mut writer = Writer {
            conn,
            clock,
            shared: shared.clone(),
            observer,
            next_expiry: next.map(|at| at.max(0) as u64),
            dirty_since: None,
            budget: config.max_bytes,
        };
        // Whatever a crash left in the WAL (burned messages' old pages among it) goes now.
        writer.checkpoint();
        if expired > 0 {
            tracing::info!(expired, "deleted records that expired while crypt was not running");
        }
        let (ops, receive) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("crypt-sqlite".into())
            .spawn(move || {
                let _lock = lock;
                writer.run(receive);
            })
            .map_err(|e| OpenError { path: config.path.clone(), why: format!("cannot start its writer: {e}") })?;
        Ok(Self { ops, shared, writer: Mutex::new(Some(thread)), records: records.max(0) as u64 })
    }

    /// Records the database held when it was opened (messages, and receipts of burned ones).
    pub fn records_at_open(&self) -> u64 {
        self.records
    }

    /// Stops the writer after what was sent, checkpoints, closes the database and releases
    /// the lock; returns when all of that is done.
    pub fn close(self) {
        let thread = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(self.ops);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Checkpoints the WAL into the database file and truncates it now, after every operation
    /// sent before: what was burned leaves the WAL before a graceful stop, rather than within
    /// [`ERASE_WITHIN`] (which a stopping process might not live to see).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the writer has stopped.
    pub async fn flush(&self) -> Result<(), StoreError> {
        match self.ask(Request::Checkpoint).await? {
            Answer::Checkpoint => Ok(()),
            _ => Err(mismatch()),
        }
    }

    async fn ask(&self, request: Request) -> Result<Answer, StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Unavailable("the SQLite writer has stopped".into());
        self.ops.send(Op { request, reply }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn mismatch() -> StoreError {
    StoreError::Unavailable("the SQLite writer answered another operation".into())
}

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl MessageStore for SqliteStore {
    async fn insert_new(&self, id: &MessageId, message: &StoredMessage, _ttl: Ttl) -> Result<Inserted, StoreError> {
        match self.ask(Request::Insert { id: id.clone(), record: Record::new(message) }).await? {
            Answer::Insert(inserted) => Ok(inserted),
            Answer::Full => Err(StoreError::Full),
            _ => Err(mismatch()),
        }
    }

    async fn spend_view(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Viewed>, StoreError> {
        match self.ask(Request::Spend { id: id.clone(), now }).await? {
            Answer::Spend(viewed) => Ok(viewed),
            _ => Err(mismatch()),
        }
    }

    async fn record(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Record>, StoreError> {
        match self.ask(Request::Record { id: id.clone(), now }).await? {
            Answer::Record(record) => Ok(record),
            _ => Err(mismatch()),
        }
    }

    async fn delete(
        &self,
        id: &MessageId,
        receipt: &ReceiptDigest,
        now: UnixMillis,
    ) -> Result<Option<DeleteOutcome>, StoreError> {
        match self.ask(Request::Delete { id: id.clone(), digest: *receipt, now }).await? {
            Answer::Delete(outcome) => Ok(outcome),
            _ => Err(mismatch()),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self.ask(Request::Ping).await? {
            Answer::Ping if self.shared.healthy.load(std::sync::atomic::Ordering::Relaxed) => Ok(()),
            Answer::Ping => Err(StoreError::Unavailable("the last SQLite commit failed".into())),
            _ => Err(mismatch()),
        }
    }
}

#[cfg(test)]
mod tests;
