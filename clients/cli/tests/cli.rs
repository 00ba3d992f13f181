//! The `crypt` command as a person runs it, against a real crypt server: what it prints, its
//! exit codes, and that a bad link or input fetches (and so destroys) nothing.

use crypt_envelope::{Fragment, Key};
use std::io::Write;
use std::process::{Command, Output, Stdio};

struct Crypt {
    server: crypt_server::Running,
    /// Runs the server; dropped (stopping it) with the fixture.
    _rt: tokio::runtime::Runtime,
}

impl Crypt {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let config =
            crypt_server::Config::from_vars([("CRYPT_LISTEN", "127.0.0.1:0"), ("CRYPT_RATE_LIMIT_MAX", "0")]).unwrap();
        let server = rt.block_on(crypt_server::spawn(config)).unwrap();
        Self { server, _rt: rt }
    }

    fn url(&self) -> String {
        self.server.url()
    }

    /// Stores `message` as is, through the API (as a client that does not encrypt would).
    fn store_raw(&self, message: &str) -> String {
        let body = serde_json::json!({ "message": message }).to_string();
        let resp = http("POST", &format!("{}/", self.url()), Some(&body));
        let v: serde_json::Value = serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    /// The status of `GET /{id}` (which burns the message when it is 200).
    fn read_status(&self, id: &str) -> u16 {
        http("GET", &format!("{}/{id}", self.url()), None)[9..12].parse().unwrap()
    }

    fn read_message(&self, id: &str) -> String {
        let resp = http("GET", &format!("{}/{id}", self.url()), None);
        let v: serde_json::Value = serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        v["message"].as_str().unwrap().to_owned()
    }
}

/// A plain HTTP/1.1 exchange (no client library between the test and the wire).
fn http(method: &str, url: &str, body: Option<&str>) -> String {
    use std::io::Read;
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Starts `crypt` with `args`, in a session of its own (no terminal to ask on), every stream
/// piped.
fn spawn_crypt(args: &[&str]) -> std::process::Child {
    Command::new("setsid")
        .arg(env!("CARGO_BIN_EXE_crypt"))
        .args(args)
        .env_remove("CRYPT_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setsid and crypt run")
}

/// Runs `crypt` with `args` and `stdin`, in a session of its own: no terminal to ask on.
fn crypt(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = spawn_crypt(args);
    // A run refused on its arguments exits without reading its input, so the write can find
    // the pipe closed (a race CI has lost): that is the run's answer, not the test's failure.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing crypt's input: {e}");
    }
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code and that stderr is one line starting `crypt: ` and containing `words`.
fn fails_with(o: &Output, code: i32, words: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("crypt: ") && err.contains(words), "expected {words:?} in {err:?}");
    assert!(o.stdout.is_empty(), "nothing on stdout: {:?}", stdout(o));
}

fn passphrase_file(text: &str) -> tempfile_path::Path {
    tempfile_path::Path::with(text)
}

mod tempfile_path {
    /// A file in the temp directory, removed when dropped.
    pub struct Path(std::path::PathBuf);
    impl Path {
        pub fn with(text: &str) -> Self {
            static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let p = std::env::temp_dir().join(format!("crypt-cli-test-{}-{n}", std::process::id()));
            std::fs::write(&p, text).unwrap();
            Self(p)
        }
        pub fn as_str(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }
    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn id_of(link: &str) -> String {
    link.trim().split("/s/").nth(1).unwrap().split('#').next().unwrap().to_owned()
}

#[test]
fn send_then_open_round_trips_and_the_service_sees_only_ciphertext() {
    let c = Crypt::start();
    let secret = "the vault code is 7421\nline two, emoji 🔥";
    let sent = crypt(&["send", "--server", &c.url()], secret.as_bytes());
    assert!(sent.status.success(), "{}", stderr(&sent));
    let link = stdout(&sent).trim().to_owned();
    assert!(link.starts_with(&format!("{}/s/", c.url())), "{link}");
    // Off a terminal the receipt is not said: stderr may be a log (`--json` carries it).
    assert!(stderr(&sent).is_empty(), "{}", stderr(&sent));
    let key = link.split('#').nth(1).unwrap().to_owned();
    assert_eq!(key.len(), 43, "{link}");
    let opened = crypt(&["open", &link], b"");
    assert!(opened.status.success(), "{}", stderr(&opened));
    assert_eq!(stdout(&opened), secret);
    assert!(stderr(&opened).is_empty(), "{}", stderr(&opened));
    // Burned: a second open says so, with the service's own words.
    fails_with(&crypt(&["open", &link], b""), 4, "Message not found");

    // What the service stores is an envelope that holds neither the secret nor the key.
    let sent = crypt(&["send", "--server", &c.url()], secret.as_bytes());
    let link = stdout(&sent);
    let stored = c.read_message(&id_of(&link));
    assert!(stored.starts_with("crypt1:"), "{stored}");
    assert!(!stored.contains("vault") && !stored.contains(link.trim().split('#').nth(1).unwrap()));
}

#[test]
fn json_output_and_ttl() {
    let c = Crypt::start();
    let sent = crypt(&["send", "--server", &c.url(), "--ttl", "2h", "--json"], b"from a file\n");
    assert!(sent.status.success(), "{}", stderr(&sent));
    let v: serde_json::Value = serde_json::from_str(&stdout(&sent)).unwrap();
    let link = v["link"].as_str().unwrap();
    assert_eq!(v["id"].as_str().unwrap(), id_of(link));
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(stdout(&crypt(&["open", link], b"")), "from a file\n");
    let bad = crypt(&["send", "--server", &c.url(), "--ttl", "soon"], b"x");
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    // The service's own limit comes back in its own words.
    fails_with(&crypt(&["send", "--server", &c.url(), "--ttl", "2d"], b"x"), 1, "Field 'ttl' must be a whole number");
}

#[test]
fn passphrases_from_a_file_and_every_way_to_get_them_wrong() {
    let c = Crypt::start();
    let right = passphrase_file("correct horse battery staple\n");
    let wrong = passphrase_file("Tr0ub4dor&3\n");
    let sent = crypt(&["send", "--server", &c.url(), "--passphrase-file", right.as_str()], b"behind a passphrase");
    assert!(sent.status.success(), "{}", stderr(&sent));
    let link = stdout(&sent).trim().to_owned();
    assert!(link.ends_with(".p"), "the link says a passphrase is needed: {link}");

    // None given, and no terminal to ask on: refused before fetching.
    fails_with(&crypt(&["open", &link], b""), 2, "needs a passphrase");
    // The right one opens it.
    let opened = crypt(&["open", &link, "--passphrase-file", right.as_str()], b"");
    assert_eq!(
        (opened.status.code(), stdout(&opened)),
        (Some(0), "behind a passphrase".to_owned()),
        "{}",
        stderr(&opened)
    );

    // The wrong one: a clear line and exit 3, never garbage.
    let sent = crypt(&["send", "--server", &c.url(), "--passphrase-file", right.as_str()], b"second");
    let link = stdout(&sent).trim().to_owned();
    fails_with(&crypt(&["open", &link, "--passphrase-file", wrong.as_str()], b""), 3, "cannot decrypt");

    // A passphrase where none was set: refused before fetching, the secret is still there.
    let sent = crypt(&["send", "--server", &c.url()], b"no passphrase");
    let link = stdout(&sent).trim().to_owned();
    fails_with(&crypt(&["open", &link, "--passphrase-file", right.as_str()], b""), 2, "not sent with a passphrase");
    assert_eq!(c.read_status(&id_of(&link)), 200);
}

#[test]
fn damaged_links_fetch_nothing() {
    let c = Crypt::start();
    let sent = crypt(&["send", "--server", &c.url()], b"keep me");
    let link = stdout(&sent).trim().to_owned();
    let (url, key) = link.split_once('#').unwrap();
    for (bad, words) in [
        (url.to_owned(), "the link has no key"),
        (format!("{url}#"), "the link has no key"),
        (format!("{url}#{}", &key[..30]), "the link's key is damaged"),
        (format!("{url}#{key}AAAA"), "the link's key is damaged"),
        (format!("{url}#{}", key.replace(|c: char| c.is_ascii_alphabetic(), "*")), "the link's key is damaged"),
        ("not a link".to_owned(), "is not a link"),
        (format!("{}/{}", c.url(), id_of(&link)), "no /s/"),
    ] {
        fails_with(&crypt(&["open", &bad], b""), 2, words);
    }
    assert_eq!(c.read_status(&id_of(&link)), 200, "none of those fetched the secret");
}

#[test]
fn damaged_secrets_are_refused_after_the_fetch() {
    let c = Crypt::start();
    let key = Key::generate();
    let fragment = Fragment { key: key.clone(), passphrase: false }.encode();
    let good = crypt_envelope::seal(b"original", &key, None);
    // One bit flipped in the ciphertext (a character of the base64url changed).
    let mut flipped = good.clone().into_bytes();
    let last = flipped.len() - 5;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for (stored, words) in [
        (flipped, "cannot decrypt"),
        (good.replacen("crypt1:", "crypt7:", 1), "envelope version 'crypt7'"),
        ("crypt1:%%%".to_owned(), "the secret is damaged"),
    ] {
        let id = c.store_raw(&stored);
        fails_with(&crypt(&["open", &format!("{}/s/{id}#{fragment}", c.url())], b""), 3, words);
    }
}

#[test]
fn a_plain_text_secret_is_shown_with_a_warning() {
    let c = Crypt::start();
    let id = c.store_raw("stored with curl");
    let fragment = Fragment { key: Key::generate(), passphrase: false }.encode();
    let o = crypt(&["open", &format!("{}/s/{id}#{fragment}", c.url())], b"");
    assert_eq!((o.status.code(), stdout(&o)), (Some(0), "stored with curl".to_owned()));
    assert!(stderr(&o).contains("not end-to-end encrypted"), "{}", stderr(&o));
}

#[test]
fn bad_input_and_an_absent_service_are_said_plainly() {
    let c = Crypt::start();
    fails_with(&crypt(&["send", "--server", &c.url()], b""), 2, "nothing to send");
    let huge = vec![b'a'; crypt_envelope::max_plaintext(102_400) + 1];
    fails_with(&crypt(&["send", "--server", &c.url()], &huge), 2, "the secret is more than 76750 bytes");
    let fits = vec![b'a'; crypt_envelope::max_plaintext(102_400)];
    let sent = crypt(&["send", "--server", &c.url()], &fits);
    assert!(sent.status.success(), "the largest secret fits: {}", stderr(&sent));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let down = crypt(&["send", "--server", &format!("http://{closed}")], b"x");
    fails_with(
        &down,
        1,
        &format!("cannot reach the service at http://{closed}: could not connect: Connection refused"),
    );
    fails_with(&crypt(&["send", "--server", "ftp://nope"], b"x"), 2, "not a service URL");
}

/// `send --views`, then the sender's `status` and `delete` with the receipt link, each with its
/// words and exit code, and the reader told how many views are left.
#[test]
fn the_sender_follows_and_deletes_a_secret_with_the_receipt_link() {
    let c = Crypt::start();
    let sent = crypt(&["send", "--server", &c.url(), "--views", "2", "--json"], b"for two readers");
    assert!(sent.status.success(), "{}", stderr(&sent));
    let v: serde_json::Value = serde_json::from_str(&stdout(&sent)).unwrap();
    let (link, receipt) = (v["link"].as_str().unwrap(), v["receipt_link"].as_str().unwrap());
    let id = id_of(link);
    assert!(receipt.starts_with(&format!("{}/r/{id}#", c.url())), "{receipt}");
    assert!(receipt.split('#').nth(1).unwrap().len() >= 22, "{receipt}");

    let status = crypt(&["status", receipt], b"");
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    let words = stdout(&status);
    assert!(words.starts_with("unread; 2 views left; expires at 20"), "{words}");
    // `-`: the link from stdin, out of shell history and the process list.
    assert_eq!(stdout(&crypt(&["status", "-"], format!("{receipt}\n").as_bytes())), words);
    fails_with(&crypt(&["status", "-"], b""), 2, "is not a link");
    let opened = crypt(&["open", link], b"");
    assert_eq!(stdout(&opened), "for two readers");
    assert!(stderr(&opened).contains("can be opened 1 time more"), "{}", stderr(&opened));
    let words = stdout(&crypt(&["status", receipt], b""));
    assert!(words.starts_with("read at 20") && words.contains("; 1 view left; expires at"), "{words}");
    let json = crypt(&["status", receipt, "--json"], b"");
    let r: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(
        (r["state"].as_str(), r["views_left"].as_u64(), r["read_at"].as_array().map(Vec::len)),
        (Some("read"), Some(1), Some(1))
    );

    for _ in 0..2 {
        let deleted = crypt(&["delete", receipt], b"");
        assert_eq!(deleted.status.code(), Some(0), "{}", stderr(&deleted));
        assert!(
            stdout(&deleted).contains("then deleted by the sender; nobody can read it now"),
            "{}",
            stdout(&deleted)
        );
    }
    fails_with(&crypt(&["open", link], b""), 4, "Message not found");

    // A delete after the last view is too late, and says so with its own exit code.
    let sent = crypt(&["send", "--server", &c.url(), "--json"], b"read at once");
    let v: serde_json::Value = serde_json::from_str(&stdout(&sent)).unwrap();
    assert_eq!(stdout(&crypt(&["open", v["link"].as_str().unwrap()], b"")), "read at once");
    let late = crypt(&["delete", v["receipt_link"].as_str().unwrap()], b"");
    assert_eq!(late.status.code(), Some(5), "{}", stderr(&late));
    assert!(stdout(&late).starts_with("read at 20") && stdout(&late).contains("; destroyed"), "{}", stdout(&late));
    assert!(stderr(&late).contains("too late: every view was read before the delete"), "{}", stderr(&late));
}

#[test]
fn receipt_links_wrong_or_mixed_up_are_said_and_spend_nothing() {
    let c = Crypt::start();
    let sent = crypt(&["send", "--server", &c.url(), "--json"], b"kept");
    let v: serde_json::Value = serde_json::from_str(&stdout(&sent)).unwrap();
    let (link, receipt) = (v["link"].as_str().unwrap(), v["receipt_link"].as_str().unwrap());
    fails_with(&crypt(&["status", link], b""), 2, "this is a share link, not a receipt link");
    fails_with(&crypt(&["delete", link], b""), 2, "this is a share link, not a receipt link");
    fails_with(&crypt(&["open", receipt], b""), 2, "this is a receipt link, for the sender");
    let bare = receipt.split('#').next().unwrap();
    fails_with(&crypt(&["status", bare], b""), 2, "has no receipt");
    let wrong = format!("{bare}#{}", "W".repeat(32));
    fails_with(&crypt(&["status", &wrong], b""), 4, "no such receipt: it expired with its secret");
    fails_with(&crypt(&["delete", &wrong], b""), 4, "no such receipt");
    let zero = crypt(&["send", "--server", &c.url(), "--views", "0"], b"x");
    assert_eq!(zero.status.code(), Some(2), "{}", stderr(&zero));
    fails_with(
        &crypt(&["send", "--server", &c.url(), "--views", "101"], b"x"),
        1,
        "Field 'views' must be a whole number from 1 to 100",
    );
    assert_eq!(stdout(&crypt(&["open", link], b"")), "kept", "a wrong receipt spent or destroyed it");
}

/// Runs `crypt` on a terminal (a pseudo-terminal from `script`), typing `typed` into it.
fn crypt_on_a_terminal(args: &str, typed: &str) -> (Option<i32>, String) {
    let mut child = Command::new("script")
        .args(["-qec", &format!("{} {args}", env!("CARGO_BIN_EXE_crypt")), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    let mut stdin = child.stdin.take().unwrap();
    let typed = typed.to_owned();
    // Typed a line at a time, as a person would, each after the prompt has had time to appear.
    let typist = std::thread::spawn(move || {
        for line in typed.lines() {
            std::thread::sleep(std::time::Duration::from_millis(700));
            let _ = writeln!(stdin, "{line}");
        }
    });
    let out = child.wait_with_output().unwrap();
    typist.join().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn on_a_terminal_the_passphrase_is_asked_without_echo_and_can_be_retried() {
    let c = Crypt::start();
    let secret = passphrase_file("typed at a terminal");
    let send = format!("send --server {} --passphrase < {}", c.url(), secret.as_str());
    let (code, screen) = crypt_on_a_terminal(&send, "open sesame\nopen sesamE\n");
    assert_eq!(code, Some(2), "{screen}");
    assert!(screen.contains("the two passphrases differ; nothing was sent"), "{screen}");
    let (code, screen) = crypt_on_a_terminal(&send, "open sesame\nopen sesame\n");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("Passphrase again: "), "{screen}");
    assert!(!screen.contains("open sesame"), "the passphrase was echoed: {screen}");
    let link = screen.lines().find(|l| l.contains("/s/")).unwrap().trim().to_owned();
    assert!(link.ends_with(".p"), "{link}");
    // On a terminal the sender is also given the receipt link (on stderr).
    assert!(screen.contains("Your receipt link (keep it to yourself"), "{screen}");
    assert!(screen.lines().any(|l| l.trim().starts_with(&format!("{}/r/", c.url()))), "{screen}");
    let (code, screen) = crypt_on_a_terminal(&format!("open '{link}'"), "wrong guess\nopen sesame\n");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("Passphrase: "), "{screen}");
    assert!(screen.contains("wrong passphrase, try again"), "{screen}");
    assert!(screen.contains("typed at a terminal"), "{screen}");
    assert!(!screen.contains("open sesame") && !screen.contains("wrong guess"), "the passphrase was echoed: {screen}");
}

#[test]
fn a_service_that_requires_a_create_token_gets_it_from_the_flag_or_the_environment() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // SHA-256 of "team-token", as an operator makes it.
    let hash = {
        use std::process::Command;
        let out = Command::new("sh").args(["-c", "printf team-token | sha256sum"]).output().unwrap();
        String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
    };
    let config = crypt_server::Config::from_vars([
        ("CRYPT_LISTEN", "127.0.0.1:0"),
        ("CRYPT_RATE_LIMIT_MAX", "0"),
        ("CRYPT_CREATE_TOKEN_HASHES", hash.as_str()),
    ])
    .unwrap();
    let server = rt.block_on(crypt_server::spawn(config)).unwrap();
    let url = server.url();
    fails_with(&crypt(&["send", "--server", &url], b"x"), 1, "the service answered 401: Unauthorized");
    fails_with(&crypt(&["send", "--server", &url, "--token", "wrong"], b"x"), 1, "401: Unauthorized");
    let sent = crypt(&["send", "--server", &url, "--token", "team-token"], b"with a token");
    assert!(sent.status.success(), "{}", stderr(&sent));
    let opened = crypt(&["open", stdout(&sent).trim()], b"");
    assert_eq!(stdout(&opened), "with a token", "reads need no token");
    let mut child = Command::new("setsid")
        .arg(env!("CARGO_BIN_EXE_crypt"))
        .args(["send", "--server", &url])
        .env("CRYPT_TOKEN", "team-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"from the environment").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A server that answers every request with `answer`, then hangs up.
fn misbehaving_server(answer: fn(&mut std::net::TcpStream)) -> String {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 65536];
            let _ = stream.read(&mut request);
            answer(&mut stream);
        }
    });
    format!("http://{addr}")
}

/// `200` with a body shorter than it promised: what a dropped connection mid-answer looks like
/// to the client.
fn cut_off_server() -> String {
    misbehaving_server(|s| {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"message\":\"ab",
        );
    })
}

#[test]
fn an_endless_answer_is_refused_without_being_held() {
    // `200`, then bytes until the client hangs up (or a gigabyte).
    let server = misbehaving_server(|s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"message\":\"");
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..1024 {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let key = Fragment { key: Key::generate(), passphrase: false }.encode();
    let out = crypt(&["open", &format!("{server}/s/abcde#{key}")], b"");
    fails_with(&out, 1, "an answer of more than 16 MiB");
}

#[test]
fn an_answer_cut_off_is_said_for_what_it_means() {
    let server = cut_off_server();
    let key = Fragment { key: Key::generate(), passphrase: false }.encode();
    // A read: the service answered, so the secret is gone; it never arrived (exit 3, as for
    // a secret fetched that cannot be opened).
    let read = crypt(&["open", &format!("{server}/s/abcde#{key}")], b"");
    fails_with(&read, 3, "cut off");
    assert!(stderr(&read).contains("the secret is probably destroyed"), "{}", stderr(&read));
    assert!(read.stdout.is_empty(), "nothing half-read is printed");
    // A create: no link, and the person is told to send again.
    let sent = crypt(&["send", "--server", &server], b"x");
    fails_with(&sent, 1, "no link was made");
    assert!(sent.stdout.is_empty(), "no link is printed");
}

#[test]
fn an_endless_input_is_refused_without_being_read_to_its_end() {
    let mut child = spawn_crypt(&["send", "--server", "http://127.0.0.1:9"]);
    let mut input = child.stdin.take().unwrap();
    // Up to a gigabyte: crypt stops reading one byte past what fits, so the pipe closes long
    // before (a crypt that read everything would take it all, and say so in its size).
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'a'; 1 << 20];
        let mut written = 0usize;
        while written < 1 << 30 && input.write_all(&chunk).is_ok() {
            written += chunk.len();
        }
        written
    });
    let out = child.wait_with_output().unwrap();
    let written = writer.join().unwrap();
    fails_with(&out, 2, "the secret is more than 76750 bytes");
    assert!(written < 16 << 20, "crypt read {written} bytes of an input it had refused");
}

#[test]
fn a_file_too_large_is_refused_before_anything_is_sent() {
    // Port 9 answers nothing: a refusal that tried to send would say "cannot reach" (exit 1).
    let dir = Folder::new();
    let big = dir.path.join("big.bin");
    std::fs::write(&big, vec![7u8; 10 * 1024 * 1024]).unwrap();
    let out = crypt(&["send", "--server", "http://127.0.0.1:9", "--file", big.to_str().unwrap()], b"");
    fails_with(&out, 2, "10485760 bytes, 10488379 once encrypted: over the service's limit of 10485760 bytes");
    // An operator's larger limit is the client's too, through the same setting's name: then it
    // tries to send (and finds nobody on port 9).
    let out = Command::new(env!("CARGO_BIN_EXE_crypt"))
        .args(["send", "--server", "http://127.0.0.1:9", "--file", big.to_str().unwrap()])
        .env("CRYPT_MAX_FILE_BYTES", "20000000")
        .output()
        .unwrap();
    fails_with(&out, 1, "cannot reach the service");
    // A folder is not a file.
    fails_with(
        &crypt(&["send", "--server", "http://127.0.0.1:9", "--file", dir.path.to_str().unwrap()], b""),
        2,
        "is not a file",
    );
}

/// A folder of its own for a test, removed when dropped.
struct Folder {
    path: std::path::PathBuf,
}

impl Folder {
    fn new() -> Self {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("crypt-cli-files-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self { path }
    }

    /// The names in it, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs `crypt` with `args` in the folder `cwd`.
fn crypt_in(cwd: &std::path::Path, args: &[&str]) -> Output {
    Command::new("setsid")
        .arg(env!("CARGO_BIN_EXE_crypt"))
        .args(args)
        .current_dir(cwd)
        .env_remove("CRYPT_SERVER")
        .stdin(Stdio::null())
        .output()
        .expect("crypt runs")
}

/// `GET /{id}` over a plain socket: the status, the headers and the raw bytes of the body.
fn read_raw(c: &Crypt, id: &str) -> (u16, String, Vec<u8>) {
    use std::io::Read;
    let host = c.url().strip_prefix("http://").unwrap().to_owned();
    let mut s = std::net::TcpStream::connect(&host).unwrap();
    write!(s, "GET /{id} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    (head[9..12].parse().unwrap(), head, out[split + 4..].to_vec())
}

/// Stores `envelope` as a file, through the API.
fn store_file(c: &Crypt, envelope: &[u8]) -> String {
    use std::io::Read;
    let host = c.url().strip_prefix("http://").unwrap().to_owned();
    let mut s = std::net::TcpStream::connect(&host).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        envelope.len()
    )
    .unwrap();
    s.write_all(envelope).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let v: serde_json::Value = serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_file_is_sent_and_saved_under_its_name_and_the_service_sees_only_its_size() {
    let c = Crypt::start();
    let (from, to) = (Folder::new(), Folder::new());
    // Every byte value, over several pieces, and a name with a space.
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 65_536) as u8).collect();
    let report = from.path.join("Q3 report.pdf");
    std::fs::write(&report, &bytes).unwrap();
    let pass = passphrase_file("correct horse");
    let args = ["send", "--server", &c.url(), "--views", "2", "--note", "the signed copy", "--passphrase-file"];
    let sent = crypt(&[&args[..], &[pass.as_str(), "--file", report.to_str().unwrap()]].concat(), b"");
    assert!(sent.status.success(), "{}", stderr(&sent));
    let link = stdout(&sent).trim().to_owned();
    assert!(link.ends_with(".p"), "{link}");
    let opened = crypt_in(&to.path, &["open", &link, "--passphrase-file", pass.as_str()]);
    assert!(opened.status.success(), "{}", stderr(&opened));
    assert!(opened.stdout.is_empty(), "a file goes to its file, not stdout");
    let said = stderr(&opened);
    assert!(said.contains("the sender's note: the signed copy"), "{said}");
    assert!(said.contains("saved ./Q3 report.pdf (3000000 bytes)"), "{said}");
    assert!(said.contains("can be opened 1 time more"), "{said}");
    assert!(std::fs::read(to.path.join("Q3 report.pdf")).unwrap() == bytes);
    // The second view: the name is taken, so the file keeps both, never overwriting.
    let again = crypt_in(&to.path, &["open", &link, "--passphrase-file", pass.as_str()]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(to.names(), ["Q3 report (1).pdf", "Q3 report.pdf"]);
    fails_with(&crypt_in(&to.path, &["open", &link, "--passphrase-file", pass.as_str()]), 4, "no such secret");
    // The service held ciphertext only: neither the name, the note nor the bytes.
    let sent = crypt(&["send", "--server", &c.url(), "--note", "note-words", "--file", report.to_str().unwrap()], b"");
    let (status, head, body) = read_raw(&c, &id_of(stdout(&sent).trim()));
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: application/octet-stream"), "{head}");
    assert!(body.starts_with(b"crypt2f"));
    for plain in [&b"Q3 report"[..], b"note-words", b"application/pdf", &bytes[1000..1064]] {
        assert!(!body.windows(plain.len()).any(|w| w == plain), "the service saw {:?}", String::from_utf8_lossy(plain));
    }
}

#[test]
fn a_file_goes_where_output_says_and_never_over_a_file_without_force() {
    let c = Crypt::start();
    let dir = Folder::new();
    let input = dir.path.join("id_ed25519");
    std::fs::write(&input, b"-----BEGIN OPENSSH PRIVATE KEY-----\nkey\n").unwrap();
    let send = || {
        let sent = crypt(&["send", "--server", &c.url(), "--file", input.to_str().unwrap()], b"");
        assert!(sent.status.success(), "{}", stderr(&sent));
        stdout(&sent).trim().to_owned()
    };
    // -o - : stdout, byte for byte.
    let out = crypt(&["open", &send(), "-o", "-"], b"");
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), &b"-----BEGIN OPENSSH PRIVATE KEY-----\nkey\n"[..])
    );
    // -o an existing file: refused before the fetch (the secret stays), then --force replaces.
    let taken = dir.path.join("taken");
    std::fs::write(&taken, b"mine").unwrap();
    let link = send();
    fails_with(&crypt(&["open", &link, "-o", taken.to_str().unwrap()], b""), 2, "already exists; give --force");
    assert_eq!(std::fs::read(&taken).unwrap(), b"mine");
    let forced = crypt(&["open", &link, "-o", taken.to_str().unwrap(), "--force"], b"");
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(std::fs::read(&taken).unwrap(), b"-----BEGIN OPENSSH PRIVATE KEY-----\nkey\n");
    // -o a folder: the file keeps its name there.
    let into = Folder::new();
    assert!(crypt(&["open", &send(), "-o", into.path.to_str().unwrap()], b"").status.success());
    assert_eq!(into.names(), ["id_ed25519"]);
    // A text secret goes to -o as well, when it is given.
    let sent = crypt(&["send", "--server", &c.url()], b"a text, into a file");
    let text_out = dir.path.join("text.txt");
    let out = crypt(&["open", stdout(&sent).trim(), "-o", text_out.to_str().unwrap()], b"");
    assert!(out.status.success() && out.stdout.is_empty(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&text_out).unwrap(), b"a text, into a file");
    // A file of zero bytes is a file too.
    let empty = dir.path.join("empty");
    std::fs::write(&empty, b"").unwrap();
    let sent = crypt(&["send", "--server", &c.url(), "--file", empty.to_str().unwrap()], b"");
    let out = crypt(&["open", stdout(&sent).trim(), "-o", "-"], b"");
    assert_eq!((out.status.code(), out.stdout.len()), (Some(0), 0), "{}", stderr(&out));
}

#[test]
fn a_hostile_name_is_made_safe_and_a_damaged_file_writes_nothing() {
    let c = Crypt::start();
    let key = Key::generate();
    let fragment = Fragment { key: key.clone(), passphrase: false }.encode();
    let seal = |name: &str, bytes: &[u8]| {
        let meta = crypt_envelope::FileMeta { name: name.into(), ..Default::default() };
        crypt_envelope::seal_file_with(bytes, &meta, &key, None, [1; 16], [2; 16]).unwrap()
    };
    let link_to = |id: &str| format!("{}/s/{id}#{fragment}", c.url());
    let dir = Folder::new();
    for (name, safe) in
        [("../escape", "escape"), ("/etc/passwd", "passwd"), ("a\u{1b}]0;x\u{7}b", "a]0;xb"), ("", "crypt-file")]
    {
        let id = store_file(&c, &seal(name, b"payload"));
        let out = crypt_in(&dir.path, &["open", &link_to(&id)]);
        assert!(out.status.success(), "{name:?}: {}", stderr(&out));
        assert_eq!(std::fs::read(dir.path.join(safe)).unwrap(), b"payload", "{name:?}");
        std::fs::remove_file(dir.path.join(safe)).unwrap();
    }
    assert!(!dir.path.parent().unwrap().join("escape").exists());
    // Cut, altered and reordered envelopes: a clear error, exit 3, and nothing left behind.
    let whole = seal("four-pieces.bin", &(0..200_000u32).map(|i| i as u8).collect::<Vec<u8>>());
    // The header (magic, mode, file nonce) is 24 bytes, then pieces of 64 KiB and a tag.
    let (head, piece) = (24, 65_536 + 16);
    let mut swapped = whole.clone();
    swapped[head + piece..head + 2 * piece].copy_from_slice(&whole[head + 2 * piece..head + 3 * piece]);
    swapped[head + 2 * piece..head + 3 * piece].copy_from_slice(&whole[head + piece..head + 2 * piece]);
    let mut flipped = whole.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let mut key_wrong = whole.clone();
    key_wrong[30] ^= 1;
    for (what, damaged) in [
        ("cut", whole[..head + 2 * piece].to_vec()),
        ("flipped", flipped),
        ("swapped", swapped),
        ("first piece", key_wrong),
    ] {
        let id = store_file(&c, &damaged);
        let out = crypt_in(&dir.path, &["open", &link_to(&id)]);
        assert_eq!(out.status.code(), Some(3), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains("nothing was written"), "{what}: {}", stderr(&out));
        assert_eq!(dir.names(), Vec::<String>::new(), "{what}: a partial file was left");
    }
}
