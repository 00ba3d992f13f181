//! Files (SPEC Part 2 item 11) on the server as an operator meets them: a file over the limit
//! is a 413 that Python's `http.client` reads, with Content-Length and chunked; and 120 uploads
//! of 9 MiB at once are each answered, with the server's memory held by
//! `CRYPT_MAX_INFLIGHT_BODY_BYTES`.

mod common;
use common::{client, Crypt};
use std::process::Command;

const MIB: usize = 1024 * 1024;

/// The server's peak resident memory (VmHWM), in bytes.
fn peak_rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("Linux /proc");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_uploads_at_once_are_each_answered_and_memory_stays_bounded() {
    let inflight = 64 * MIB;
    let capacity = 96 * MIB;
    let crypt = Crypt::start_with(&[
        ("CRYPT_RATE_LIMIT_MAX", "0"),
        ("CRYPT_MAX_INFLIGHT_BODY_BYTES", &inflight.to_string()),
        ("CRYPT_MEMORY_CAPACITY_BYTES", &capacity.to_string()),
        ("CRYPT_BODY_TIMEOUT_MS", "3000"),
    ]);
    let before = peak_rss(crypt.pid());
    // One buffer shared by every request: the test itself holds 9 MiB, not 1 GiB.
    let shared = bytes::Bytes::from(vec![0x5a_u8; 9 * MIB]);
    let http = client();
    let uploads = (0..120).map(|_| {
        let (http, url, shared) = (http.clone(), format!("{}/", crypt.base), shared.clone());
        async move {
            let resp = http.post(url).header("content-type", "application/octet-stream").body(shared).send().await;
            match resp {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    Ok((status, text))
                }
                Err(e) => Err(e.to_string()),
            }
        }
    });
    let answers = futures::future::join_all(uploads).await;
    let peak = peak_rss(crypt.pid());
    let mut counts = std::collections::BTreeMap::new();
    for answer in &answers {
        let (status, text) = answer.as_ref().unwrap_or_else(|e| panic!("an upload got no answer: {e}"));
        match status {
            200 => assert!(text.contains(r#""id":"#), "{text}"),
            503 => assert!(text.contains(r#""error":"Server busy""#), "{text}"),
            507 => assert!(text.contains(r#""error":"Storage full""#), "{text}"),
            other => panic!("unexpected {other}: {text}"),
        }
        *counts.entry(*status).or_insert(0) += 1;
    }
    eprintln!("120 uploads of 9 MiB: {counts:?}; peak RSS {} MiB (at start {} MiB)", peak / MIB, before / MIB);
    assert!(counts.get(&200).copied().unwrap_or(0) >= 10, "the store had room for ten: {counts:?}");
    // What may be held: the bodies in flight, the stored files, the process's own, and room
    // for each connection's read buffer and the allocator. Measured here: 248 MiB with this
    // bound, 799 MiB with it raised out of the way (2 GiB): the bound is what holds it.
    let bound = inflight + capacity + before + 128 * MIB;
    assert!(peak < bound, "peak RSS {} MiB over {} MiB", peak / MIB, bound / MIB);
    let alive = client().get(format!("{}/healthz", crypt.base)).send().await.unwrap();
    assert_eq!(alive.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_http_client_reads_the_413_of_a_file_over_the_limit() {
    let crypt = Crypt::start_with(&[("CRYPT_RATE_LIMIT_MAX", "0")]);
    let script = r#"
import http.client, sys
host, port = sys.argv[1].rsplit(":", 1)
body = b"\xa5" * (11 * 1024 * 1024)
for mode in ("length", "chunked"):
    for i in range(5):
        c = http.client.HTTPConnection(host, int(port), timeout=20)
        headers = {"Content-Type": "application/octet-stream"}
        try:
            if mode == "length":
                c.request("POST", "/", body=body, headers=headers)
            else:
                chunks = (body[j:j + 65536] for j in range(0, len(body), 65536))
                c.request("POST", "/", body=chunks, headers=headers, encode_chunked=True)
            r = c.getresponse()
            print(mode, r.status, r.read().decode())
        except Exception as e:
            print(mode, "failed", repr(e))
        finally:
            c.close()
"#;
    let authority = crypt.base.trim_start_matches("http://").to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3").args(["-c", script, &authority]).output().expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 10, "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for line in stdout.lines() {
        assert!(line.contains(r#" 413 {"error":"File exceeds maximum size of 10MB""#), "{line}");
    }
    let alive = client().get(format!("{}/healthz", crypt.base)).send().await.unwrap();
    assert_eq!(alive.status(), 200);
}
