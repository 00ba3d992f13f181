//! Files (SPEC Part 2 item 11) on the server as an operator meets them: a file over the limit
//! is a 413 that Python's `http.client` reads, with Content-Length and chunked; and 120 uploads
//! of 9 MiB at once are each answered, with the server's memory held by
//! `CRYPT_MAX_INFLIGHT_BODY_BYTES`.

mod common;
use common::{client, Crypt};

const MIB: usize = 1024 * 1024;

/// `POST /` of `bytes` as a file.
async fn upload(base: &str, bytes: Vec<u8>) -> reqwest::Response {
    client()
        .post(format!("{base}/"))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

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
    // The metrics count what was stored, by kind, and every body's share was given back.
    let metrics = client().get(format!("{}/metrics", crypt.base)).send().await.unwrap().text().await.unwrap();
    let stored = counts.get(&200).copied().unwrap_or(0) * 9 * MIB;
    assert!(metrics.contains(&format!("crypt_message_stored_bytes_total{{kind=\"file\"}} {stored}\n")), "{metrics}");
    assert!(metrics.contains("crypt_inflight_body_bytes 0\n"), "{metrics}");
}

/// An upload that finds the in-flight bound full waits for the body timeout, then is answered
/// 503 `Server busy` (and the client reads it); once the bound has room, uploads go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_finds_the_bound_full_waits_then_is_told_the_server_is_busy() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let crypt = Crypt::start_with(&[
        ("CRYPT_RATE_LIMIT_MAX", "0"),
        ("CRYPT_MAX_INFLIGHT_BODY_BYTES", &(10 * MIB + 1024 * 1024).to_string()),
        ("CRYPT_BODY_TIMEOUT_MS", "1500"),
    ]);
    let authority = crypt.base.trim_start_matches("http://").to_owned();
    // Two slow uploads each declare 10 MiB and send a little: the first holds its share while it
    // trickles, the second waits for it (the wait is first come, first served), and then holds
    // it for its own body timeout.
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        10 * MIB
    );
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(&authority).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&[1; 1024]).await.unwrap();
        slow.push(s);
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    let started = std::time::Instant::now();
    let busy = upload(&crypt.base, vec![2u8; 2 * MIB]).await;
    let waited = started.elapsed();
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    assert!(busy.text().await.unwrap().contains(r#""error":"Server busy""#));
    assert!(waited >= std::time::Duration::from_millis(1000), "it did not wait: {waited:?}");
    // A small JSON create fits beside the held share, and is served meanwhile.
    let text = client().post(format!("{}/", crypt.base)).body(r#"{"message":"small"}"#).send().await.unwrap();
    assert_eq!(text.status(), 200);
    // The slow uploads time out (408) and give their shares back: a large upload goes through.
    for mut s in slow {
        let mut answer = String::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_string(&mut answer)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    let after = upload(&crypt.base, vec![3u8; 2 * MIB]).await;
    assert_eq!(after.status(), 200);
    let metrics = client().get(format!("{}/metrics", crypt.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("crypt_body_busy_refusals_total 1\n"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_http_client_reads_the_413_of_a_file_over_the_limit() {
    let crypt = Crypt::start_with(&[("CRYPT_RATE_LIMIT_MAX", "0")]);
    let authority = crypt.base.trim_start_matches("http://").to_owned();
    let lines = tokio::task::spawn_blocking(move || {
        common::python_posts(&authority, 11 * MIB, 0xa5, "application/octet-stream", 5)
    })
    .await
    .unwrap();
    for line in lines {
        assert!(line.contains(r#" 413 {"error":"File exceeds maximum size of 10MB""#), "{line}");
    }
    let alive = client().get(format!("{}/healthz", crypt.base)).send().await.unwrap();
    assert_eq!(alive.status(), 200);
}
