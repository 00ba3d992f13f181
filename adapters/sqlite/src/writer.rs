//! The one thread that owns the connection: group commit, expiry and erasure.
//!
//! Every operation (a read too: it spends a view, which is a write) is sent here. The thread
//! takes every operation waiting at that moment, applies them in order in one transaction, commits
//! (one WAL append and one fsync for all of them), and only then answers each. While it syncs,
//! new operations queue; the next batch takes them all. This is Redis's `appendfsync always`
//! (one fsync per event-loop turn for every client) with SQLite's transactions.

use crate::{CommitObserver, Shared};
use crypt_domain::{Clock, DeleteOutcome, Inserted, MessageId, ReceiptDigest, Record, StoreError, UnixMillis, Viewed};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The most operations one transaction takes; more wait for the next (each batch's answers
/// then come sooner, and a batch that fails is retried one by one in bounded time).
pub(crate) const MAX_BATCH: usize = 512;

/// How long after a burn, a delete or an expiry its bytes may stay in the database's files: the
/// WAL is checkpointed into the database file and truncated to nothing this long after the
/// first write since the last such checkpoint. (`secure_delete` has already zeroed the freed
/// content in the pages that the checkpoint writes back.)
pub const ERASE_WITHIN: Duration = Duration::from_secs(1);

/// When the checkpoint is started: early enough that it is done within [`ERASE_WITHIN`].
const CHECKPOINT_AFTER: Duration = Duration::from_millis(800);

/// How soon a checkpoint that a reader held back is tried again.
const CHECKPOINT_RETRY: Duration = Duration::from_millis(100);

/// What a caller asks.
pub(crate) enum Request {
    Insert {
        id: MessageId,
        record: Record,
    },
    Spend {
        id: MessageId,
        now: UnixMillis,
    },
    Record {
        id: MessageId,
        now: UnixMillis,
    },
    Delete {
        id: MessageId,
        digest: ReceiptDigest,
        now: UnixMillis,
    },
    Ping,
    /// Checkpoint and truncate the WAL now (a graceful stop), then answer.
    Checkpoint,
}

/// What the writer answers, one variant per request.
pub(crate) enum Answer {
    Insert(Inserted),
    Spend(Option<Viewed>),
    Record(Option<Record>),
    Delete(Option<DeleteOutcome>),
    Ping,
    Checkpoint,
    /// A create refused: the database holds `CRYPT_SQLITE_MAX_BYTES` already.
    Full,
}

pub(crate) struct Op {
    pub(crate) request: Request,
    pub(crate) reply: oneshot::Sender<Result<Answer, StoreError>>,
}

pub(crate) struct Writer {
    pub(crate) conn: Connection,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) observer: Option<Arc<dyn CommitObserver>>,
    /// The earliest `expires_at` in the table, when known: the timer's next deadline.
    pub(crate) next_expiry: Option<UnixMillis>,
    /// When the first write since the last truncating checkpoint was committed.
    pub(crate) dirty_since: Option<Instant>,
    /// `CRYPT_SQLITE_MAX_BYTES`: beyond it creates are refused (reads and deletes, which need
    /// little room, go on: SQLite's own hard cap sits above it).
    pub(crate) budget: Option<u64>,
}

fn unavailable(e: &rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Full,
        _ => StoreError::Unavailable(format!("sqlite: {e}")),
    }
}

impl Writer {
    /// Runs until every sender is gone, then checkpoints once more so nothing burned stays in
    /// the WAL.
    pub(crate) fn run(mut self, ops: Receiver<Op>) {
        let mut batch: Vec<Op> = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = match self.wait() {
                None => ops.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(wait) => ops.recv_timeout(wait),
            };
            match first {
                Ok(op) => batch.push(op),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while batch.len() < MAX_BATCH {
                match ops.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            if !self.run_batch(&mut batch) && !self.shared.healthy.load(Ordering::Relaxed) {
                // A database that fails every write (an I/O error) is not retried in a spin:
                // the expiry that is due would otherwise be tried again at once, forever. (A
                // full one is not held up: reads and deletes still work there.)
                std::thread::sleep(Duration::from_millis(50));
            }
            self.maybe_checkpoint();
        }
        self.checkpoint();
    }

    /// How long the next wait for an operation may last: until the next expiry or the next
    /// checkpoint that erasure needs, whichever is first; `None` when nothing is due.
    fn wait(&self) -> Option<Duration> {
        let now = self.clock.now();
        let expiry = self.next_expiry.map(|at| Duration::from_millis(at.saturating_sub(now)));
        let erase = self.dirty_since.map(|at| CHECKPOINT_AFTER.saturating_sub(at.elapsed()));
        match (expiry, erase) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies `batch` in one transaction and answers each operation after the commit. When the
    /// transaction fails (a full disk, an I/O error), it is rolled back whole and each operation
    /// is run again alone, so only the operations that cannot be done answer an error. False
    /// when nothing could be committed.
    fn run_batch(&mut self, batch: &mut Vec<Op>) -> bool {
        let now = self.clock.now();
        if batch.is_empty() && self.next_expiry.is_none_or(|at| at > now) {
            return true;
        }
        match self.transaction(batch, now) {
            Ok(answers) => {
                if batch.iter().any(|op| matches!(op.request, Request::Checkpoint)) {
                    self.checkpoint();
                }
                for (op, answer) in batch.drain(..).zip(answers) {
                    let _ = op.reply.send(Ok(answer));
                }
                true
            }
            Err(e) if batch.len() > 1 => {
                tracing::warn!(error = %e, ops = batch.len(), "SQLite batch failed; retrying its operations one by one");
                let mut any = false;
                for op in std::mem::take(batch) {
                    let mut one = vec![op];
                    any |= self.run_batch(&mut one);
                }
                any
            }
            Err(e) => {
                // What the failed transaction computed of the next expiry is not to be trusted:
                // look again at once.
                self.next_expiry = Some(now);
                if !matches!(e.sqlite_error_code(), Some(ErrorCode::DiskFull)) {
                    self.shared.healthy.store(false, Ordering::Relaxed);
                    tracing::error!(error = %e, "SQLite write failed");
                }
                for op in batch.drain(..) {
                    let _ = op.reply.send(Err(unavailable(&e)));
                }
                false
            }
        }
    }

    fn transaction(&mut self, batch: &[Op], now: UnixMillis) -> rusqlite::Result<Vec<Answer>> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let due = self.next_expiry.is_some_and(|at| at <= now);
        let mut expired_unread = 0;
        let mut wrote = false;
        if due {
            let mut gone = tx.prepare_cached("DELETE FROM messages WHERE expires_at <= ?1 RETURNING held")?;
            let held = gone.query_map([now as i64], |r| r.get::<_, i64>(0))?;
            for h in held {
                expired_unread += usize::from(h? != 0);
                wrote = true;
            }
        }
        let mut answers = Vec::with_capacity(batch.len());
        // After a failed write, a readiness probe writes (the schema version, unchanged), so that
        // the store is ready again only once a write commits.
        let probe = !self.shared.healthy.load(Ordering::Relaxed);
        for op in batch {
            let (answer, changed) = apply(&tx, &op.request, now, probe, self.budget)?;
            wrote |= changed;
            answers.push(answer);
        }
        // The next expiry, read inside the transaction: once the commit succeeds, nothing
        // after it may fail the batch (its operations would be run again, and a burned message
        // read twice).
        if due || wrote {
            self.next_expiry = tx
                .prepare_cached("SELECT min(expires_at) FROM messages")?
                .query_row([], |r| r.get::<_, Option<i64>>(0))?
                .map(|at| at.max(0) as u64);
        }
        let started = Instant::now();
        tx.commit()?;
        let nanos = started.elapsed().as_nanos() as u64;
        if wrote {
            self.dirty_since.get_or_insert_with(Instant::now);
        }
        if wrote {
            self.shared.healthy.store(true, Ordering::Relaxed);
        }
        if let Some(observer) = &self.observer {
            if wrote {
                observer.committed(batch.len(), nanos);
            }
            if expired_unread > 0 {
                observer.expired(expired_unread);
            }
        }
        Ok(answers)
    }

    /// Checkpoints when a write has waited [`CHECKPOINT_AFTER`] for it.
    fn maybe_checkpoint(&mut self) {
        if self.dirty_since.is_some_and(|at| at.elapsed() >= CHECKPOINT_AFTER) {
            self.checkpoint();
        }
    }

    /// Due again in [`CHECKPOINT_RETRY`].
    fn retry_checkpoint(&mut self) {
        self.dirty_since =
            Some(Instant::now().checked_sub(CHECKPOINT_AFTER - CHECKPOINT_RETRY).unwrap_or_else(Instant::now));
    }

    /// Copies the WAL into the database file and truncates it to nothing (`TRUNCATE`). A reader
    /// in the middle of a transaction (a backup) can hold it back: then it is tried again at the
    /// next deadline.
    pub(crate) fn checkpoint(&mut self) {
        let done = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
        match done {
            Ok(0) => self.dirty_since = None,
            Ok(_) => {
                tracing::debug!("WAL checkpoint held back by a reader; trying again");
                self.retry_checkpoint();
            }
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; trying again");
                self.retry_checkpoint();
            }
        }
    }
}

fn load(tx: &Connection, id: &MessageId) -> rusqlite::Result<Option<Record>> {
    let bytes: Option<Vec<u8>> = tx
        .prepare_cached("SELECT record FROM messages WHERE id = ?1")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?;
    match bytes.map(Record::decode) {
        None => Ok(None),
        Some(Ok(record)) => Ok(Some(record)),
        // A row this store did not write: damage, never a message. It answers as no record (its
        // id stays taken until its expiry, which deletes the row), and the rest of the batch and
        // the store's readiness are unharmed.
        Some(Err(e)) => {
            tracing::warn!(error = %e, "a SQLite row could not be decoded; treated as absent");
            Ok(None)
        }
    }
}

fn save(tx: &Connection, id: &MessageId, record: &Record) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE messages SET held = ?2, record = ?3 WHERE id = ?1")?.execute(params![
        id.as_str(),
        record.message.is_some(),
        record.encode()
    ])?;
    Ok(())
}

fn remove(tx: &Connection, id: &MessageId) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM messages WHERE id = ?1")?.execute([id.as_str()])?;
    Ok(())
}

/// One operation inside the batch's transaction: the answer, and whether it wrote.
/// Bytes the database's pages in use hold (the file's pages less its free list), this
/// transaction's included.
fn used_bytes(tx: &Connection) -> rusqlite::Result<u64> {
    tx.prepare_cached(
        "SELECT (SELECT page_count FROM pragma_page_count) - (SELECT freelist_count FROM pragma_freelist_count), \
         (SELECT page_size FROM pragma_page_size)",
    )?
    .query_row([], |r| Ok((r.get::<_, i64>(0)?.max(0) as u64) * r.get::<_, i64>(1)?.max(0) as u64))
}

fn apply(
    tx: &Connection,
    request: &Request,
    now: UnixMillis,
    probe: bool,
    budget: Option<u64>,
) -> rusqlite::Result<(Answer, bool)> {
    Ok(match request {
        Request::Insert { id, record } => {
            let held: Option<i64> = tx
                .prepare_cached("SELECT expires_at FROM messages WHERE id = ?1")?
                .query_row([id.as_str()], |r| r.get(0))
                .optional()?;
            let encoded = record.encode();
            if held.is_some_and(|at| at.max(0) as u64 > now) {
                (Answer::Insert(Inserted::Taken), false)
            } else if budget.is_some_and(|max| used_bytes(tx).is_ok_and(|used| used + encoded.len() as u64 > max)) {
                (Answer::Full, false)
            } else {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO messages (id, expires_at, held, record) VALUES (?1, ?2, 1, ?3)",
                )?
                .execute(params![
                    id.as_str(),
                    record.expires_at.min(i64::MAX as u64) as i64,
                    encoded
                ])?;
                (Answer::Insert(Inserted::Stored), true)
            }
        }
        Request::Spend { id, now } => match load(tx, id)? {
            None => (Answer::Spend(None), false),
            Some(r) if r.is_expired(*now) => {
                remove(tx, id)?;
                (Answer::Spend(None), true)
            }
            Some(mut r) => match r.spend_view(*now) {
                None => (Answer::Spend(None), false),
                Some(viewed) => {
                    save(tx, id, &r)?;
                    (Answer::Spend(Some(viewed)), true)
                }
            },
        },
        Request::Record { id, now } => {
            let record = load(tx, id)?.filter(|r| !r.is_expired(*now)).map(|mut r| {
                r.message = None;
                r
            });
            (Answer::Record(record), false)
        }
        Request::Delete { id, digest, now } => match load(tx, id)? {
            Some(mut r) if r.owned_by(digest, *now) => {
                let deletion = r.delete();
                let changed = deletion == crypt_domain::Deletion::Deleted;
                if changed {
                    save(tx, id, &r)?;
                }
                (Answer::Delete(Some(DeleteOutcome { deletion, receipt: r.receipt() })), changed)
            }
            _ => (Answer::Delete(None), false),
        },
        Request::Ping if probe => {
            tx.execute_batch(&format!("PRAGMA user_version = {}", crate::open::SCHEMA_VERSION))?;
            (Answer::Ping, true)
        }
        Request::Ping => {
            tx.prepare_cached("SELECT count(*) FROM sqlite_schema")?.query_row([], |r| r.get::<_, i64>(0))?;
            (Answer::Ping, false)
        }
        Request::Checkpoint => (Answer::Checkpoint, false),
    })
}
