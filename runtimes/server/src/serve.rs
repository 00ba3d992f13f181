//! The hyper server: accept, read within limits, hand to the API, shut down gracefully.

use crate::admission::{self, Admission};
use crate::linger::{LingerFlag, Lingering};
use crate::metrics::{MeteredCounting, MeteredLimiter, MeteredStore, Metrics, Started};
use crate::settings::{Config, StoreKind};
use crate::watchdog::{Activity, Counted};
use crate::{RandomIds, SystemClock};
use bytes::Bytes;
use crypt_domain::{Clock, CountingStore, MessageStore, RateLimiter, Vault};
use crypt_http::{client_ip, Api, BodyRejection, ClientInfo, Route};
use crypt_memory::{MemoryLimiter, MemoryStore};
use crypt_redis::{RedisError, RedisStore};
use futures::FutureExt;
use http::{header, HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr} ({setting}): {source}")]
    Bind {
        /// The setting that named it: `CRYPT_LISTEN` or `CRYPT_METRICS_LISTEN`.
        setting: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A store setting cannot be used (a Redis URL that is not one, a certificate file that
    /// cannot be read): like any invalid setting, exit code 2.
    #[error("{0}")]
    Setting(String),
    /// The store cannot be used (a Redis older than 6.2).
    #[error("{0}")]
    Store(String),
}

impl StartError {
    /// The process's exit code for it: 2 for a setting, as for every invalid setting; 1
    /// otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Setting(_) => 2,
            StartError::Bind { .. } | StartError::Store(_) => 1,
        }
    }
}

/// A running server. Dropping it leaves the server running until the runtime stops; call
/// [`Running::shutdown`] to stop it gracefully.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    /// The bound address (with the real port when the settings asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` and the bound address, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (up to the shutdown grace), and waits.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Everything a request handler needs, shared by all connections.
struct App {
    api: Api,
    metrics: Arc<Metrics>,
    trusted_proxies: Vec<IpNet>,
    body_timeout: Duration,
    /// What request bodies may hold together, in KiB permits (`CRYPT_MAX_INFLIGHT_BODY_BYTES`).
    inflight: tokio::sync::Semaphore,
}

/// One connection: the shared app, the peer, and what the connection has been doing.
struct Conn {
    app: Arc<App>,
    peer: SocketAddr,
    activity: Arc<Activity>,
    /// Set when a body is refused unread: the socket is then drained before it closes.
    linger: Arc<LingerFlag>,
}

/// How many finished handshakes the kernel may queue before crypt accepts them (the kernel caps
/// it at `net.core.somaxconn`, 4096 on current Linux). tokio's default, 1024, drops handshakes
/// when thousands of clients connect at once, and a dropped one waits a second or more for the
/// retry.
const LISTEN_BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // As `TcpListener::bind` does: a restarted server can bind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Binds, builds the adapters the settings name, and serves in a background task.
///
/// # Errors
/// [`StartError`] when the address cannot be bound.
pub async fn spawn(settings: Config) -> Result<Running, StartError> {
    let bind = |setting, addr| async move {
        let listener = listen(addr).map_err(|source| StartError::Bind { setting, addr, source })?;
        let bound = listener.local_addr().map_err(|source| StartError::Bind { setting, addr, source })?;
        Ok::<_, StartError>((listener, bound))
    };
    let (listener, addr) = bind("CRYPT_LISTEN", settings.listen).await?;
    let metrics_listener = match settings.metrics_listen {
        Some(at) => Some(bind("CRYPT_METRICS_LISTEN", at).await?),
        None => None,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let metrics = Arc::new(Metrics::new());

    type Ports = (Arc<dyn MessageStore>, Arc<dyn RateLimiter>, Option<Arc<dyn CountingStore>>, Option<JoinHandle<()>>);
    // The SQLite store, to checkpoint once the last request is answered on a graceful stop.
    let mut sqlite_store: Option<Arc<crypt_sqlite::SqliteStore>> = None;
    let (store, limiter, counting, sweeper): Ports = match &settings.store {
        StoreKind::Memory => {
            let store = Arc::new(MemoryStore::new(settings.memory_capacity_bytes, clock.clone()));
            let limiter = Arc::new(MemoryLimiter::default());
            let sweeper = spawn_sweeper(
                Some(store.clone()),
                limiter.clone(),
                clock.clone(),
                settings.api.policy.rate_limit(),
                metrics.clone(),
            );
            (store, limiter, None, Some(sweeper))
        }
        StoreKind::Redis(config) => {
            // One store on one multiplexed connection serves as both ports. Redis expires keys
            // itself, so there is nothing to sweep.
            let redis = RedisStore::connect(config).await.map_err(|e| match e {
                RedisError::BadUrl(_) | RedisError::Tls { .. } => StartError::Setting(e.to_string()),
                RedisError::TooOld { .. } => StartError::Store(e.to_string()),
            })?;
            let redis = Arc::new(redis);
            // A create or a read and its count in one script: one round trip instead of two
            // (not on Cluster, where the two keys live in different slots).
            let counting: Option<Arc<dyn CountingStore>> = redis.counts_in_one_step().then(|| redis.clone() as _);
            (redis.clone(), redis, counting, None)
        }
        StoreKind::Sqlite(config) => {
            // Opening checks the file and may delete what expired while crypt was stopped: not
            // on the runtime's threads.
            let (config, opened_clock, observer) = (config.clone(), clock.clone(), metrics.clone());
            let sqlite = tokio::task::spawn_blocking(move || {
                crypt_sqlite::SqliteStore::open(&config, opened_clock, Some(observer)).map(|s| (s, config))
            })
            .await
            .map_err(|e| StartError::Store(format!("the SQLite store could not be opened: {e}")))?;
            let (sqlite, config) = sqlite.map_err(|e| StartError::Setting(e.to_string()))?;
            tracing::info!(path = %config.path.display(), records = sqlite.records_at_open(), "SQLite database open");
            // The rate limit is this process's, as with memory: one process per database.
            let limiter = Arc::new(MemoryLimiter::default());
            let sweeper =
                spawn_sweeper(None, limiter.clone(), clock.clone(), settings.api.policy.rate_limit(), metrics.clone());
            let sqlite = Arc::new(sqlite);
            sqlite_store = Some(sqlite.clone());
            (sqlite, limiter, None, Some(sweeper))
        }
    };

    // (what the log says, what the metrics' `store` label says)
    let (store_kind, store_label) = match &settings.store {
        StoreKind::Memory => ("memory", "memory"),
        StoreKind::Redis(c) if c.is_cluster() => ("redis-cluster", "redis"),
        StoreKind::Redis(_) => ("redis", "redis"),
        StoreKind::Sqlite(_) => ("sqlite", "sqlite"),
    };
    let store = Arc::new(MeteredStore { inner: store, metrics: metrics.clone(), store: store_label });
    let limiter = Arc::new(MeteredLimiter { inner: limiter, metrics: metrics.clone(), store: store_label });
    let counting = counting.map(|inner| {
        Arc::new(MeteredCounting { inner, metrics: metrics.clone(), store: store_label }) as Arc<dyn CountingStore>
    });
    let mut vault = Vault::new(store, limiter, clock, Arc::new(RandomIds), settings.api.policy.clone());
    if let Some(counting) = counting {
        vault = vault.with_counting_store(counting);
    }
    let rendered = {
        let metrics = metrics.clone();
        crypt_http::Metrics::new(move || metrics.render())
    };
    let mut api = Api::from_settings(vault, &settings.api);
    let mut tasks = sweeper.into_iter().collect::<Vec<_>>();
    match metrics_listener {
        // Metrics on an address of their own, not on the API's.
        Some((listener, at)) => {
            tracing::info!(%at, "metrics on http://{at}/metrics");
            tasks.push(tokio::spawn(serve_metrics(listener, rendered)));
        }
        None => api = api.with_metrics(rendered),
    }
    tracing::info!(%addr, store = store_kind, "crypt listening on http://{addr}");
    Ok(serve_api(listener, api, metrics, settings, tasks, sqlite_store))
}

/// The metrics listener: `GET /metrics` and nothing else, one request at a time per connection.
async fn serve_metrics(listener: TcpListener, metrics: crypt_http::Metrics) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let resp = metrics.handle(req.method(), req.uri().path());
            async move { Ok::<_, Infallible>(resp.map(Full::new)) }
        });
        tokio::spawn(async move {
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        });
    }
}

/// Serves `api` on `listener` in a background task until [`Running::shutdown`]; `tasks` (the
/// sweeper, the metrics listener) are stopped with it.
fn serve_api(
    listener: TcpListener,
    api: Api,
    metrics: Arc<Metrics>,
    settings: Config,
    tasks: Vec<JoinHandle<()>>,
    sqlite: Option<Arc<crypt_sqlite::SqliteStore>>,
) -> Running {
    let addr = listener.local_addr().unwrap_or(settings.listen);
    let (max_connections, lowered_by) = admission::fit_to_descriptors(settings.max_connections);
    if let Some(limit) = lowered_by {
        tracing::warn!(
            wanted = settings.max_connections,
            max_connections,
            descriptor_limit = limit,
            "CRYPT_MAX_CONNECTIONS lowered to fit the file descriptor limit (raise it with ulimit -n or LimitNOFILE=)"
        );
    }
    metrics.connections_max(max_connections);
    let admission = Arc::new(Admission::new(
        max_connections,
        settings.max_connections_per_client,
        settings.api.ipv6_prefix,
        settings.trusted_proxies.clone(),
        metrics.clone(),
    ));
    let app = Arc::new(App {
        api,
        metrics,
        trusted_proxies: settings.trusted_proxies.clone(),
        body_timeout: settings.body_timeout,
        // Rounded up as each body's share is: the largest body (never above the bound) always fits.
        inflight: tokio::sync::Semaphore::new(settings.max_inflight_body_bytes.div_ceil(1024)),
    });
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        accept_loop(listener, app, admission, &settings, stopped).await;
        for task in tasks {
            task.abort();
        }
        if let Some(sqlite) = sqlite {
            // Every answer is given: erase what the last second burned from the WAL now.
            match tokio::time::timeout(Duration::from_secs(5), sqlite.flush()).await {
                Ok(Ok(())) => tracing::debug!("SQLite WAL checkpointed for the stop"),
                Ok(Err(e)) => tracing::warn!(error = %e, "SQLite checkpoint at stop failed"),
                Err(_) => tracing::warn!("SQLite checkpoint at stop took over 5 s; left to the next start"),
            }
        }
    });
    Running { addr, stop: Some(stop), task }
}

/// Frees expired messages (of the memory store, when given) and idle rate-limit logs once a
/// second, so memory follows what is live rather than what was ever stored.
fn spawn_sweeper(
    store: Option<Arc<MemoryStore>>,
    limiter: Arc<MemoryLimiter>,
    clock: Arc<dyn Clock>,
    limit: Option<crypt_domain::RateLimit>,
    metrics: Arc<Metrics>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Some(store) = &store {
                let expired = store.sweep();
                metrics.memory_store(store.used_bytes(), store.len(), expired);
                if expired > 0 {
                    tracing::debug!(expired, "swept expired messages");
                }
            }
            if let Some(limit) = limit {
                limiter.sweep(clock.now(), limit);
            }
        }
    })
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    admission: Arc<Admission>,
    settings: &Config,
    mut stopped: oneshot::Receiver<()>,
) {
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    // The header timeout is enforced by `watchdog`, which costs no timer per request; hyper's
    // own (a timer per request) stays off.
    http.header_read_timeout(None).keep_alive(true);
    let header_timeout = settings.header_timeout;
    let mut warned_full: Option<std::time::Instant> = None;
    loop {
        // Room first, then accept: past the cap, new connections wait in the kernel's queue.
        let permit = match admission.total_room() {
            Some(permit) => permit,
            None => {
                // At most once a minute: under a flood the cap may be met thousands of times.
                if warned_full.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(
                        max = admission.max(),
                        "at CRYPT_MAX_CONNECTIONS: new connections wait until one closes"
                    );
                    warned_full = Some(std::time::Instant::now());
                }
                tokio::select! {
                    permit = admission.room() => permit,
                    _ = &mut stopped => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopped => break,
        };
        let Some(ticket) = admission.admit(permit, peer.ip()) else {
            // Its address holds its share already: closed at once, nothing read.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let linger = Arc::new(LingerFlag::default());
        let io = TokioIo::new(Counted::new(Lingering::new(stream, linger.clone()), activity.clone()));
        let conn = Arc::new(Conn { app: app.clone(), peer, activity: activity.clone(), linger });
        let service = service_fn(move |req| serve_one(conn.clone(), req));
        let served = graceful.watch(http.serve_connection(io, service));
        let connection = tokio::spawn(async move {
            if let Err(e) = served.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
        // The watchdog is a task of its own, so the connection's task polls no timer on each
        // wake-up; it aborts the connection (closing the socket) when the client stalls.
        tokio::spawn(async move {
            let _ticket = ticket; // the connection's place, given back when it ends
            let abort = connection.abort_handle();
            tokio::select! {
                _ = connection => {}
                () = activity.expired(header_timeout) => {
                    abort.abort();
                    tracing::debug!("closed a connection that sent no request headers within the header timeout");
                }
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    if tokio::time::timeout(settings.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(grace = ?settings.shutdown_grace, "in-flight requests did not finish in time");
    }
}

async fn serve_one(conn: Arc<Conn>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    conn.activity.busy();
    // A panic inside a handler is a bug, but it must not cost the client its answer, nor the
    // connection or the process: it is caught here and answered 500 "Internal server error"
    // through the HTTP adapter, like any unexpected failure.
    // Only the Origin is kept for that answer (its CORS header); cloning the whole head for
    // every request would cost the hot path for a rare one.
    let origin = req.headers().get(header::ORIGIN).cloned();
    let resp = match std::panic::AssertUnwindSafe(respond(&conn, req)).catch_unwind().await {
        Ok(resp) => resp,
        Err(panic) => {
            let what = panic.downcast_ref::<&str>().copied().or(panic.downcast_ref::<String>().map(String::as_str));
            tracing::error!(panic = what.unwrap_or("(not text)"), "a request handler panicked; answered 500");
            let mut headers = HeaderMap::new();
            if let Some(origin) = origin {
                headers.insert(header::ORIGIN, origin);
            }
            conn.app.api.internal_error(&headers)
        }
    };
    conn.activity.idle();
    Ok(resp.map(Full::new))
}

async fn respond(conn: &Conn, req: Request<Incoming>) -> Response<Bytes> {
    let (app, peer) = (&*conn.app, conn.peer);
    let started = Started::now();
    let client = ClientInfo::Ip(client_ip(peer.ip(), req.headers(), &app.trusted_proxies));
    let (parts, body) = req.into_parts();
    // Held until the answer is written: the body's bytes stay in memory that long.
    let mut _held = None;
    let body = match app.api.body_limit(&parts.method, parts.uri.path(), &parts.headers) {
        Some(max) => {
            let read = async {
                let declared = declared_length(&parts.headers);
                if declared.is_some_and(|len| len > max as u64) {
                    return Err(BodyRejection::TooLarge);
                }
                _held = Some(reserve(app, declared.map_or(max, |len| len as usize)).await?);
                read_body(body, max, declared, app.body_timeout).await
            };
            match read.await {
                Ok(bytes) => bytes,
                Err(why) => {
                    tracing::info!(route = Route::of(parts.uri.path()).label(), ?why, "request body refused");
                    conn.linger.set();
                    return app.api.reject_body(&parts.headers, why);
                }
            }
        }
        None => Bytes::new(),
    };
    let route = match (&parts.method, Route::of(parts.uri.path())) {
        (&http::Method::OPTIONS, _) => "preflight",
        // The sender's delete shares its path with a read.
        (&http::Method::DELETE, Route::Message(_)) => "delete",
        (_, route) => route.label(),
    };
    let resp = app.api.handle(Request::from_parts(parts, body), &client).await;
    app.metrics.request(route, resp.status().as_u16(), started);
    tracing::debug!(route, status = resp.status().as_u16(), micros = started.micros(), "request");
    resp
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

/// A body's share of `CRYPT_MAX_INFLIGHT_BODY_BYTES`, taken before a byte of it is read: its
/// declared length, or for a chunked body its cap. When the bodies already in flight hold too
/// much, it waits for them (up to the body timeout), then the body is refused 503. Borrowed from
/// the app, so a create pays two atomic updates for it and no reference counting.
async fn reserve(app: &App, bytes: usize) -> Result<InflightBytes<'_>, BodyRejection> {
    let permits = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
    let permit = match app.inflight.try_acquire_many(permits) {
        Ok(permit) => permit,
        Err(_) => match tokio::time::timeout(app.body_timeout, app.inflight.acquire_many(permits)).await {
            Ok(Ok(permit)) => permit,
            _ => {
                app.metrics.busy();
                return Err(BodyRejection::Busy);
            }
        },
    };
    let bytes = i64::from(permits) * 1024;
    app.metrics.inflight_body_bytes.inc_by(bytes);
    Ok(InflightBytes { _permit: permit, bytes, metrics: &app.metrics })
}

/// One body's share of the in-flight bound, given back when dropped.
struct InflightBytes<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
    bytes: i64,
    metrics: &'a Metrics,
}

impl Drop for InflightBytes<'_> {
    fn drop(&mut self) {
        self.metrics.inflight_body_bytes.dec_by(self.bytes);
    }
}

/// Reads a body up to `max` bytes within `timeout` (a declared length over the cap was refused
/// before). A chunked body is cut off as soon as it passes the cap, so memory never holds more
/// than `max` bytes of one request; and never two copies of it: a body of one frame is kept as
/// it came, a longer one is copied once into a buffer of its declared length (what
/// `CRYPT_MAX_INFLIGHT_BODY_BYTES` reserved), not gathered and then joined.
async fn read_body(
    body: Incoming,
    max: usize,
    declared: Option<u64>,
    timeout: Duration,
) -> Result<Bytes, BodyRejection> {
    let mut body = Limited::new(body, max);
    let collect = async {
        let (mut first, mut joined) = (None::<Bytes>, None::<Vec<u8>>);
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else { continue };
            match (&mut first, &mut joined) {
                (None, None) => first = Some(data),
                (Some(_), None) => {
                    let head = first.take().unwrap_or_default();
                    let capacity = declared.map_or(2 * (head.len() + data.len()), |len| len as usize).min(max);
                    let mut buffer = Vec::with_capacity(capacity.max(head.len() + data.len()));
                    buffer.extend_from_slice(&head);
                    buffer.extend_from_slice(&data);
                    joined = Some(buffer);
                }
                (_, Some(buffer)) => buffer.extend_from_slice(&data),
            }
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(joined.map_or_else(|| first.unwrap_or_default(), Bytes::from))
    };
    let mut collect = std::pin::pin!(collect);
    // Most bodies arrive with their headers: take them without arming a timer. Only a body
    // still on its way gets the body-read timeout.
    let collected = match futures::poll!(collect.as_mut()) {
        std::task::Poll::Ready(done) => done,
        std::task::Poll::Pending => match tokio::time::timeout(timeout, collect).await {
            Ok(done) => done,
            Err(_) => return Err(BodyRejection::TimedOut),
        },
    };
    match collected {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(BodyRejection::TooLarge),
        Err(_) => Err(BodyRejection::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use crypt_domain::testkit::{FixedIds, NoLimit};
    use crypt_domain::{
        DeleteOutcome, Inserted, MessageId, ReceiptDigest, Record, StoreError, StoredMessage, Ttl, Viewed,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A store with a bug: every call panics.
    struct PanickingStore;

    #[async_trait]
    impl MessageStore for PanickingStore {
        async fn insert_new(&self, _: &MessageId, _: &StoredMessage, _: Ttl) -> Result<Inserted, StoreError> {
            panic!("a bug in the store");
        }
        async fn spend_view(&self, _: &MessageId, _: u64) -> Result<Option<Viewed>, StoreError> {
            panic!("a bug in the store");
        }
        async fn record(&self, _: &MessageId, _: u64) -> Result<Option<Record>, StoreError> {
            panic!("a bug in the store");
        }
        async fn delete(&self, _: &MessageId, _: &ReceiptDigest, _: u64) -> Result<Option<DeleteOutcome>, StoreError> {
            panic!("a bug in the store");
        }
        async fn ping(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    async fn exchange(stream: &mut tokio::net::TcpStream, request: &str) -> String {
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.unwrap().unwrap();
            assert!(n > 0, "closed before a whole answer: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head.lines().find_map(|l| l.strip_prefix("content-length: ")).and_then(|v| v.parse().ok());
                if length.is_some_and(|len: usize| body.len() >= len) {
                    return text;
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_handler_is_answered_500_and_the_connection_and_server_survive() {
        let config = Config::ephemeral();
        let vault = Vault::new(
            Arc::new(PanickingStore),
            Arc::new(NoLimit),
            Arc::new(SystemClock),
            Arc::new(FixedIds::new(&["abcde"])),
            config.api.policy.clone(),
        );
        let listener = TcpListener::bind(config.listen).await.unwrap();
        let api = Api::new(vault, config.api.cors.clone());
        let running = serve_api(listener, api, Arc::new(Metrics::new()), config, Vec::new(), None);
        let addr = running.addr();
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let body = r#"{"message":"x"}"#;
        let create = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        for request in [create.as_str(), "GET /abcde HTTP/1.1\r\nHost: x\r\n\r\n"] {
            // The same kept-alive connection answers each time.
            let resp = exchange(&mut conn, request).await;
            assert!(resp.starts_with("HTTP/1.1 500"), "{resp}");
            assert!(resp.ends_with(r#"{"error":"Internal server error"}"#), "{resp}");
            assert!(resp.contains("cache-control: no-store"), "{resp}");
            assert!(resp.contains("access-control-allow-origin: *"), "{resp}");
            assert!(!resp.contains("a bug in the store"), "{resp}");
        }
        let mut other = tokio::net::TcpStream::connect(addr).await.unwrap();
        let resp = exchange(&mut other, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        running.shutdown().await;
    }
}
