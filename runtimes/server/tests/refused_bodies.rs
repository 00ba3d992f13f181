//! A refused body always reaches the client as a 413, whatever the client: curl, Python's
//! `http.client` and a raw socket that keeps writing, each 20 times with a Content-Length body
//! and 20 times chunked, 3 MiB against the default 1 MiB cap. Before the server drained refused
//! bodies (runtimes/server/src/linger.rs), Python saw BrokenPipe about one time in three.

mod common;
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ATTEMPTS: usize = 20;
const BODY: usize = 3 * 1024 * 1024;

async fn start() -> crypt_server::Running {
    crypt_server::spawn(crypt_server::Config::ephemeral()).await.expect("crypt starts")
}

/// After every client is done, the server still serves.
async fn still_serving(crypt: &crypt_server::Running) {
    let mut s = tokio::net::TcpStream::connect(crypt.addr()).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_always_reads_the_413() {
    let crypt = start().await;
    let file = std::env::temp_dir().join(format!("crypt-refused-{}.json", std::process::id()));
    std::fs::write(&file, vec![b'a'; BODY]).unwrap();
    let url = crypt.url();
    let data = format!("@{}", file.display());
    let outcomes = tokio::task::spawn_blocking(move || {
        let mut outcomes = Vec::new();
        for chunked in [false, true] {
            for _ in 0..ATTEMPTS {
                let mut cmd = Command::new("curl");
                cmd.args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}", "--data-binary", &data]);
                cmd.args(["-H", "Content-Type: application/json"]);
                if chunked {
                    cmd.args(["-H", "Transfer-Encoding: chunked"]);
                }
                let out = cmd.arg(&url).output().expect("curl runs (scripts/test installs it when missing)");
                outcomes.push((chunked, String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code()));
            }
        }
        outcomes
    })
    .await
    .unwrap();
    let _ = std::fs::remove_file(file);
    for (chunked, out, code) in &outcomes {
        assert!(
            out.ends_with("\n413") && out.contains(r#""error":"Request body too large""#) && *code == Some(0),
            "chunked={chunked}: curl exited {code:?} with {out:?}"
        );
    }
    still_serving(&crypt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_http_client_always_reads_the_413() {
    let crypt = start().await;
    let authority = crypt.addr().to_string();
    let lines =
        tokio::task::spawn_blocking(move || common::python_posts(&authority, BODY, b'a', "application/json", ATTEMPTS))
            .await
            .unwrap();
    for line in lines {
        assert!(line.contains(r#" 413 {"error":"Request body too large""#), "an attempt did not read the 413: {line}");
    }
    still_serving(&crypt).await;
}

/// Writes a body that never ends (up to 32 MiB) while reading: the 413 must arrive, and the
/// connection must end, while the client is still writing.
async fn keep_writing(addr: std::net::SocketAddr, chunked: bool) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let head = if chunked {
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned()
    } else {
        format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", 32 << 20)
    };
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let mut chunk = Vec::new();
        if chunked {
            chunk.extend_from_slice(format!("{:x}\r\n", 65_536).as_bytes());
        }
        chunk.extend(std::iter::repeat_n(b'a', 65_536));
        if chunked {
            chunk.extend_from_slice(b"\r\n");
        }
        for _ in 0..512 {
            wr.write_all(&chunk).await?;
        }
        wr.shutdown().await
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), rd.read_to_end(&mut answer)).await;
    writer.abort();
    assert!(read.is_ok(), "the connection never ended");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_writing_always_reads_the_413() {
    let crypt = start().await;
    for chunked in [false, true] {
        for attempt in 0..ATTEMPTS {
            let answer = keep_writing(crypt.addr(), chunked).await;
            assert!(answer.starts_with("HTTP/1.1 413"), "chunked={chunked} attempt {attempt}: {answer:?}");
            assert!(answer.contains("connection: close"), "{answer}");
            assert!(answer.ends_with(r#""error":"Request body too large","detail":"the request body is larger than this service accepts (CRYPT_MAX_BODY_BYTES)"}"#), "{answer}");
        }
    }
    still_serving(&crypt).await;
}
