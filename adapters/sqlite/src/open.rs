//! Opening a database file: refuse anything that is not crypt's (never overwrite it), refuse a
//! second process, set the promises (WAL, `synchronous=FULL`, `secure_delete`), and bring the
//! schema up to this version.

use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// `PRAGMA application_id` of a crypt database ("cryp" in ASCII): how a file is known to be
/// crypt's before anything is written to it.
pub(crate) const APPLICATION_ID: i32 = 0x6372_7970;

/// The schema this build writes (`PRAGMA user_version`). [`MIGRATIONS`]`[n]` takes a database
/// from version `n` to `n + 1`; a database at a higher version than this was written by a newer
/// crypt and is refused, never changed.
pub(crate) const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Each step, in one transaction with the `user_version` it reaches. Append only: a step once
/// released is never edited, since databases in the field went through it.
const MIGRATIONS: &[&str] = &[
    // 1: one row per id. `record` is `crypt_domain::Record::encode` (the message while a view is
    // left, then the receipt alone); `held` says whether the message is still in it, so an
    // expiry can count the messages that died unread without decoding; `expires_at` (Unix ms)
    // is when the row, receipt included, is deleted, found through its index.
    "CREATE TABLE messages (
         id TEXT PRIMARY KEY NOT NULL,
         expires_at INTEGER NOT NULL,
         held INTEGER NOT NULL,
         record BLOB NOT NULL
     );
     CREATE INDEX messages_by_expiry ON messages (expires_at);",
];

/// Why a database cannot be used. Its message names `CRYPT_SQLITE_PATH` and the file, on one
/// line: start-up stops with it (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CRYPT_SQLITE_PATH={}: {why}", path.display())]
pub struct OpenError {
    /// The database file.
    pub path: PathBuf,
    /// What is wrong, and what to do.
    pub why: String,
}

impl OpenError {
    fn new(path: &Path, why: impl Into<String>) -> Self {
        Self { path: path.to_owned(), why: why.into() }
    }
}

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The lock file beside the database: held (an advisory `flock`) for as long as one process uses
/// the database, so a second process is refused at start-up instead of sharing it. Dropping it
/// releases the lock; the file itself stays (it holds nothing).
#[derive(Debug)]
pub(crate) struct ProcessLock {
    _file: File,
}

/// The lock file's path: the database's with `-lock`, beside SQLite's own `-wal` and `-shm`.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-lock");
    PathBuf::from(name)
}

fn lock(path: &Path) -> Result<ProcessLock, OpenError> {
    // By the file's real path, so that a symlink or another spelling of it finds the same lock.
    let real = match (path.parent().filter(|p| !p.as_os_str().is_empty()), path.file_name()) {
        (Some(folder), Some(name)) => folder.canonicalize().map(|f| f.join(name)).unwrap_or_else(|_| path.to_owned()),
        (None, Some(name)) => std::env::current_dir().map(|d| d.join(name)).unwrap_or_else(|_| path.to_owned()),
        _ => path.to_owned(),
    };
    let real = std::fs::canonicalize(&real).unwrap_or(real);
    let at = lock_path(&real);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&at)
        .map_err(|e| OpenError::new(path, format!("cannot create the lock file {}: {e}", at.display())))?;
    #[cfg(unix)]
    {
        use rustix::fs::{flock, FlockOperation};
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(OpenError::new(
                    path,
                    "the database is in use by another crypt-server process (one process per database file; \
                     for more than one, use Redis)",
                ))
            }
            Err(e) => return Err(OpenError::new(path, format!("cannot lock {}: {e}", at.display()))),
        }
    }
    Ok(ProcessLock { _file: file })
}

/// Refuses a path whose folder is missing, a file that is not a SQLite database, and one whose
/// permissions say read-only, before SQLite opens (and so could write) anything.
fn check_file(path: &Path) -> Result<(), OpenError> {
    if path.as_os_str().is_empty() {
        return Err(OpenError::new(path, "is empty; name the database file, e.g. /var/lib/crypt/crypt.db"));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(OpenError::new(
            path,
            format!("its folder {} does not exist (crypt creates the file, not the folder)", folder.display()),
        ));
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(OpenError::new(path, format!("cannot be read: {e}"))),
    };
    if !meta.is_file() {
        return Err(OpenError::new(path, "is not a file"));
    }
    if meta.permissions().readonly() {
        return Err(OpenError::new(path, "is read-only; crypt must write to its database (a burn is a write)"));
    }
    if meta.len() == 0 {
        return Ok(());
    }
    let mut head = [0u8; 16];
    let read = File::open(path).and_then(|mut f| f.read_exact(&mut head));
    match read {
        Ok(()) if &head == SQLITE_HEADER => Ok(()),
        Ok(()) | Err(_) => Err(OpenError::new(path, "is not a SQLite database; crypt leaves it as it is")),
    }
}

/// Opens (creating when absent) and prepares the database at `path` for this process alone.
pub(crate) fn open(path: &Path, max_bytes: Option<u64>) -> Result<(Connection, ProcessLock), OpenError> {
    check_file(path)?;
    let lock = lock(path)?;
    // Checked again under the lock: another process may have been creating it.
    check_file(path)?;
    let fail = |what: &str, e: rusqlite::Error| OpenError::new(path, describe(what, &e));
    // Whose database it is, asked on a read-only connection: a read-write one could write to
    // a file that turns out not to be crypt's (roll back its journal, checkpoint its WAL).
    let identity = "SELECT (SELECT application_id FROM pragma_application_id), \
                    (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_schema)";
    let existing = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
    let (app, version, tables): (i32, i32, i64) = if existing {
        let ro = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| fail("cannot be opened", e))?;
        ro.query_row(identity, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(|e| fail("cannot be read", e))?
    } else {
        (0, 0, 0)
    };
    let fresh = app == 0 && version == 0 && tables == 0;
    if !fresh && app != APPLICATION_ID {
        return Err(OpenError::new(
            path,
            format!("is a SQLite database of another application (application_id {app:#x}); crypt leaves it as it is"),
        ));
    }
    if version > SCHEMA_VERSION {
        return Err(OpenError::new(
            path,
            format!(
                "was written by a newer crypt (schema {version}; this one knows up to {SCHEMA_VERSION}): \
                 run that version, or restore a backup"
            ),
        ));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| fail("cannot be opened", e))?;
    if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
        return Err(OpenError::new(path, "is read-only; crypt must write to its database (a burn is a write)"));
    }
    // WAL: a commit appends to the log and syncs it once; readers (a backup) never block the
    // writer. FULL: the log is synced at every commit, so an answered write survives a power
    // cut. secure_delete: freed content is overwritten with zeros, so a burned message's
    // bytes leave the database file when its page is written back.
    let mode: String =
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| fail("cannot use WAL", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::new(path, format!("cannot use WAL (SQLite kept journal_mode {mode})")));
    }
    let settings = "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; PRAGMA busy_timeout = 0; \
                    PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;";
    conn.execute_batch(settings).map_err(|e| fail("cannot be configured", e))?;
    let secure: i64 = conn.query_row("PRAGMA secure_delete", [], |r| r.get(0)).map_err(|e| fail("secure_delete", e))?;
    if secure != 1 {
        return Err(OpenError::new(path, "SQLite refused secure_delete"));
    }
    if let Some(bytes) = max_bytes {
        let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(|e| fail("page_size", e))?;
        // Room above the budget that only creates respect: a spent view that is not the last
        // rewrites its row 8 bytes longer, and must not fail for it.
        let hard = bytes.saturating_add((bytes / 8).max(1 << 20));
        let pages = (hard / page.max(512) as u64).max(16);
        conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .map_err(|e| fail("max_page_count", e))?;
    }
    migrate(&conn, version).map_err(|e| fail("cannot be brought to this crypt's schema", e))?;
    Ok((conn, lock))
}

fn migrate(conn: &Connection, from: i32) -> rusqlite::Result<()> {
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        let to = step as i32 + 1;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {to}; COMMIT;"
        ))
        .inspect_err(|_| {
            let _ = conn.execute_batch("ROLLBACK");
        })?;
        tracing::info!(schema = to, "SQLite database migrated");
    }
    Ok(())
}

/// SQLite's reason, with what it usually means for an operator.
fn describe(what: &str, e: &rusqlite::Error) -> String {
    let hint = match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => " (the file is not a SQLite database, or is damaged)",
        Some(ErrorCode::CannotOpen) => " (does the folder exist, and may this user write in it?)",
        Some(ErrorCode::ReadOnly) | Some(ErrorCode::PermissionDenied) => {
            " (may this user write the file and its folder?)"
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => " (another process holds it)",
        Some(ErrorCode::DiskFull) => " (the disk is full)",
        _ => "",
    };
    format!("{what}: {e}{hint}")
}

/// Writes a consistent copy of the live database at `path` to `to` (`VACUUM INTO`), while a
/// server may be running on it: only what is live, compacted. The copy holds every live
/// secret: keep it as carefully as the database.
///
/// # Errors
/// The database cannot be read, or `to` exists or cannot be written.
pub fn backup(path: &Path, to: &Path) -> Result<(), OpenError> {
    check_file(path)?;
    if !path.exists() {
        return Err(OpenError::new(path, "does not exist"));
    }
    if to.exists() {
        return Err(OpenError::new(path, format!("the backup's file {} exists already", to.display())));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let fail = |what: &str, e: rusqlite::Error| OpenError::new(path, describe(what, &e));
    let conn = Connection::open_with_flags(path, flags).map_err(|e| fail("cannot be opened", e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| fail("busy_timeout", e))?;
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(|e| fail("cannot be read", e))?;
    if app != APPLICATION_ID {
        return Err(OpenError::new(path, "is not a crypt database"));
    }
    let to = to.to_str().ok_or_else(|| OpenError::new(path, "the backup's path is not UTF-8"))?;
    conn.execute("VACUUM INTO ?1", [to]).map_err(|e| fail("cannot be copied", e))?;
    Ok(())
}
