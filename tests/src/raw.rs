//! Hand-framed HTTP/1.1 over TCP, for what a polite client cannot send: bodies over the cap,
//! chunked bodies, headers one byte at a time.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back on a raw connection.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code, 0 when the connection closed without a status line.
    pub status: u16,
    /// Everything read, headers and body.
    pub text: String,
}

/// Connects to `authority`, writes `head` (the request line and headers, ending in a blank
/// line), then streams `body_chunks` in the background (ignoring write errors, since the server
/// may stop reading), and reads the response until the connection closes or `deadline`.
pub async fn raw_exchange(authority: &str, head: String, body_chunks: Vec<Vec<u8>>, deadline: Duration) -> RawResponse {
    let stream = TcpStream::connect(authority).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(head.as_bytes()).await.expect("write head");
    let writer = tokio::spawn(async move {
        for chunk in body_chunks {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        // Keep the write half open so the server's reply is not raced by our FIN.
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(wr);
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let _ = tokio::time::timeout(deadline, async {
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if response_complete(&buf) {
                        break;
                    }
                }
            }
        }
    })
    .await;
    writer.abort();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    RawResponse { status, text }
}

/// True once the headers and a Content-Length worth of body have arrived.
fn response_complete(buf: &[u8]) -> bool {
    let text = String::from_utf8_lossy(buf);
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
    let len = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().ok()))
        .flatten();
    len.is_some_and(|len| body.len() >= len)
}
