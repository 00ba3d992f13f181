//! Connection lifetimes under the header timeout, over real sockets: idle and slow clients are
//! closed, busy ones are not, and time spent in a handler (here: reading a slow body) never
//! counts against the client.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(header_timeout: Duration) -> crypt_server::Running {
    let mut settings = crypt_server::Config::ephemeral();
    settings.header_timeout = header_timeout;
    settings.body_timeout = Duration::from_secs(20);
    crypt_server::spawn(settings).await.expect("crypt starts")
}

/// Reads one response (headers and a `Content-Length` body) from a kept-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("a response within 10 s")
            .expect("read");
        assert!(n > 0, "the server closed the connection instead of answering");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + length {
                return text.into_owned();
            }
        }
    }
}

/// Waits for the server to close `stream`; returns how long that took from `since`.
async fn closed_after(stream: &mut TcpStream, since: Instant) -> Duration {
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(15), stream.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => return since.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the connection was still open after {:?}", since.elapsed()),
        }
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_header_timeout() {
    let crypt = start(Duration::from_millis(800)).await;
    let mut stream = TcpStream::connect(crypt.addr()).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    let answered = Instant::now();
    let held = closed_after(&mut stream, answered).await;
    assert!(held >= Duration::from_millis(700), "closed too early: {held:?}");
    crypt.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_never_sends_a_byte_is_closed() {
    let crypt = start(Duration::from_millis(800)).await;
    let opened = Instant::now();
    let mut stream = TcpStream::connect(crypt.addr()).await.unwrap();
    let held = closed_after(&mut stream, opened).await;
    assert!(held >= Duration::from_millis(700), "closed too early: {held:?}");
    crypt.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_keeps_sending_requests_outlives_the_timeout() {
    let timeout = Duration::from_millis(1000);
    let crypt = start(timeout).await;
    let mut stream = TcpStream::connect(crypt.addr()).await.unwrap();
    let opened = Instant::now();
    let mut served = 0;
    while opened.elapsed() < 3 * timeout {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"), "request {served}");
        served += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(served >= 10, "{served}");
    crypt.shutdown().await;
}

#[tokio::test]
async fn a_slow_body_is_bounded_by_the_body_timeout_not_the_header_timeout() {
    let crypt = start(Duration::from_millis(500)).await;
    let mut stream = TcpStream::connect(crypt.addr()).await.unwrap();
    let body = br#"{"message":"uploaded slowly, well past the header timeout"}"#;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    for piece in body.chunks(body.len() / 6 + 1) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        stream.write_all(piece).await.unwrap();
    }
    assert!(started.elapsed() > Duration::from_millis(1000));
    let resp = read_response(&mut stream).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains(r#""id":""#), "{resp}");
    crypt.shutdown().await;
}
