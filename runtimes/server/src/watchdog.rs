//! Slow-client protection for HTTP/1 connections, without a timer per request.
//!
//! hyper's own `header_read_timeout` allocates and registers a fresh timer for every request,
//! which cost about 8 % of the server's instructions per create+read pair (measured with
//! callgrind, see docs/PERFORMANCE.md). The rule it enforces is simple, so we
//! enforce the same rule more cheaply: a connection that is not inside a request handler must,
//! within the header timeout, either deliver a complete request head or take response bytes.
//! Otherwise it is closed. That covers a client that dribbles its headers (slowloris), a
//! keep-alive connection left idle, and a client that stops reading its response.
//!
//! The request path only stores a timestamp (one clock read) and the writer counts bytes; one
//! sleep per connection wakes at the earliest moment the rule could be broken, checks, and
//! sleeps again. A busy connection is looked at once per timeout, not once per request.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Marks `idle_since` while a handler runs: time in a handler never counts against the client
/// (the body read and the store have timeouts of their own).
const BUSY: u64 = u64::MAX;

/// What one connection has been doing, shared by its reader, writer, handler and watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    /// Nanoseconds after `opened` at which the connection last left a handler, or [`BUSY`].
    idle_since: AtomicU64,
    /// Response bytes the socket has accepted so far.
    written: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Activity { opened: Instant::now(), idle_since: AtomicU64::new(0), written: AtomicU64::new(0) }
    }

    /// A request head has arrived and its handler starts.
    pub(crate) fn busy(&self) {
        self.idle_since.store(BUSY, Relaxed);
    }

    /// The handler has finished; the client's clock starts again.
    pub(crate) fn idle(&self) {
        let nanos = u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(BUSY - 1);
        self.idle_since.store(nanos, Relaxed);
    }

    fn wrote(&self, n: usize) {
        // One writer per connection: a load and a store, no locked instruction.
        self.written.store(self.written.load(Relaxed).wrapping_add(n as u64), Relaxed);
    }

    /// Resolves when the connection has broken the rule in the module docs for `limit`.
    pub(crate) async fn expired(&self, limit: Duration) {
        let sleep = tokio::time::sleep_until(self.opened + limit);
        tokio::pin!(sleep);
        let mut written = 0;
        loop {
            sleep.as_mut().await;
            let now = Instant::now();
            let written_now = self.written.load(Relaxed);
            let took_bytes = written_now != written;
            written = written_now;
            let deadline = match self.idle_since.load(Relaxed) {
                BUSY => now + limit,
                _ if took_bytes => now + limit,
                since => self.opened + Duration::from_nanos(since) + limit,
            };
            if deadline <= now {
                return;
            }
            sleep.as_mut().reset(deadline);
        }
    }
}

/// A socket that tells its connection's [`Activity`] how many bytes it wrote.
#[derive(Debug)]
pub(crate) struct Counted<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Counted<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Counted { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.activity.wrote(n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.activity.wrote(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    /// Polls `expired` until it resolves, advancing paused time; returns how long that took.
    async fn time_to_expiry(activity: &Activity, during: impl AsyncFnOnce()) -> Duration {
        let started = Instant::now();
        let expired = activity.expired(LIMIT);
        tokio::pin!(expired);
        tokio::select! {
            () = &mut expired => return started.elapsed(),
            () = during() => {}
        }
        expired.await;
        started.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_never_sends_a_request_expires_at_the_limit() {
        let activity = Activity::new();
        assert_eq!(time_to_expiry(&activity, async || std::future::pending().await).await, LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn each_completed_request_restarts_the_clock() {
        let activity = Activity::new();
        let took = time_to_expiry(&activity, async || {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(7)).await;
                activity.busy();
                activity.idle();
            }
        })
        .await;
        assert_eq!(took, Duration::from_secs(21) + LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn time_inside_a_handler_never_counts() {
        let activity = Activity::new();
        let took = time_to_expiry(&activity, async || {
            activity.busy();
            tokio::time::sleep(Duration::from_secs(35)).await;
            activity.idle();
        })
        .await;
        assert_eq!(took, Duration::from_secs(35) + LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_keeps_taking_bytes_is_kept_and_one_that_stops_is_not() {
        let activity = Activity::new();
        let took = time_to_expiry(&activity, async || {
            activity.busy();
            activity.idle();
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_secs(6)).await;
                activity.wrote(1024);
            }
        })
        .await;
        // The last byte went at 24 s; the check after it (at most one limit later) sees progress
        // and gives one more limit.
        assert!(took > Duration::from_secs(24) + LIMIT, "{took:?}");
        assert!(took <= Duration::from_secs(24) + 2 * LIMIT, "{took:?}");
    }

    #[tokio::test]
    async fn counted_socket_reports_what_it_wrote() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let activity = Arc::new(Activity::new());
        let (a, mut b) = tokio::io::duplex(64);
        let mut counted = Counted::new(a, activity.clone());
        counted.write_all(b"hello").await.unwrap();
        let n = counted.write_vectored(&[io::IoSlice::new(b"ab"), io::IoSlice::new(b"cd")]).await.unwrap();
        assert!(n > 0);
        counted.flush().await.unwrap();
        let mut got = vec![0u8; 5 + n];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, &b"helloabcd"[..5 + n]);
        assert_eq!(activity.written.load(Relaxed), 5 + n as u64);
        b.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        counted.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"x");
    }
}
