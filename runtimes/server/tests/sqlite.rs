//! `crypt-server` on SQLite as an operator runs it: start-up refusals, a full database, erasure,
//! a restart with many messages, and crashes (SIGKILL) under load.

mod common;
use common::{client, create, read, Crypt};
use crypt_conformance::launch::ScratchDir;
use futures::StreamExt;
use rand::Rng;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn on(db: &Path, extra: &[(&str, &str)]) -> Crypt {
    let path = db.display().to_string();
    let mut env = vec![("CRYPT_STORE", "sqlite"), ("CRYPT_SQLITE_PATH", path.as_str())];
    env.extend_from_slice(extra);
    Crypt::start_with(&env)
}

/// Runs the binary on `db` expecting it to refuse: its exit code and stderr.
fn refused(db: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_crypt-server"))
        .env_clear()
        .env("CRYPT_LISTEN", "127.0.0.1:0")
        .env("CRYPT_STORE", "sqlite")
        .env("CRYPT_SQLITE_PATH", db)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn start_up_refuses_what_it_cannot_use_with_one_line_naming_the_setting() {
    let dir = ScratchDir::new("sqlite-refusals");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "someone's notes").unwrap();
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other).unwrap().execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
    let newer = dir.path().join("newer.db");
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("CREATE TABLE messages (id); PRAGMA application_id = 1668446576; PRAGMA user_version = 7;")
        .unwrap();
    let read_only = dir.path().join("ro.db");
    std::fs::write(&read_only, "").unwrap();
    let mut perms = std::fs::metadata(&read_only).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&read_only, perms).unwrap();
    let cases = [
        (dir.path().join("missing").join("crypt.db"), "does not exist"),
        (text.clone(), "is not a SQLite database"),
        (other.clone(), "another application"),
        (newer, "newer crypt"),
        (read_only, "is read-only"),
    ];
    for (db, says) in cases {
        let (code, stderr) = refused(&db);
        assert_eq!(code, Some(2), "{}: {stderr}", db.display());
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.contains("CRYPT_SQLITE_PATH=") && last.contains(says), "{}: {stderr}", db.display());
        assert_eq!(stderr.lines().filter(|l| l.contains("CRYPT_SQLITE_PATH")).count(), 1, "{stderr}");
    }
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "someone's notes", "never overwritten");
    let n: i64 = rusqlite::Connection::open(&other).unwrap().query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1, "another application's database is left as it was");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_file_is_refused() {
    let dir = ScratchDir::new("sqlite-second");
    let db = dir.path().join("crypt.db");
    let first = on(&db, &[]);
    let (code, stderr) = refused(&db);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("CRYPT_SQLITE_PATH=") && stderr.contains("in use by another crypt-server process"),
        "{stderr}"
    );
    // The first is unharmed.
    let http = client();
    let (status, created) = create(&http, &first.base, "still mine").await;
    assert_eq!(status, 200);
    assert_eq!(read(&http, &first.base, created["id"].as_str().unwrap()).await.1["message"], "still mine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_answers_507_and_loses_nothing() {
    let dir = ScratchDir::new("sqlite-full");
    let crypt = on(&dir.path().join("crypt.db"), &[("CRYPT_SQLITE_MAX_BYTES", "262144")]);
    let http = client();
    let text = "f".repeat(20_000);
    let mut ids = Vec::new();
    let full = loop {
        let (status, body) = create(&http, &crypt.base, &text).await;
        if status != 200 {
            break (status, body);
        }
        ids.push(body["id"].as_str().unwrap().to_owned());
        assert!(ids.len() < 100, "256 KiB never filled");
    };
    assert_eq!(full, (507, json!({"error": "Storage full"})));
    let ready = http.get(format!("{}/readyz", crypt.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200, "full is not unready: reads still work");
    for id in &ids {
        assert_eq!(read(&http, &crypt.base, id).await.1["message"], text.as_str(), "a stored message was lost");
    }
}

/// Every file in `dir` that holds `needle`.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burned_and_expired_text_is_in_no_file_of_the_folder() {
    let dir = ScratchDir::new("sqlite-erased");
    let crypt = on(&dir.path().join("crypt.db"), &[("CRYPT_MIN_TTL_SECS", "1")]);
    let http = client();
    let post = |text: String, ttl: u64| {
        let http = http.clone();
        let url = format!("{}/", crypt.base);
        async move {
            let r = http.post(url).body(json!({"message": text, "ttl": ttl}).to_string()).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
        }
    };
    let (burned, expired, live) =
        ("burned-canary-5b1e0c3f9a7d", "expired-canary-4c2d1b0a9e8f", "live-canary-3a9f8e7d6c5b");
    let burned_id = post(burned.repeat(4), 3600).await;
    post(expired.repeat(4), 1).await;
    post(live.repeat(4), 3600).await;
    assert!(!files_holding(dir.path(), burned).is_empty(), "the search finds stored text");
    assert_eq!(read(&http, &crypt.base, &burned_id).await.0, 200);
    // The expiry (1 s) and the erasure bound after it (1 s), with room for a slow machine.
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    for gone in [burned, expired] {
        assert_eq!(files_holding(dir.path(), gone), Vec::<String>::new(), "{gone}");
    }
    assert!(!files_holding(dir.path(), live).is_empty(), "live text is still there");
    let metrics = http.get(format!("{}/metrics", crypt.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("crypt_messages_expired_total 1"), "{metrics}");
    assert!(metrics.contains("crypt_sqlite_commit_operations_count"), "{metrics}");
    assert!(metrics.contains("crypt_sqlite_commit_duration_seconds_count"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_erases_what_was_just_burned() {
    let dir = ScratchDir::new("sqlite-stop");
    let crypt = on(&dir.path().join("crypt.db"), &[]);
    let http = client();
    let text = "stop-canary-9d0e4f1a2b3c";
    let (_, created) = create(&http, &crypt.base, text).await;
    assert_eq!(read(&http, &crypt.base, created["id"].as_str().unwrap()).await.0, 200);
    let started = Instant::now();
    assert_eq!(crypt.terminate(), Some(0));
    let took = started.elapsed();
    assert_eq!(files_holding(dir.path(), text), Vec::<String>::new(), "stopped in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_100000_live_messages_is_ready_at_once_and_keeps_them_all() {
    let dir = ScratchDir::new("sqlite-restart");
    let db = dir.path().join("crypt.db");
    const N: usize = 100_000;
    {
        // Filled through the store itself (the server's own writer, 512 to a commit): through
        // HTTP this would take minutes of the suite.
        let clock: Arc<dyn crypt_domain::Clock> = Arc::new(crypt_server::SystemClock);
        let config = crypt_sqlite::SqliteConfig { path: db.clone(), max_bytes: None };
        let store = Arc::new(crypt_sqlite::SqliteStore::open(&config, clock.clone(), None).unwrap());
        let policy = crypt_domain::Policy::default();
        let expires_at = clock.now() + 3_600_000;
        let ttl = crypt_domain::Ttl::default_for(&policy);
        futures::stream::iter(0..N)
            .map(|n| {
                let store = store.clone();
                let message = crypt_domain::Message::new(format!("message number {n}"), &policy).unwrap();
                async move {
                    use crypt_domain::MessageStore;
                    let id = crypt_domain::MessageId::parse(&format!("{n:05}")).unwrap();
                    let stored = crypt_domain::StoredMessage { message, expires_at, views: 1, receipt: None };
                    store.insert_new(&id, &stored, ttl).await.unwrap()
                }
            })
            .buffer_unordered(1024)
            .for_each(|_| async {})
            .await;
        Arc::into_inner(store).unwrap().close();
    }
    let bytes = std::fs::metadata(&db).unwrap().len();
    let started = Instant::now();
    let crypt = on(&db, &[]);
    let http = client();
    let ready = loop {
        if http.get(format!("{}/readyz", crypt.base)).send().await.is_ok_and(|r| r.status() == 200) {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never ready");
    };
    println!(
        "restart with {N} live messages ({} MB, {} bytes a message): ready in {} ms",
        bytes / 1_000_000,
        bytes / N as u64,
        ready.as_millis()
    );
    assert!(crypt.log_text().contains(&format!("records={N}")), "{}", crypt.log_text());
    // 200 distinct ones (a read burns: the same one twice would be a 404).
    for n in rand::seq::index::sample(&mut rand::rng(), N, 200) {
        let (status, body) = read(&http, &crypt.base, &format!("{n:05}")).await;
        assert_eq!((status, body["message"].as_str()), (200, Some(format!("message number {n}").as_str())));
    }
}

/// What the load generator knows of one message.
#[derive(Debug, Clone)]
struct Sent {
    id: String,
    receipt: String,
    views: u32,
    /// Reads sent, answered or not (a read whose answer was lost to the crash may have spent a
    /// view).
    reads_sent: u32,
    /// Reads answered 200.
    reads_answered: u32,
    /// The round that created it.
    round: usize,
}

#[derive(Debug, Default)]
struct Tally {
    creates: usize,
    reads: usize,
    unanswered: usize,
    checked: usize,
}

/// One round of load: `workers` clients creating and reading until the server dies.
async fn load(base: String, round: usize, recent: Arc<Mutex<Vec<Sent>>>, tally: Arc<Mutex<Tally>>) {
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().unwrap();
    loop {
        let pick = {
            let mut rng = rand::rng();
            let pool = recent.lock().unwrap();
            let readable: Vec<usize> = (0..pool.len()).filter(|&i| pool[i].reads_sent < pool[i].views).collect();
            (rng.random_bool(0.45) && !readable.is_empty()).then(|| readable[rng.random_range(0..readable.len())])
        };
        match pick {
            Some(i) => {
                let id = {
                    let mut pool = recent.lock().unwrap();
                    pool[i].reads_sent += 1;
                    pool[i].id.clone()
                };
                let Ok(r) = http.get(format!("{base}/{id}")).send().await else {
                    tally.lock().unwrap().unanswered += 1;
                    return;
                };
                match r.status().as_u16() {
                    200 => {
                        recent.lock().unwrap()[i].reads_answered += 1;
                        tally.lock().unwrap().reads += 1;
                    }
                    // Only when more reads were sent than it had views. Counted when the answer
                    // comes, not when this read was sent: a read sent after it may have won first.
                    404 => {
                        let m = recent.lock().unwrap()[i].clone();
                        assert!(m.reads_sent > m.views, "{m:?}: a stored message with a view left answered 404: lost");
                    }
                    other => panic!("read answered {other}"),
                }
            }
            None => {
                let views = rand::rng().random_range(1..=2u32);
                let body = json!({"message": "crash-test", "views": views}).to_string();
                let Ok(r) = http.post(format!("{base}/")).body(body).send().await else {
                    tally.lock().unwrap().unanswered += 1;
                    return;
                };
                assert_eq!(r.status(), 200);
                let Ok(created) = r.json::<Value>().await else { return };
                let sent = Sent {
                    id: created["id"].as_str().unwrap().to_owned(),
                    receipt: created["receipt"].as_str().unwrap().to_owned(),
                    views,
                    reads_sent: 0,
                    reads_answered: 0,
                    round,
                };
                recent.lock().unwrap().push(sent);
                tally.lock().unwrap().creates += 1;
            }
        }
    }
}

/// After a restart: every message answered as created is there with the views the answers
/// allow, and every view answered stays spent.
async fn check(base: &str, messages: Vec<Sent>) -> usize {
    let http = client();
    let checked = futures::stream::iter(messages)
        .map(|m| {
            let http = http.clone();
            let base = base.to_owned();
            async move {
                let r = http.get(format!("{base}/{}/receipt", m.id)).bearer_auth(&m.receipt).send().await.unwrap();
                assert_eq!(r.status(), 200, "{m:?}: an answered create is gone after the crash");
                let receipt: Value = r.json().await.unwrap();
                let left = receipt["views_left"].as_u64().unwrap() as u32;
                assert!(left <= m.views - m.reads_answered, "{m:?}: a spent view came back: {receipt}");
                assert!(left >= m.views.saturating_sub(m.reads_sent), "{m:?}: a view unsent is spent: {receipt}");
                if m.reads_answered == m.views {
                    assert_eq!(read(&http, &base, &m.id).await.0, 404, "{m:?}: a burned message came back");
                }
            }
        })
        .buffer_unordered(16)
        .count()
        .await;
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_under_load_fifty_times_nothing_answered_is_lost_or_comes_back() {
    let dir = ScratchDir::new("sqlite-crash");
    let db = dir.path().join("crypt.db");
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut previous: Vec<Sent> = Vec::new();
    let mut everything: Vec<Sent> = Vec::new();
    const ROUNDS: usize = 50;
    for round in 0..ROUNDS {
        let crypt = on(&db, &[]);
        let checked = check(&crypt.base, previous.clone()).await;
        tally.lock().unwrap().checked += checked;
        // Reads go to this round's messages and the last round's.
        previous.retain(|m| m.round + 1 == round);
        let recent = Arc::new(Mutex::new(std::mem::take(&mut previous)));
        let workers: Vec<_> =
            (0..8).map(|_| tokio::spawn(load(crypt.base.clone(), round, recent.clone(), tally.clone()))).collect();
        let kill_after = Duration::from_millis(rand::rng().random_range(50..400));
        tokio::time::sleep(kill_after).await;
        crypt.crash();
        for w in workers {
            w.await.unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        previous = Arc::into_inner(recent).unwrap().into_inner().unwrap();
        // What the next round does not read again is final: kept for the last check.
        everything.retain(|m| !previous.iter().any(|p| p.id == m.id));
        everything.extend(previous.iter().cloned());
    }
    let crypt = on(&db, &[]);
    let checked = check(&crypt.base, everything).await;
    let t = tally.lock().unwrap();
    println!(
        "{ROUNDS} SIGKILLs under load: {} creates and {} reads answered, {} requests cut off by the kill, \
         {} messages checked after restarts, {checked} at the end: none lost, none back",
        t.creates, t.reads, t.unanswered, t.checked
    );
    assert!(t.creates > 100 && t.reads > 50, "too little load to prove anything: {t:?}");
    assert!(t.unanswered > 0, "no request was ever cut off by a kill: {t:?}");
}
