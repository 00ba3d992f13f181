//! # crypt-fuzz: the fuzz targets
//!
//! One function per thing in crypt that reads bytes it did not write, each taking the fuzzer's
//! input and panicking only when crypt misbehaves:
//!
//! - [`http`]: the HTTP adapter's whole request handling (method, path, headers, body, the
//!   settings that change it, the client address from `X-Forwarded-For`), over the real memory
//!   store and limiter. Besides "no panic", it checks what must hold for every request: never a
//!   500, every error is a JSON `{"error": ...}`, and a message that was accepted reads back
//!   byte for byte once per view, and its receipt then says it was read.
//! - [`stored`]: the stored-value format every byte store (Workers KV, Durable Objects; format 1 also
//!   Redis's older values) decodes.
//! - [`settings`]: the settings parser, from environment pairs and from a TOML file.
//! - [`envelope`]: the client's envelope and link-fragment decoders.
//!
//! `afl/*.rs` wrap each in `afl::fuzz!` (build with `--features afl` through `cargo afl`, as
//! `scripts/fuzz` does); `tests/corpus.rs` replays the committed corpus and every input that
//! ever failed (`fuzz/regressions/`) as ordinary tests.

use bytes::Bytes;
use crypt_domain::testkit::{FixedIds, ManualClock};
use crypt_domain::{Message, Policy, Record, StoredMessage, Vault};
use crypt_http::{Api, ClientInfo, Settings};
use crypt_memory::{MemoryLimiter, MemoryStore};
use futures::executor::block_on;
use http::{HeaderName, HeaderValue, Method, Request, Response, Uri};
use std::net::IpAddr;
use std::sync::Arc;

/// A create token whose SHA-256 is configured when the input asks for create tokens.
pub const TOKEN: &str = "fuzz-token";
const TOKEN_SHA256: &str = "33cc09ba35314d19e32ed9a5a30fca56eebbfab5faec7247fd0403cd26e155b5";

/// The first byte of an [`http`] input chooses the deployment: each bit turns one setting on.
mod flag {
    /// `CRYPT_CREATE_TOKEN_HASHES` holds the hash of [`super::TOKEN`].
    pub const TOKENS: u8 = 1;
    /// `CRYPT_RATE_LIMIT_MAX=2` (of 60 s): the third counted request is 429.
    pub const LIMITED: u8 = 2;
    /// `CRYPT_CORS_ORIGINS=https://a.example` instead of `*`.
    pub const CORS_LIST: u8 = 4;
    /// The peer is a trusted proxy, so `X-Forwarded-For` names the client.
    pub const PROXIED: u8 = 8;
    /// The peer is `::1` rather than `127.0.0.1`.
    pub const IPV6_PEER: u8 = 16;
    /// `CRYPT_MAX_MESSAGE_BYTES=16`: small enough that the fuzzer reaches the 413.
    pub const SMALL: u8 = 32;
}

/// One HTTP request through the adapter. The input is a flags byte (see `flag`), then a
/// request written loosely as text: `METHOD TARGET` on the first line, `name: value` lines,
/// a blank line, the body. A line that is not a valid header is skipped, as a server's parser
/// would refuse it before crypt saw it.
pub fn http(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Some(req) = request(rest) else { return };
    let api = api(flags);
    let peer: IpAddr =
        if flags & flag::IPV6_PEER != 0 { [0u16, 0, 0, 0, 0, 0, 0, 1].into() } else { [127, 0, 0, 1].into() };
    let trusted: Vec<ipnet::IpNet> = if flags & flag::PROXIED != 0 {
        vec!["127.0.0.1/32".parse().unwrap(), "::1/128".parse().unwrap()]
    } else {
        vec![]
    };
    let client = ClientInfo::Ip(crypt_http::client_ip(peer, req.headers(), &trusted));

    // What a runtime does before calling the adapter: read the body only when asked to.
    let (parts, body) = req.into_parts();
    let body =
        if api.body_limit(&parts.method, parts.uri.path(), &parts.headers).is_some() { body } else { Bytes::new() };
    let sent = body.clone();
    let (method, path) = (parts.method.clone(), parts.uri.path().to_owned());
    let resp = block_on(api.handle(Request::from_parts(parts, body), &client));

    let status = resp.status().as_u16();
    assert_ne!(status, 500, "a request the memory store can serve was answered 500: {}", text(&resp));
    if status >= 400 {
        let error: serde_json::Value = serde_json::from_slice(resp.body())
            .unwrap_or_else(|e| panic!("a {status} whose body is not JSON ({e}): {}", text(&resp)));
        assert!(error["error"].is_string(), "a {status} without an \"error\" string: {}", text(&resp));
    }
    if method == Method::POST && path == "/" && status == 200 {
        reads_back_once(&api, &client, &sent, &resp);
    }
}

/// A message the adapter accepted reads back byte for byte once per view it was given, then
/// is gone, while its receipt (from the create's answer) still says it was read.
fn reads_back_once(api: &Api, client: &ClientInfo, sent: &[u8], created: &Response<Bytes>) {
    let created: serde_json::Value = serde_json::from_slice(created.body()).expect("a create answers JSON");
    let id = created["id"].as_str().expect("a create answers an id");
    let receipt = created["receipt"].as_str().expect("a create answers a receipt");
    // The adapter skips fields it does not read as JavaScript's JSON.parse would (the reference
    // service's parser): a lone surrogate escape or a number past f64 in such a field is
    // accepted, where serde_json's Value refuses it. Then only exactly-once is checked. (Bytes
    // that are not UTF-8 are not excused: those are refused wherever they are.)
    let sent: Option<serde_json::Value> = match serde_json::from_slice(sent) {
        Ok(v) => Some(v),
        Err(e) => {
            let why = e.to_string();
            assert!(
                ["surrogate", "hex escape", "number out of range"].iter().any(|w| why.contains(w)),
                "an accepted body is not JSON: {why}"
            );
            None
        }
    };
    // A create that names no views gave one; an accepted `views` is a whole number.
    let views = match sent.as_ref().map(|s| &s["views"]) {
        Some(serde_json::Value::Null) | None => 1,
        Some(v) => v.as_f64().expect("an accepted views is a number") as u64,
    };
    let get = |api: &Api| {
        let req = Request::get(format!("/{id}")).body(Bytes::new()).unwrap();
        block_on(api.handle(req, client))
    };
    for left in (0..views).rev() {
        let read = get(api);
        if read.status() == 429 {
            return; // the budget was spent: nothing more to learn
        }
        assert_eq!(read.status(), 200, "an accepted message did not read back: {}", text(&read));
        let read: serde_json::Value = serde_json::from_slice(read.body()).expect("a read answers JSON");
        if let Some(sent) = &sent {
            assert_eq!(read["message"], sent["message"], "the message read back is not the one sent");
        }
        assert_eq!(read["views_left"], left, "the views left after a read");
    }
    let after = get(api);
    assert!(matches!(after.status().as_u16(), 404 | 429), "a read after the last view was {}", after.status());
    let req = Request::get(format!("/{id}/receipt"))
        .header("authorization", format!("Bearer {receipt}"))
        .body(Bytes::new())
        .unwrap();
    let answer = block_on(api.handle(req, client));
    if answer.status() != 429 {
        assert_eq!(answer.status(), 200, "the receipt after the last view: {}", text(&answer));
        let receipt: serde_json::Value = serde_json::from_slice(answer.body()).expect("a receipt answers JSON");
        assert_eq!(receipt["state"], "read", "the receipt after the last view: {receipt}");
    }
}

fn text(resp: &Response<Bytes>) -> String {
    format!("{} {:?}", resp.status(), String::from_utf8_lossy(resp.body()))
}

fn request(input: &[u8]) -> Option<Request<Bytes>> {
    let (head, body) = match find(input, b"\n\n") {
        Some(at) => (&input[..at], &input[at + 2..]),
        None => (input, &[][..]),
    };
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next()?;
    let (method, target) = match first.iter().position(|&b| b == b' ') {
        Some(at) => (&first[..at], &first[at + 1..]),
        None => (first, &b"/"[..]),
    };
    let mut req = Request::builder().method(Method::from_bytes(method).ok()?).uri(Uri::try_from(target).ok()?);
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(line[..colon].trim_ascii()),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        req = req.header(name, value);
    }
    req.body(Bytes::copy_from_slice(body)).ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn api(flags: u8) -> Api {
    let mut vars = vec![("CRYPT_RATE_LIMIT_MAX", if flags & flag::LIMITED != 0 { "2" } else { "0" })];
    if flags & flag::TOKENS != 0 {
        vars.push(("CRYPT_CREATE_TOKEN_HASHES", TOKEN_SHA256));
    }
    if flags & flag::CORS_LIST != 0 {
        vars.push(("CRYPT_CORS_ORIGINS", "https://a.example"));
    }
    if flags & flag::SMALL != 0 {
        vars.push(("CRYPT_MAX_MESSAGE_BYTES", "16"));
    }
    let settings = Settings::from_vars(vars).and_then(|s| s.api()).expect("the fuzz settings are valid");
    let clock = Arc::new(ManualClock::new(1_795_384_465_000));
    let vault = Vault::new(
        Arc::new(MemoryStore::new(1 << 20, clock.clone())),
        Arc::new(MemoryLimiter::bounded(16)),
        clock,
        Arc::new(FixedIds::new(&["fuzz1", "fuzz2"])),
        settings.policy.clone(),
    );
    Api::from_settings(vault, &settings)
}

/// The stored-value formats of the byte stores: a format-1 value (a message stored before
/// views and receipts) that decodes encodes back to the same bytes; any record that decodes
/// (format 1 or 2) encodes to bytes that decode back to the same record; and whatever a store
/// could write decodes back to itself.
pub fn stored(data: &[u8]) {
    if let Ok(held) = StoredMessage::decode(data.to_vec()) {
        assert_eq!(held.encode(), data, "decode then encode changed the bytes");
    }
    if let Ok(record) = Record::decode(data.to_vec()) {
        assert!(record.read_at.len() <= record.views as usize, "more views spent than asked for");
        assert_eq!(Record::decode(record.encode()).as_ref(), Ok(&record), "a decoded record did not read back");
    }
    let (instant, text) = data.split_at(data.len().min(8));
    let mut be = [0u8; 8];
    be[..instant.len()].copy_from_slice(instant);
    if let Ok(text) = std::str::from_utf8(text) {
        if let Ok(message) = Message::new(text.to_owned(), &Policy::default()) {
            let written = StoredMessage::new(message, u64::from_be_bytes(be));
            assert_eq!(
                StoredMessage::decode(written.encode()).as_ref(),
                Ok(&written),
                "a written value did not read back"
            );
        }
    }
    // Any bytes are a file (SPEC Part 2 item 11), and come back as that file.
    if let Ok(message) = Message::file(crypt_domain::Bytes::copy_from_slice(data), &Policy::default()) {
        let written =
            Record::new(&StoredMessage { message, expires_at: u64::from_be_bytes(be), views: 2, receipt: None });
        assert_eq!(Record::decode(written.encode()).as_ref(), Ok(&written), "a written file did not read back");
    }
}

/// The settings parser: `NAME=value` lines (the environment) when the first byte is even, a
/// TOML configuration file when it is odd. Every outcome is a value or a named error; a valid
/// set of settings also passes the checks of how they fit together, or names what does not.
pub fn settings(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let vars: Vec<(String, String)> = if kind % 2 == 0 {
        text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    } else {
        match Settings::file_vars("fuzz.toml", text) {
            Ok(vars) => vars.into_iter().collect(),
            Err(e) => return assert_eq!(e.setting, "CRYPT_CONFIG"),
        }
    };
    match Settings::from_vars(vars) {
        Ok(settings) => {
            let _ = settings.api();
            // The one place a password could leak: the settings' Debug must not depend on the
            // Redis URL at all.
            let mut other = settings.clone();
            other.redis_url = "redis://:other@elsewhere".into();
            assert_eq!(format!("{settings:?}"), format!("{other:?}"), "Debug shows the Redis URL");
        }
        Err(e) => {
            let names = Settings::names();
            assert!(
                e.setting.split(" and ").all(|n| names.contains(&n)),
                "an error names {:?}, which is not a setting",
                e.setting
            );
        }
    }
}

/// The client's decoders: the link fragment, the envelope's version and body. The input is a
/// fragment and an envelope separated by the first newline; the envelope is opened with the
/// fragment's key when it parses (never with a passphrase: PBKDF2's 600,000 rounds would make
/// each run take a second; `crypt1p:` stops at "passphrase required", before any crypto).
pub fn envelope(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (fragment, envelope) = text.split_once('\n').unwrap_or((text, ""));
    let key = match crypt_envelope::Fragment::decode(fragment) {
        Ok(f) => {
            assert_eq!(
                crypt_envelope::Fragment::decode(&f.encode()).as_ref(),
                Ok(&f),
                "a fragment did not survive encoding"
            );
            f.key
        }
        Err(_) => crypt_envelope::Key::from_bytes([7; 32]),
    };
    let needs = crypt_envelope::needs_passphrase(envelope);
    let opened = crypt_envelope::open(envelope, &key, None);
    match needs {
        Ok(true) => assert_eq!(opened, Err(crypt_envelope::EnvelopeError::PassphraseRequired)),
        Ok(false) => {}
        Err(e) => assert_eq!(opened, Err(e), "open and needs_passphrase disagree"),
    }
    if let Ok(plain) = opened {
        // Only an authentic envelope opens: sealing the plaintext again must open to it too.
        let again = crypt_envelope::seal(&plain, &key, None);
        assert_eq!(crypt_envelope::open(&again, &key, None), Ok(plain));
    }
}
