use super::*;
use crypt_domain::testkit::ManualClock;
use crypt_domain::{Message, Policy};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn wall_clock_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A folder of its own under the system's temporary folder, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "crypt-sqlite-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("crypt.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store and the folder it lives in (dropped after the store).
struct Fixture {
    store: SqliteStore,
    _dir: TempDir,
}

impl std::ops::Deref for Fixture {
    type Target = SqliteStore;
    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

fn config(path: &Path) -> SqliteConfig {
    SqliteConfig { path: path.to_owned(), max_bytes: None }
}

fn wall() -> Arc<dyn Clock> {
    Arc::new(crate::tests::WallClock)
}

#[derive(Debug)]
struct WallClock;
impl Clock for WallClock {
    fn now(&self) -> UnixMillis {
        wall_clock_now()
    }
}

async fn fresh() -> Fixture {
    let dir = TempDir::new();
    let store = SqliteStore::open(&config(&dir.db()), wall(), None).unwrap();
    Fixture { store, _dir: dir }
}

crypt_domain::store_contract!(fresh(), wall_clock_now());

fn msg(text: &str, expires_at: u64) -> StoredMessage {
    StoredMessage {
        message: Message::new(text.into(), &Policy::default()).unwrap(),
        expires_at,
        views: 1,
        receipt: Some(ReceiptDigest::of("receipt")),
    }
}

fn id(s: &str) -> MessageId {
    MessageId::parse(s).unwrap()
}

fn ttl() -> Ttl {
    Ttl::default_for(&Policy::default())
}

fn far() -> u64 {
    wall_clock_now() + 3_600_000
}

#[tokio::test]
async fn what_was_answered_survives_closing_and_opening_again() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&config(&dir.db()), wall(), None).unwrap();
    store.insert_new(&id("kept1"), &msg("kept", far()), ttl()).await.unwrap();
    store.insert_new(&id("burnt"), &msg("burnt", far()), ttl()).await.unwrap();
    assert!(store.spend_view(&id("burnt"), wall_clock_now()).await.unwrap().is_some());
    store.close();
    let store = SqliteStore::open(&config(&dir.db()), wall(), None).unwrap();
    assert_eq!(store.records_at_open(), 2, "the message and the burned one's receipt");
    assert_eq!(store.spend_view(&id("burnt"), wall_clock_now()).await.unwrap(), None, "a burn stays burned");
    let kept = store.spend_view(&id("kept1"), wall_clock_now()).await.unwrap().unwrap();
    assert_eq!(kept.message.as_text().unwrap(), "kept");
}

#[tokio::test]
async fn a_second_process_is_refused_while_the_first_holds_the_file() {
    let dir = TempDir::new();
    let first = SqliteStore::open(&config(&dir.db()), wall(), None).unwrap();
    let second = SqliteStore::open(&config(&dir.db()), wall(), None).unwrap_err();
    assert!(second.to_string().contains("in use by another crypt-server process"), "{second}");
    assert!(second.to_string().starts_with("CRYPT_SQLITE_PATH="), "{second}");
    first.close();
    SqliteStore::open(&config(&dir.db()), wall(), None).expect("free again once the first closed");
}

#[test]
fn files_that_are_not_crypts_are_refused_and_left_as_they_are() {
    let dir = TempDir::new();
    let refuse = |path: &Path| SqliteStore::open(&config(path), wall(), None).unwrap_err().to_string();

    let text = dir.0.join("notes.txt");
    std::fs::write(&text, "not a database, and precious").unwrap();
    assert!(refuse(&text).contains("is not a SQLite database"), "{}", refuse(&text));
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "not a database, and precious");

    let other = dir.0.join("other.db");
    {
        let c = rusqlite::Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE people (name TEXT); INSERT INTO people VALUES ('ada');").unwrap();
    }
    let before = std::fs::read(&other).unwrap();
    assert!(refuse(&other).contains("another application"), "{}", refuse(&other));
    assert_eq!(std::fs::read(&other).unwrap(), before);

    let newer = dir.0.join("newer.db");
    {
        let c = rusqlite::Connection::open(&newer).unwrap();
        c.execute_batch(&format!(
            "CREATE TABLE messages (id TEXT); PRAGMA application_id = {}; PRAGMA user_version = 99;",
            open::APPLICATION_ID
        ))
        .unwrap();
    }
    assert!(refuse(&newer).contains("newer crypt (schema 99"), "{}", refuse(&newer));

    let missing = dir.0.join("no-such-folder").join("crypt.db");
    assert!(refuse(&missing).contains("does not exist"), "{}", refuse(&missing));
    assert!(!missing.parent().unwrap().exists(), "the folder is not created");

    let read_only = dir.0.join("ro.db");
    drop(SqliteStore::open(&config(&read_only), wall(), None).unwrap());
    std::thread::sleep(Duration::from_millis(100));
    let mut perms = std::fs::metadata(&read_only).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&read_only, perms).unwrap();
    assert!(refuse(&read_only).contains("is read-only"), "{}", refuse(&read_only));

    for message in [refuse(&text), refuse(&other), refuse(&newer), refuse(&missing), refuse(&read_only)] {
        assert!(message.starts_with("CRYPT_SQLITE_PATH="), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
}

#[tokio::test]
async fn the_schema_and_the_promises_are_set() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&config(&dir.db()), wall(), None).unwrap();
    store.close();
    let c = rusqlite::Connection::open(dir.db()).unwrap();
    let get = |sql: &str| c.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0)).unwrap();
    use rusqlite::types::Value;
    assert_eq!(get("PRAGMA journal_mode"), Value::Text("wal".into()));
    assert_eq!(get("PRAGMA application_id"), Value::Integer(open::APPLICATION_ID.into()));
    assert_eq!(get("PRAGMA user_version"), Value::Integer(open::SCHEMA_VERSION.into()));
    assert_eq!(get("SELECT count(*) FROM sqlite_schema WHERE name = 'messages_by_expiry'"), Value::Integer(1));
}

#[tokio::test]
async fn a_full_database_refuses_creates_and_keeps_what_it_has() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&SqliteConfig { path: dir.db(), max_bytes: Some(256 * 1024) }, wall(), None).unwrap();
    let text = "x".repeat(20_000);
    // A message of three views, stored first: its views must still be spent once the rest is full.
    let views = StoredMessage { views: 3, ..msg("for three", far()) };
    store.insert_new(&id("three"), &views, ttl()).await.unwrap();
    let mut stored = Vec::new();
    let mut full = false;
    for n in 0..100 {
        let key = id(&format!("full{n:03}"));
        match store.insert_new(&key, &msg(&text, far()), ttl()).await {
            Ok(Inserted::Stored) => stored.push(key),
            Err(StoreError::Full) => {
                full = true;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(full, "256 KiB cannot hold 100 messages of 20 KB");
    assert!(!stored.is_empty());
    store.ping().await.expect("a full database is still ready");
    for left in [2, 1, 0] {
        let read = store.spend_view(&id("three"), wall_clock_now()).await.expect("a full database still serves views");
        assert_eq!(read.unwrap().views_left, left);
    }
    for key in &stored {
        let read = store.spend_view(key, wall_clock_now()).await.unwrap().expect("nothing stored is lost");
        assert_eq!(read.message.as_text().unwrap(), text);
    }
}

#[derive(Default)]
struct Seen {
    commits: AtomicUsize,
    ops: AtomicUsize,
    expired: AtomicUsize,
}

impl CommitObserver for Seen {
    fn committed(&self, batch: usize, nanos: u64) {
        assert!(nanos > 0);
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.ops.fetch_add(batch, Ordering::SeqCst);
    }
    fn expired(&self, unread: usize) {
        self.expired.fetch_add(unread, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits() {
    let dir = TempDir::new();
    let seen = Arc::new(Seen::default());
    let store = Arc::new(SqliteStore::open(&config(&dir.db()), wall(), Some(seen.clone())).unwrap());
    let creates = (0..200).map(|n| {
        let store = store.clone();
        async move { store.insert_new(&id(&format!("grp{n:03}")), &msg("m", far()), ttl()).await.unwrap() }
    });
    let answers = futures::future::join_all(creates).await;
    assert!(answers.iter().all(|a| *a == Inserted::Stored));
    let (commits, ops) = (seen.commits.load(Ordering::SeqCst), seen.ops.load(Ordering::SeqCst));
    assert_eq!(ops, 200, "every create was in a commit");
    assert!(commits < 200, "200 concurrent creates took {commits} commits: no grouping");
}

/// Every byte of every file in `dir`, searched for `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            found.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    found
}

#[tokio::test]
async fn burned_deleted_and_expired_text_leaves_every_file() {
    let dir = TempDir::new();
    let seen = Arc::new(Seen::default());
    let store = SqliteStore::open(&config(&dir.db()), wall(), Some(seen.clone())).unwrap();
    let now = wall_clock_now();
    let canary = |what: &str| format!("{what}-canary-0d9c27f1e6a4b35{}", "z".repeat(40));
    // Long ones too, which live on overflow pages.
    let (burned, deleted, expired, live) = (canary("burned"), canary("deleted"), canary("expired"), canary("live"));
    let (long_burned, long_live) = (format!("{}{}", canary("long-burned"), "b".repeat(30_000)), canary("long-live"));
    store.insert_new(&id("burnd"), &msg(&burned, now + 3_600_000), ttl()).await.unwrap();
    store.insert_new(&id("delet"), &msg(&deleted, now + 3_600_000), ttl()).await.unwrap();
    store.insert_new(&id("expir"), &msg(&expired, now + 300), ttl()).await.unwrap();
    store.insert_new(&id("lived"), &msg(&live, now + 3_600_000), ttl()).await.unwrap();
    store.insert_new(&id("longb"), &msg(&long_burned, now + 3_600_000), ttl()).await.unwrap();
    store
        .insert_new(&id("longl"), &msg(&format!("{long_live}{}", "l".repeat(30_000)), now + 3_600_000), ttl())
        .await
        .unwrap();
    for held in [&burned, &deleted, &expired, &live] {
        assert!(!files_holding(&dir.0, held).is_empty(), "the search finds what is stored");
    }
    assert!(store.spend_view(&id("burnd"), wall_clock_now()).await.unwrap().is_some());
    assert!(store.spend_view(&id("longb"), wall_clock_now()).await.unwrap().is_some());
    let outcome = store.delete(&id("delet"), &ReceiptDigest::of("receipt"), wall_clock_now()).await.unwrap();
    assert_eq!(outcome.unwrap().deletion, crypt_domain::Deletion::Deleted);
    // The expiry timer and the erasure deadline, with room for a slow machine.
    tokio::time::sleep(ERASE_WITHIN + Duration::from_millis(700)).await;
    assert_eq!(seen.expired.load(Ordering::SeqCst), 1, "the expired message was deleted on its timer");
    for gone in [&burned, &deleted, &expired, &long_burned[..60].to_owned()] {
        assert_eq!(files_holding(&dir.0, gone), Vec::<String>::new(), "{}", &gone[..20]);
    }
    assert!(!files_holding(&dir.0, &live).is_empty(), "what is live is still there");
    assert!(!files_holding(&dir.0, &long_live).is_empty(), "what is live is still there");
}

#[tokio::test]
async fn expired_records_go_on_time_without_a_request() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&config(&dir.db()), wall(), None).unwrap();
    let now = wall_clock_now();
    store.insert_new(&id("soon1"), &msg("a", now + 200), ttl()).await.unwrap();
    store.insert_new(&id("later"), &msg("b", now + 3_600_000), ttl()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let c = rusqlite::Connection::open(dir.db()).unwrap();
    let left: i64 = c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 1, "the expired row was deleted with no request to prompt it");
}

#[tokio::test]
async fn what_expired_while_closed_is_deleted_at_open() {
    let dir = TempDir::new();
    let clock = Arc::new(ManualClock::new(1_000));
    let store = SqliteStore::open(&config(&dir.db()), clock.clone(), None).unwrap();
    store.insert_new(&id("short"), &msg("a", 2_000), ttl()).await.unwrap();
    store.insert_new(&id("longr"), &msg("b", 9_000), ttl()).await.unwrap();
    store.close();
    clock.advance(5_000);
    let store = SqliteStore::open(&config(&dir.db()), clock, None).unwrap();
    assert_eq!(store.records_at_open(), 1);
}

#[tokio::test]
async fn a_backup_holds_what_is_live() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&config(&dir.db()), wall(), None).unwrap();
    store.insert_new(&id("live1"), &msg("live one", far()), ttl()).await.unwrap();
    store.insert_new(&id("burn1"), &msg("burned one", far()), ttl()).await.unwrap();
    store.spend_view(&id("burn1"), wall_clock_now()).await.unwrap();
    let to = dir.0.join("backup.db");
    backup(&dir.db(), &to).expect("a backup while the store runs");
    assert!(backup(&dir.db(), &to).unwrap_err().to_string().contains("exists already"));
    store.close();
    let copy = dir.0.join("restored");
    std::fs::create_dir(&copy).unwrap();
    std::fs::rename(&to, copy.join("crypt.db")).unwrap();
    let restored = SqliteStore::open(&config(&copy.join("crypt.db")), wall(), None).unwrap();
    assert_eq!(
        restored.spend_view(&id("live1"), wall_clock_now()).await.unwrap().unwrap().message.as_text().unwrap(),
        "live one"
    );
    assert_eq!(restored.spend_view(&id("burn1"), wall_clock_now()).await.unwrap(), None);
}

#[tokio::test]
async fn a_store_whose_writer_is_gone_answers_unavailable() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&config(&dir.db()), wall(), None).unwrap();
    // Stop the writer while keeping the handle: what a crashed writer thread looks like.
    let (dead, _) = std::sync::mpsc::channel();
    let store = SqliteStore { ops: dead, ..store };
    assert!(matches!(store.ping().await, Err(StoreError::Unavailable(_))));
    assert!(matches!(store.spend_view(&id("aaaaa"), wall_clock_now()).await, Err(StoreError::Unavailable(_))));
}

#[tokio::test]
async fn a_damaged_row_reads_as_absent_and_harms_nothing_else() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&config(&dir.db()), wall(), None).unwrap();
    store.insert_new(&id("good1"), &msg("good", far()), ttl()).await.unwrap();
    {
        let c = rusqlite::Connection::open(dir.db()).unwrap();
        c.execute(
            "INSERT INTO messages (id, expires_at, held, record) VALUES ('bad11', ?1, 1, x'02ff')",
            [far() as i64],
        )
        .unwrap();
    }
    assert_eq!(store.spend_view(&id("bad11"), wall_clock_now()).await.unwrap(), None);
    assert_eq!(store.insert_new(&id("bad11"), &msg("x", far()), ttl()).await, Ok(Inserted::Taken), "still taken");
    store.ping().await.expect("still ready");
    assert_eq!(
        store.spend_view(&id("good1"), wall_clock_now()).await.unwrap().unwrap().message.as_text().unwrap(),
        "good"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_second_open_through_a_symlink_is_refused_too() {
    let dir = TempDir::new();
    let first = SqliteStore::open(&config(&dir.db()), wall(), None).unwrap();
    let alias = dir.0.join("alias.db");
    std::os::unix::fs::symlink(dir.db(), &alias).unwrap();
    let second = SqliteStore::open(&config(&alias), wall(), None).unwrap_err();
    assert!(second.to_string().contains("in use by another crypt-server process"), "{second}");
    first.close();
}

#[tokio::test]
async fn flush_erases_at_once() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&config(&dir.db()), wall(), None).unwrap();
    let text = "flush-canary-77e1a09c3b5d";
    store.insert_new(&id("flush"), &msg(text, far()), ttl()).await.unwrap();
    store.spend_view(&id("flush"), wall_clock_now()).await.unwrap().unwrap();
    store.flush().await.unwrap();
    assert_eq!(files_holding(&dir.0, text), Vec::<String>::new(), "erased before the 1 s deadline");
}
