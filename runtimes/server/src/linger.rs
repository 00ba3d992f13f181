//! Closing a connection whose request body was refused without destroying the answer.
//!
//! When the server answers 413 before it has read a body, the client is usually still
//! sending. Closing the socket then makes the kernel answer the client's next segments with a
//! reset, and a reset can reach the client before it has read the 413: it sees "connection
//! reset" or "broken pipe" instead of the answer (Python's `http.client` did, about one time
//! in three with a 3 MiB body). Mature servers close such a connection the way nginx's
//! `lingering_close` does, and so does this: the answer goes out with `Connection: close`,
//! then the write side is shut down (the client sees the answer and an end of stream), and
//! what the client still sends is read and thrown away for a bounded time and size before
//! the socket is closed.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The longest a refused body is drained after the answer.
const LINGER_TIME: Duration = Duration::from_secs(10);
/// A client silent for this long has stopped sending: close.
const LINGER_IDLE: Duration = Duration::from_secs(2);
/// The most bytes drained; past that the client is sending far more than any answer is worth.
const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// A connection's socket that, once told to [`LingerFlag::set`], is drained in a task of its
/// own when the connection is done with it, instead of being closed at once.
#[derive(Debug)]
pub(crate) struct Lingering {
    stream: Option<TcpStream>,
    flag: Arc<LingerFlag>,
}

/// Set by the request handler when it refuses a body it has not read.
#[derive(Debug, Default)]
pub(crate) struct LingerFlag(AtomicBool);

impl LingerFlag {
    pub(crate) fn set(&self) {
        self.0.store(true, Relaxed);
    }
}

impl Lingering {
    pub(crate) fn new(stream: TcpStream, flag: Arc<LingerFlag>) -> Self {
        Self { stream: Some(stream), flag }
    }

    fn stream(&mut self) -> &mut TcpStream {
        // Taken only in `drop`.
        self.stream.as_mut().unwrap_or_else(|| unreachable!("the stream is present until drop"))
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        if !self.flag.0.load(Relaxed) {
            return;
        }
        if let (Some(stream), Ok(runtime)) = (self.stream.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(drain(stream));
        }
    }
}

/// Shuts the write side (the answer is already out) and reads until the client stops, is
/// silent for [`LINGER_IDLE`], or [`LINGER_TIME`] or [`LINGER_BYTES`] run out.
async fn drain(mut stream: TcpStream) -> usize {
    let _ = stream.shutdown().await;
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut buf = vec![0u8; 64 * 1024];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        let wait = deadline.min(tokio::time::Instant::now() + LINGER_IDLE);
        match tokio::time::timeout_at(wait, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
    tracing::debug!(drained, "closed a connection after draining its refused body");
    drained
}

impl AsyncRead for Lingering {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(self.stream()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.stream()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        (listener.accept().await.unwrap().0, client)
    }

    #[tokio::test]
    async fn drain_reads_until_the_client_closes_and_ends_the_stream_first() {
        let (server, mut client) = pair().await;
        let task = tokio::spawn(drain(server));
        client.write_all(&[7u8; 100_000]).await.unwrap();
        // The server's side is shut: the client sees the end of the stream while still sending.
        let mut buf = [0u8; 8];
        assert_eq!(client.read(&mut buf).await.unwrap(), 0);
        client.write_all(&[7u8; 50_000]).await.unwrap();
        drop(client);
        assert_eq!(task.await.unwrap(), 150_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_closed_after_the_idle_limit() {
        let (server, _client) = pair().await;
        let started = tokio::time::Instant::now();
        assert_eq!(drain(server).await, 0);
        assert_eq!(started.elapsed(), LINGER_IDLE);
    }

    #[tokio::test]
    async fn an_unflagged_socket_is_simply_closed() {
        let (server, mut client) = pair().await;
        drop(Lingering::new(server, Arc::default()));
        let mut buf = [0u8; 8];
        assert_eq!(client.read(&mut buf).await.unwrap(), 0);
    }
}
