//! The `crypt` command and the web page read each other's secrets, with and without a
//! passphrase, on the self-hosted server (over Redis) and on the Worker (under `wrangler dev`),
//! in a real browser: headless Chromium driven by `web/tests/browser.mjs`. Neither the secrets
//! nor their keys ever reach the service: everything the server sent to Redis (`MONITOR`) and
//! everything the Worker's local KV holds on disk is searched for both. Loading a share link
//! burns nothing; each bad link and damaged secret shows a plain message and no plaintext.
//! Screenshots land in `target/screenshots/`.

use crypt_conformance::wrangler::WranglerDev;
use crypt_envelope::{Fragment, Key};
use crypt_redis_harness::RedisServer;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Runs `crypt` with `args`, stdin `input`, in a session of its own (no terminal).
fn crypt(args: &[&str], input: &[u8]) -> (Option<i32>, String, String) {
    let mut child = Command::new("setsid")
        .arg(env!("CARGO_BIN_EXE_crypt"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn passphrase_file(name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!("crypt-interop-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// Runs the browser script with `plan`; returns what it saw.
fn browser(plan: Value) -> Value {
    let mut child = Command::new("node")
        .arg(repo().join("web/tests/browser.mjs"))
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    child.stdin.take().unwrap().write_all(plan.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser script failed (scripts/test installs chromium and playwright-core):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

/// A plain HTTP/1.1 exchange; returns (status, body).
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = std::net::TcpStream::connect(host).unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // The head, then as many bytes as it declares: `wrangler dev` keeps the connection open for
    // seconds after the answer, so reading until it closes costs that long per request.
    let mut reader = BufReader::new(s);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert!(reader.read_line(&mut head).unwrap() > 0, "the connection closed within the head: {head}");
    }
    let length = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
        .map(|(_, v)| v.trim().parse::<usize>().unwrap());
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body).unwrap();
        }
        None => {
            reader.read_to_end(&mut body).unwrap();
        }
    }
    (head[9..12].parse().unwrap(), String::from_utf8(body).unwrap())
}

fn id_of(link: &str) -> String {
    link.split("/s/").nth(1).unwrap().split('#').next().unwrap().to_owned()
}

fn key_of(link: &str) -> String {
    link.split('#').nth(1).unwrap().trim_end_matches(".p").to_owned()
}

/// Stores `message` as is through the API, and returns its id.
fn store_raw(base: &str, message: &str) -> String {
    let (status, body) = http("POST", &format!("{base}/"), &[], &json!({ "message": message }).to_string());
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned()
}

/// Everything the interop scenario used, for the "the service never saw it" check.
struct Used {
    plaintexts: Vec<String>,
    keys: Vec<String>,
}

/// The whole scenario against one service at `base`; `label` names the screenshots.
fn scenario(base: &str, label: &str) -> Used {
    let right = passphrase_file(&format!("{label}-right"), "correct horse battery staple\n");
    let send = |secret: &str, passphrase: Option<&str>| -> String {
        let mut args = vec!["send", "--server", base];
        if let Some(p) = passphrase {
            args.extend(["--passphrase-file", p]);
        }
        let (code, out, err) = crypt(&args, secret.as_bytes());
        assert_eq!(code, Some(0), "{err}");
        out.trim().to_owned()
    };
    let cli_plain = "from the command line: the vault code is 7421\nsecond line";
    let cli_locked = "command line, behind a passphrase (emoji 🔐 too)";
    let page_plain = "from the web page: ünïcödé, \"quotes\" and <b>markup</b>";
    let page_locked = "web page, behind a passphrase";
    let visit_only = "loaded by a link preview, never revealed";
    let link_cli_plain = send(cli_plain, None);
    let link_cli_locked = send(cli_locked, Some(&right));
    let link_visit = send(visit_only, None);
    let never_read = "sent and never read, so it stays in the store";
    let link_never_read = send(never_read, Some(&right));
    let page_never_read = "written in the page and never read";

    // Bad links and damaged secrets, each with what the page must say.
    // Each bad link to a secret of its own: checking that it is still there reads it.
    let bad_key_link = |cut: fn(&str) -> String| {
        let link = send("kept safe by a bad link", None);
        let (url, key) = link.split_once('#').unwrap();
        format!("{url}#{}", cut(key))
    };
    let key = Key::generate();
    let frag = Fragment { key: key.clone(), passphrase: false }.encode();
    let frag_p = Fragment { key: key.clone(), passphrase: true }.encode();
    let good = crypt_envelope::seal(b"flipped", &key, None);
    let mut flipped = good.into_bytes();
    let at = flipped.len() - 3;
    flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let unknown = crypt_envelope::seal(b"future", &key, None).replacen("crypt1:", "crypt9:", 1);
    let locked_without_flag = crypt_envelope::seal(b"needs a passphrase the link forgot", &key, Some("sesame"));
    let plain_flagged = crypt_envelope::seal(b"no passphrase here", &key, None);
    let s = |m: &str| store_raw(base, m);
    let bad: Vec<(String, Vec<&str>, &str, bool)> = vec![
        // (link, passphrases typed, what the page says, is the secret still on the service after)
        (bad_key_link(|k| k[..20].to_owned()), vec![], "damaged", true),
        (bad_key_link(|k| format!("{k}AAAA")), vec![], "damaged", true),
        (format!("{base}/s/{}#{frag}", s(&flipped)), vec![], "Cannot decrypt", false),
        (format!("{base}/s/{}#{frag}", s(&unknown)), vec![], "does not know", false),
        (format!("{base}/s/{}#{frag}", s(&locked_without_flag)), vec![], "needs its passphrase", false),
        (format!("{base}/s/{}#{frag_p}", s(&plain_flagged)), vec!["anything"], "not sent with a passphrase", false),
        (
            format!("{base}/s/{}#{frag}", s(&crypt_envelope::seal(b"x", &key, None))).replace(&frag, ""),
            vec![],
            "has no key",
            false,
        ),
    ];

    let mut open = vec![
        json!({ "link": link_cli_plain }),
        json!({ "link": link_cli_locked, "passphrases": ["Tr0ub4dor&3", "correct horse battery staple"] }),
    ];
    open.extend(bad.iter().map(|(link, pp, _, _)| json!({ "link": link, "passphrases": pp })));
    open.push(json!({ "link": format!("{base}/s/{}#{frag}", s("stored as plain text by curl")) }));
    // Reads that go wrong on the way: an answer cut short (the service has burned the secret)
    // and a connection refused (the request never left the browser).
    let cut_read = "read, and its answer cut off on the way back";
    let refused_read = "never fetched: the connection was refused";
    let (link_cut, link_refused) = (send(cut_read, None), send(refused_read, None));
    open.push(json!({ "link": link_cut, "fault": "cut" }));
    open.push(json!({ "link": link_refused, "fault": "refused" }));
    // A secret for three readers, sent with its receipt: one reads it in the page, then the
    // sender checks the receipt page and deletes it.
    let team = "for a team of three: the staging password";
    let (code, out, err) = crypt(&["send", "--server", base, "--views", "3", "--json"], team.as_bytes());
    assert_eq!(code, Some(0), "{err}");
    let sent: Value = serde_json::from_str(&out).unwrap();
    let (link_team, receipt_team) =
        (sent["link"].as_str().unwrap().to_owned(), sent["receipt_link"].as_str().unwrap().to_owned());
    open.push(json!({ "link": link_team }));
    let wrong_receipt = format!("{}#{}", receipt_team.split('#').next().unwrap(), "W".repeat(32));
    // Files: one chosen in the page and opened by the CLI, one sent by the CLI (with a
    // passphrase and a note) and saved from the page, and one too large for the page to send.
    let files = std::env::temp_dir().join(format!("crypt-interop-files-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&files);
    std::fs::create_dir_all(&files).unwrap();
    let file_bytes = |marker: &str, len: usize| -> Vec<u8> {
        let mut bytes = marker.as_bytes().to_vec();
        bytes.extend((0..len).map(|i| (i * 131 + i / 977) as u8));
        bytes
    };
    let (page_file_marker, cli_file_marker) = ("PAGE-FILE-CONTENTS-MARKER", "CLI-FILE-CONTENTS-MARKER");
    let (page_file_note, cli_file_note) = ("the signed contract, from the page", "the deploy key, from the terminal");
    let page_file = files.join("contract-2026.pdf");
    std::fs::write(&page_file, file_bytes(page_file_marker, 300_000)).unwrap();
    let cli_file = files.join("deploy_ed25519");
    std::fs::write(&cli_file, file_bytes(cli_file_marker, 150_000)).unwrap();
    let too_large = files.join("too-large.iso");
    std::fs::write(&too_large, vec![0u8; 11 << 20]).unwrap();
    let cli_file_arg = cli_file.to_string_lossy().into_owned();
    let (code, out, err) = crypt(
        &["send", "--server", base, "--file", &cli_file_arg, "--note", cli_file_note, "--views", "2"]
            .into_iter()
            .chain(["--passphrase-file", right.as_str()])
            .collect::<Vec<_>>(),
        b"",
    );
    assert_eq!(code, Some(0), "{err}");
    let link_cli_file = out.trim().to_owned();
    let saved_from_page = files.join("saved-from-page");
    let plan = json!({
        "base": base,
        "shots": repo().join(format!("target/screenshots/{label}")).to_string_lossy(),
        "compose": [
            { "secret": page_plain, "views": 2 },
            { "secret": page_locked, "passphrase": "correct horse battery staple" },
            { "secret": page_never_read },
        ],
        "visit": [link_visit],
        "open": open,
        "composeFaults": ["cut", "refused"],
        "keyboard": { "secret": "typed without a mouse" },
        "languages": {
            "codes": ["en", "ar", "de", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "sv", "tr", "uk", "zh"],
            "reveal": format!("/s/abcde#{frag_p}"),
            "receipt": "/r/abcde#WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW",
        },
        "fileCompose": [{ "path": page_file, "note": page_file_note }],
        "fileTooLarge": too_large,
        "fileOpen": [{ "link": link_cli_file, "passphrase": "correct horse battery staple", "saveTo": saved_from_page }],
        "receipts": [
            { "link": receipt_team, "press": ["check", "delete", "again"] },
            { "link": "composed:0", "press": ["check"] },
            { "link": wrong_receipt, "press": ["check"] },
            { "link": receipt_team.split('#').next().unwrap(), "press": [] },
        ],
    });
    std::fs::create_dir_all(repo().join("target/screenshots")).unwrap();
    let seen = browser(plan);
    assert_eq!(seen["console"], json!([]), "the page logged errors");
    // Every page in every language on a 360 px phone: the browser's language is the page's, each
    // translated element says its catalogue's sentence (none left in English), nothing scrolls
    // sideways, Arabic runs right to left; the reader's choice is remembered.
    let languages = seen["languages"].as_array().unwrap();
    assert_eq!(languages.len(), 15 * 3, "{languages:?}");
    for l in languages {
        let code = l["code"].as_str().unwrap();
        assert_eq!(l["lang"], code, "{l}");
        assert_eq!(l["dir"], if code == "ar" { "rtl" } else { "ltr" }, "{l}");
        assert_eq!(l["mismatches"], json!([]), "{l}");
        assert_eq!(l["english"], json!([]), "left in English: {l}");
        assert!(l["scrollWidth"].as_u64() <= l["width"].as_u64(), "scrolls sideways on a phone: {l}");
    }
    assert_eq!(seen["remembered"], json!(["fr", "fr"]), "the reader's choice was not remembered");
    // With the keyboard alone: every control is reached by Tab, Enter does what a click does,
    // and focus lands on what changed.
    let kb = &seen["keyboard"];
    for reached in ["reachedSecret", "reachedCreate", "reachedCopy", "reachedReveal", "reachedCopySecret"] {
        assert_eq!(kb[reached], true, "{reached}: {kb}");
    }
    assert_eq!(
        (kb["focusAfterCreate"].as_str(), kb["focusAfterReveal"].as_str()),
        (Some("result-title"), Some("revealed-title")),
        "{kb}"
    );
    assert_eq!(kb["text"], "typed without a mouse", "{kb}");
    // axe-core found nothing on any state of any page, light or dark.
    let audits = seen["axe"].as_array().unwrap();
    assert!(audits.len() >= 30, "too few states audited: {}", audits.len());
    let failing: Vec<&Value> = audits.iter().filter(|a| a["violations"] != json!([])).collect();
    assert!(failing.is_empty(), "accessibility violations: {}", serde_json::to_string_pretty(&failing).unwrap());

    // The CLI's secrets open in the page; a wrong passphrase could be retried in the page.
    let opened = seen["opened"].as_array().unwrap();
    assert_eq!(opened[0]["text"], cli_plain);
    assert_eq!(opened[0]["plainWarning"], false);
    assert_eq!(opened[1]["text"], cli_locked, "{:?}", opened[1]);
    for (i, (link, _, says, still_there)) in bad.iter().enumerate() {
        let o = &opened[2 + i];
        assert_eq!(o["text"], Value::Null, "nothing is ever shown for {link}: {o}");
        let error = o["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{link}: expected {says:?}, saw {o}");
        assert_eq!(http("GET", &format!("{base}/{}", id_of(link)), &[], "").0 == 200, *still_there, "{link}");
    }
    let plain = &opened[2 + bad.len()];
    assert_eq!(
        (plain["text"].as_str(), plain["plainWarning"].as_bool()),
        (Some("stored as plain text by curl"), Some(true))
    );
    let (cut, refused) = (&opened[3 + bad.len()], &opened[4 + bad.len()]);
    // The reveal page says how many views are left, and that it is not destroyed yet.
    let team_read = &opened[5 + bad.len()];
    assert_eq!(team_read["text"], team, "{team_read}");
    assert_eq!(team_read["burned"], false, "{team_read}");
    assert!(team_read["viewsLeft"].as_str().unwrap_or_default().contains("can open it 2 more times"), "{team_read}");
    assert_eq!(opened[0]["viewsLeft"], Value::Null, "a one-view secret has no views left: {}", opened[0]);
    assert_eq!(opened[0]["burned"], true, "{}", opened[0]);
    assert_eq!(cut["text"], Value::Null, "{cut}");
    assert!(cut["error"].as_str().unwrap_or_default().contains("cut off on its way here"), "{cut}");
    assert!(cut["error"].as_str().unwrap_or_default().contains("probably destroyed"), "{cut}");
    assert_eq!(
        http("GET", &format!("{base}/{}", id_of(&link_cut)), &[], "").0,
        404,
        "the cut read reached the service"
    );
    assert_eq!(refused["text"], Value::Null, "{refused}");
    assert!(refused["error"].as_str().unwrap_or_default().contains("Could not reach the service"), "{refused}");
    assert_eq!(
        http("GET", &format!("{base}/{}", id_of(&link_refused)), &[], "").0,
        200,
        "a refused read burned nothing"
    );
    // Creates whose answer never arrives whole show no link, only why.
    let faults = seen["composeFaults"].as_array().unwrap();
    assert_eq!(faults.len(), 2, "{faults:?}");
    for (fault, says) in faults.iter().zip(["cut off on its way here", "Could not reach the service"]) {
        assert_eq!(fault["link"], Value::Null, "{fault}");
        assert!(fault["error"].as_str().unwrap_or_default().contains(says), "{fault}");
    }

    // The sender's receipt pages: loading one asks the service nothing; "Check" shows what
    // happened, "Delete now" destroys the secret, and a wrong receipt is said plainly.
    let receipts = seen["receipts"].as_array().unwrap();
    for r in receipts {
        assert_eq!(r["loadRequests"], json!([]), "loading a receipt page asked the service: {r}");
    }
    let team_seen = receipts[0]["seen"].as_array().unwrap();
    assert_eq!(
        (team_seen[0]["title"].as_str(), team_seen[0]["reads"].as_u64()),
        (Some("Opened"), Some(1)),
        "{team_seen:?}"
    );
    assert!(team_seen[0]["detail"].as_str().unwrap().contains("open it 2 more times"), "{team_seen:?}");
    assert_eq!(team_seen[0]["deletable"], true);
    assert_eq!((team_seen[1]["title"].as_str(), team_seen[1]["status"].as_str()), (Some("Deleted"), Some("Deleted.")));
    assert_eq!(team_seen[1]["deletable"], false);
    assert_eq!(team_seen[2]["title"], "Deleted", "{team_seen:?}");
    let (code, _, err) = crypt(&["open", &link_team], b"");
    assert_eq!(code, Some(4), "a deleted secret still opened: {err}");
    let own = &receipts[1]["seen"][0];
    assert_eq!(own["title"], "Not opened yet", "{own}");
    assert!(own["detail"].as_str().unwrap().contains("can open it 2 times"), "{own}");
    let wrong = &receipts[2]["seen"][0];
    assert!(wrong["error"].as_str().unwrap_or_default().starts_with("No such receipt"), "{wrong}");
    assert_eq!(wrong["title"], Value::Null, "{wrong}");
    // A receipt link without its receipt says so at once, and offers nothing to press.
    let incomplete = &receipts[3];
    assert!(
        incomplete["loadError"].as_str().unwrap_or_default().starts_with("This receipt link is incomplete"),
        "{incomplete}"
    );
    assert_eq!(incomplete["checkDisabled"], true, "{incomplete}");
    assert_eq!(receipts[0]["loadError"], Value::Null, "{}", receipts[0]);

    // The page's secrets open with the CLI, and its receipt link works with `crypt status`.
    let composed: Vec<String> =
        seen["composed"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()).collect();
    let receipt_links: Vec<String> =
        seen["receiptLinks"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()).collect();
    assert!(receipt_links[0].starts_with(&format!("{base}/r/{}#", id_of(&composed[0]))), "{receipt_links:?}");
    assert_eq!(seen["composedSaid"][0]["label"], "Share this link. It works 2 times.");
    assert_eq!(seen["composedSaid"][1]["label"], "Share this link. It works once.");
    let (code, out, err) = crypt(&["status", &receipt_links[0]], b"");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("unread; 2 views left"), "{out}");
    assert!(composed[0].starts_with(&format!("{base}/s/")) && !composed[0].ends_with(".p"), "{composed:?}");
    assert!(composed[1].ends_with(".p"), "{composed:?}");
    let (code, out, err) = crypt(&["open", &composed[0]], b"");
    assert_eq!((code, out.as_str()), (Some(0), page_plain), "{err}");
    assert!(err.contains("can be opened 1 time more"), "{err}");
    let (code, out, err) = crypt(&["open", &composed[1], "--passphrase-file", &right], b"");
    assert_eq!((code, out.as_str()), (Some(0), page_locked), "{err}");

    // The QR codes of the share link and the receipt link, decoded from a screenshot by a real
    // decoder, are the links; drawing them asked nothing of anyone.
    for (shot, link) in [("link", &composed[0]), ("receipt", &receipt_links[0])] {
        let path = seen["qrShots"][shot].as_str().unwrap();
        let out = Command::new("zbarimg").args(["--raw", "-q", path]).output().expect("zbarimg (zbar-tools) runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), link.as_str(), "the {shot} QR code in {path}");
    }
    for request in seen["composeRequests"].as_array().unwrap() {
        let request = request.as_str().unwrap();
        assert!(
            request == "GET /" || request == "POST /" || request.starts_with("GET /assets/"),
            "the compose page asked for {request}"
        );
    }

    // Files both ways: the CLI's file is saved from the page under its name, with its note and
    // its bytes; the page's file opens with the CLI; the page refuses a file too large without
    // sending anything.
    let opened_file = &seen["fileOpened"][0];
    assert_eq!(opened_file["name"], "deploy_ed25519", "{opened_file}");
    assert_eq!(opened_file["suggested"], "deploy_ed25519", "{opened_file}");
    assert_eq!(opened_file["note"], cli_file_note, "{opened_file}");
    assert!(opened_file["viewsLeft"].as_str().unwrap_or_default().contains("1 more time"), "{opened_file}");
    assert!(std::fs::read(&saved_from_page).unwrap() == std::fs::read(&cli_file).unwrap(), "the saved file differs");
    let refused_file = &seen["fileTooLarge"];
    assert!(
        refused_file["error"].as_str().unwrap_or_default().contains("at most 10 MB fit once encrypted"),
        "{refused_file}"
    );
    assert_eq!(refused_file["posts"], 0, "a file too large was sent: {refused_file}");
    let page_file_link = seen["fileComposed"][0].as_str().unwrap().to_owned();
    let into = files.join("from-the-page");
    std::fs::create_dir_all(&into).unwrap();
    let (code, _, err) = crypt(&["open", &page_file_link, "-o", &into.to_string_lossy()], b"");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(page_file_note), "{err}");
    assert!(
        std::fs::read(into.join("contract-2026.pdf")).unwrap() == std::fs::read(&page_file).unwrap(),
        "the page's file opened changed"
    );
    let _ = std::fs::remove_dir_all(&files);

    // Loading a link burned nothing: it still reads, once.
    let (status, body) = http("GET", &format!("{base}/{}", id_of(&link_visit)), &[], "");
    assert_eq!(status, 200, "loading the share link burned it: {body}");

    let mut keys: Vec<String> =
        [&link_cli_plain, &link_cli_locked, &link_visit, &link_never_read, &link_cut, &link_refused]
            .iter()
            .map(|l| key_of(l))
            .collect();
    keys.extend(composed.iter().map(|l| key_of(l)));
    // Receipt tokens are stored only as their digests.
    keys.extend([&link_team, &receipt_team].iter().map(|l| key_of(l)));
    keys.extend(receipt_links.iter().map(|l| key_of(l)));
    keys.extend([&link_cli_file, &page_file_link].iter().map(|l| key_of(l)));
    Used {
        plaintexts: [
            cli_plain,
            cli_locked,
            page_plain,
            page_locked,
            visit_only,
            never_read,
            page_never_read,
            "a create whose answer is cut",
            team,
            page_file_marker,
            cli_file_marker,
            page_file_note,
            cli_file_note,
            "contract-2026.pdf",
            "deploy_ed25519",
            "typed without a mouse",
        ]
        .map(str::to_owned)
        .to_vec(),
        keys,
    }
}

fn assert_never_seen(haystack: &str, used: &Used, what: &str) {
    assert!(!haystack.is_empty(), "{what} is empty: the check would prove nothing");
    for secret in &used.plaintexts {
        for line in secret.lines() {
            assert!(!haystack.contains(line), "{what} holds the plaintext {line:?}");
        }
    }
    for key in &used.keys {
        assert!(!haystack.contains(key.as_str()), "{what} holds a key");
    }
}

#[test]
fn page_and_cli_read_each_other_on_the_server_and_redis_never_sees_a_secret_or_key() {
    let redis = RedisServer::start();
    // Everything the server sends to Redis, as Redis received it.
    let mut monitor = Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "monitor"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli runs");
    let seen_by_redis = Arc::new(Mutex::new(String::new()));
    let sink = seen_by_redis.clone();
    let reader = BufReader::new(monitor.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
        }
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = crypt_server::Config::from_vars([
        ("CRYPT_LISTEN", "127.0.0.1:0".to_owned()),
        ("CRYPT_RATE_LIMIT_MAX", "0".to_owned()),
        ("CRYPT_STORE", "redis".to_owned()),
        ("CRYPT_REDIS_URL", redis.url()),
    ])
    .unwrap();
    let server = rt.block_on(crypt_server::spawn(config)).unwrap();
    let used = scenario(&server.url(), "server");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = monitor.kill();
    let _ = monitor.wait();
    let log = seen_by_redis.lock().unwrap().clone();
    assert!(
        log.contains("EVALSHA") && log.contains("crypt1"),
        "MONITOR saw the traffic: {}",
        &log[..log.len().min(500)]
    );
    assert_never_seen(&log, &used, "what the server sent to Redis");
    rt.block_on(server.shutdown());
}

#[test]
fn page_and_cli_read_each_other_on_the_worker_and_kv_never_holds_a_secret_or_key() {
    let dev = WranglerDev::start(&HashMap::from([("CRYPT_RATE_LIMIT_MAX".to_owned(), "0".to_owned())]));
    let used = scenario(&dev.url(), "worker");
    // Everything the local KV wrote to disk.
    let mut stored = String::new();
    let mut stack = vec![dev.state_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                stored.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    assert!(stored.contains("crypt1"), "the unread secrets were found in the KV state on disk");
    assert_never_seen(&stored, &used, "the Worker's KV on disk");
    assert_never_seen(&format!("(log) {}", dev.output.lock().unwrap().join("\n")), &used, "the Worker's log");
}
