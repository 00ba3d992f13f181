//! A whole conformance run against the `crypt-server` binary, logging at debug as JSON: every
//! line is JSON, and no line holds a message text or an id that the run used.

use crypt_conformance::{checks, client, record, Caps, Profile, Target};
use futures::future::BoxFuture;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// Everything every server of the run logged.
static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary with the profile's settings, on a free port, its stderr kept in [`LOGS`].
fn binary(profile: Profile) -> BoxFuture<'static, Target> {
    Box::pin(async move {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crypt-server"))
            .env_clear()
            .envs(profile.env())
            .envs([("CRYPT_LISTEN", "127.0.0.1:0"), ("CRYPT_LOG", "debug"), ("CRYPT_LOG_FORMAT", "json")])
            .current_dir(std::env::temp_dir())
            .stderr(Stdio::piped())
            .spawn()
            .expect("crypt-server starts");
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr: String =
                        rest.chars().take_while(|c| c.is_ascii_alphanumeric() || ".:".contains(*c)).collect();
                    let _ = tx.send(addr);
                }
                LOGS.lock().unwrap().push(line);
            }
        });
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(std::time::Duration::from_secs(20)))
            .await
            .unwrap()
            .expect("the server logs its address");
        Target {
            base: format!("http://{addr}"),
            caps: Caps::SELF_HOSTED,
            http: client(),
            keep: Box::new(KillOnDrop(child)),
        }
    })
}

/// True when `word` stands in `text` with no letter or digit on either side.
fn holds_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back().is_none_or(|c| !c.is_ascii_alphanumeric());
        let after = text[at + word.len()..].chars().next().is_none_or(|c| !c.is_ascii_alphanumeric());
        before && after
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_of_a_whole_conformance_run_holds_a_message_or_an_id() {
    record::start();
    for (name, check) in checks::ALL {
        println!("running {name}");
        check(binary).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let exchanges = record::take();
    let mut texts = Vec::new();
    let mut ids = Vec::new();
    for ex in &exchanges {
        let sent = ex.request_body.as_deref().and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
        if let Some(text) = sent.as_ref().and_then(|v| v["message"].as_str()) {
            // Short texts ("x", "one") stand in ordinary words; the long ones prove the point.
            if text.trim().len() >= 8 {
                texts.push(text.to_owned());
            }
        }
        if let Ok(body) = serde_json::from_slice::<serde_json::Value>(&ex.body) {
            if let Some(id) = body["id"].as_str() {
                ids.push(id.to_owned());
            }
        }
    }
    assert!(texts.len() > 50 && ids.len() > 300, "{} texts, {} ids", texts.len(), ids.len());
    let logs = LOGS.lock().unwrap().clone();
    assert!(logs.iter().any(|l| l.contains(r#""message":"request""#)), "debug request lines were expected");
    for line in &logs {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    let all = logs.join("\n");
    for text in &texts {
        assert!(!all.contains(text.as_str()), "a log line holds the message {text:?}");
    }
    for id in &ids {
        assert!(!holds_word(&all, id), "a log line holds the id {id}");
    }
}
