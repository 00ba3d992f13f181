//! Prometheus metrics (SPEC Part 2 item 5), with `prometheus-client`.
//!
//! Labels are route labels, status codes, operation names and error kinds only: never an id,
//! a client address or message text. Store metrics come from decorators around the ports
//! ([`MeteredStore`], [`MeteredLimiter`]), so no adapter knows metrics exist.

use crate::system::monotonic_nanos;
use async_trait::async_trait;
use crypt_domain::{
    Counted, CountingStore, DeleteOutcome, Deletion, Inserted, MessageId, MessageStore, RateDecision, RateLimit,
    RateLimiter, ReceiptDigest, Record, StoreError, StoredMessage, Ttl, UnixMillis, Viewed,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// When a timed section began, on the monotonic clock, in nanoseconds.
///
/// What `Instant` reads, without its checked arithmetic: `Instant::elapsed` cost about 90
/// instructions of `sub_timespec` per call, and a request is timed up to three times (itself,
/// its rate-limit check, its store operation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Started(u64);

impl Started {
    pub(crate) fn now() -> Self {
        Self(monotonic_nanos())
    }

    /// Nanoseconds since, for a histogram.
    pub(crate) fn nanos(self) -> u64 {
        monotonic_nanos().saturating_sub(self.0)
    }

    /// Whole microseconds since, for a log line.
    pub(crate) fn micros(self) -> u64 {
        monotonic_nanos().saturating_sub(self.0) / 1_000
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    store: &'static str,
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// Upper bounds of the latency buckets, in seconds: 50 µs × 2.5^k, 50 µs to about 2.98 s
/// (`prometheus_client`'s `exponential_buckets(0.000_05, 2.5, 13)`), then `+Inf`.
const BOUNDS: [f64; 13] = {
    let mut bounds = [0.000_05; 13];
    let mut i = 1;
    while i < bounds.len() {
        bounds[i] = bounds[i - 1] * 2.5;
        i += 1;
    }
    bounds
};

/// Upper bounds of the SQLite commit batch buckets: 1, 2, 4, ... 512 operations (the
/// writer's most, `crypt_sqlite`'s batch cap), then `+Inf`.
const BATCH_BOUNDS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// What a [`LockFree`] histogram counts: its buckets' upper bounds, in the unit it exports, and
/// what one unit observed is in that unit.
pub(crate) trait Scale: Default + std::fmt::Debug + Send + Sync + 'static {
    /// The buckets' upper bounds, ascending; `+Inf` follows. At most [`CELLS`]` - 1`.
    const BOUNDS: &'static [f64];
    /// The exported value of one observed unit.
    const UNIT: f64;
}

/// Durations observed in nanoseconds, exported in seconds ([`BOUNDS`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Seconds;
impl Scale for Seconds {
    const BOUNDS: &'static [f64] = &BOUNDS;
    const UNIT: f64 = 1e-9;
}

/// Counts of operations ([`BATCH_BOUNDS`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Operations;
impl Scale for Operations {
    const BOUNDS: &'static [f64] = &BATCH_BOUNDS;
    const UNIT: f64 = 1.0;
}

/// Cells of the largest scale's buckets and `+Inf`.
const CELLS: usize = BOUNDS.len() + 1;

/// A histogram that observes without a lock: a counter per bucket and a sum in observed units,
/// each one atomic addition.
///
/// `prometheus_client`'s `Histogram` takes a mutex per observation, and every request of a
/// route observes the same histogram (up to three per request): on a busy server the
/// threads queued on it. A scrape reads the counters one by one, so it may see an observation
/// in a bucket before it is in the sum: Prometheus allows for that (rates smooth it over).
#[derive(Clone, Debug, Default)]
pub(crate) struct LockFree<S: Scale>(Arc<Cells>, std::marker::PhantomData<S>);

/// Request and store latencies.
pub(crate) type Latency = LockFree<Seconds>;

#[derive(Debug, Default)]
struct Cells {
    /// Observations per bucket (not cumulative); the one after the scale's last bound is
    /// `+Inf`'s own.
    buckets: [AtomicU64; CELLS],
    sum: AtomicU64,
}

impl<S: Scale> LockFree<S> {
    /// One observation of `units` (nanoseconds for [`Latency`]).
    pub(crate) fn observe(&self, units: u64) {
        let value = units as f64 * S::UNIT;
        let bucket = S::BOUNDS.iter().position(|&le| value <= le).unwrap_or(S::BOUNDS.len());
        self.0.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.0.sum.fetch_add(units, Ordering::Relaxed);
    }
}

impl<S: Scale> TypedMetric for LockFree<S> {
    const TYPE: MetricType = MetricType::Histogram;
}

impl<S: Scale> EncodeMetric for LockFree<S> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // Each bucket's own count: the encoder makes them cumulative.
        let buckets: Vec<(f64, u64)> = (self.0.buckets.iter().take(S::BOUNDS.len() + 1).enumerate())
            .map(|(i, cell)| (S::BOUNDS.get(i).copied().unwrap_or(f64::INFINITY), cell.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|&(_, n)| n).sum();
        let sum = self.0.sum.load(Ordering::Relaxed) as f64 * S::UNIT;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Every metric of one server.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabel, Latency>,
    created: Counter,
    views: Counter,
    burned: Counter,
    deleted: Counter,
    expired: Counter,
    rate_limited: Counter,
    store_errors: Family<KindLabel, Counter>,
    store_ops: Family<OpLabels, Latency>,
    memory_bytes: Gauge,
    memory_entries: Gauge,
    connections: Gauge,
    connections_max: Gauge,
    connections_refused: Counter,
    sqlite_batches: LockFree<Operations>,
    sqlite_commits: Latency,
    /// Bytes of messages stored and read, text and files apart (resolved once: the family's
    /// lookup costs a hash and a lock).
    stored_bytes: [Counter; 2],
    read_bytes: [Counter; 2],
    /// Bytes request bodies hold now, against `CRYPT_MAX_INFLIGHT_BODY_BYTES`.
    pub(crate) inflight_body_bytes: Gauge,
    busy: Counter,
    /// `store_ops` entries by store (memory, then the rest) and [`OPS`] index, once resolved.
    ops_resolved: [[std::sync::OnceLock<Latency>; OPS.len()]; 2],
    /// `requests` entries by [`ROUTES`] and [`STATUSES`] index, and `durations` entries by
    /// [`ROUTES`] index, once resolved: a family lookup hashes the labels (SipHash) and takes
    /// the family's lock, about 600 instructions a request (callgrind).
    requests_resolved: [[std::sync::OnceLock<Counter>; STATUSES.len()]; ROUTES.len()],
    durations_resolved: [std::sync::OnceLock<Latency>; ROUTES.len()],
}

/// The route labels answered most, in the order of the resolved tables (`crypt_http::Route`'s
/// labels, `delete` and `preflight`); any other label still counts, through the family.
const ROUTES: [&str; 13] = [
    "create",
    "open",
    "receipt",
    "delete",
    "preflight",
    "healthz",
    "readyz",
    "metrics",
    "openapi",
    "reveal-page",
    "receipt-page",
    "asset",
    "unknown",
];

/// The statuses the API answers with; any other still counts, through the family.
const STATUSES: [u16; 12] = [200, 201, 204, 400, 404, 405, 408, 413, 415, 429, 500, 503];

/// The store operations that are timed.
const OPS: [&str; 8] =
    ["insert", "spend_view", "ping", "rate_limit", "insert_counted", "spend_view_counted", "record", "delete"];

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("crypt");
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RouteLabel, Latency>::default();
        let store_ops = Family::<OpLabels, Latency>::default();
        let m = Self {
            registry: Registry::default(),
            requests,
            durations,
            created: Counter::default(),
            views: Counter::default(),
            burned: Counter::default(),
            deleted: Counter::default(),
            expired: Counter::default(),
            rate_limited: Counter::default(),
            store_errors: Family::default(),
            store_ops,
            memory_bytes: Gauge::default(),
            memory_entries: Gauge::default(),
            connections: Gauge::default(),
            connections_max: Gauge::default(),
            connections_refused: Counter::default(),
            sqlite_batches: LockFree::default(),
            sqlite_commits: Latency::default(),
            stored_bytes: Default::default(),
            read_bytes: Default::default(),
            inflight_body_bytes: Gauge::default(),
            busy: Counter::default(),
            ops_resolved: Default::default(),
            requests_resolved: Default::default(),
            durations_resolved: Default::default(),
        };
        registry.register("http_requests", "HTTP requests answered, by route and status", m.requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's head to its answer, by route",
            m.durations.clone(),
        );
        registry.register("messages_created", "Messages stored", m.created.clone());
        registry.register(
            "message_views",
            "Views spent: successful reads, each returning the message",
            m.views.clone(),
        );
        registry.register("messages_burned", "Messages whose last view was read (and so destroyed)", m.burned.clone());
        registry.register(
            "messages_deleted",
            "Messages the sender deleted (with the receipt) before their last view",
            m.deleted.clone(),
        );
        registry.register(
            "messages_expired",
            "Messages that reached their expiry before their last view, deleted by the memory or SQLite store (Redis expires its own)",
            m.expired.clone(),
        );
        registry.register("rate_limited_requests", "Requests refused by the rate limit", m.rate_limited.clone());
        registry.register("store_errors", "Store failures, by kind (unavailable, full)", m.store_errors.clone());
        registry.register(
            "store_operation_duration_seconds",
            "Time of each store operation (one Redis command with Redis), by store and operation",
            m.store_ops.clone(),
        );
        registry.register(
            "memory_store_bytes",
            "Bytes the memory store counts against its capacity",
            m.memory_bytes.clone(),
        );
        registry.register("memory_store_entries", "Messages in the memory store", m.memory_entries.clone());
        registry.register("connections_open", "Client connections open now", m.connections.clone());
        registry.register(
            "connections_max",
            "The most client connections open at once (CRYPT_MAX_CONNECTIONS, fitted to the descriptor limit)",
            m.connections_max.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at once because their address held CRYPT_MAX_CONNECTIONS_PER_CLIENT already",
            m.connections_refused.clone(),
        );
        registry.register(
            "sqlite_commit_operations",
            "SQLite store: the operations each commit held (group commit: all waiting at that moment, one fsync)",
            m.sqlite_batches.clone(),
        );
        registry.register(
            "sqlite_commit_duration_seconds",
            "SQLite store: time of each commit that wrote: the WAL's write and its fsync",
            m.sqlite_commits.clone(),
        );
        let (stored, read) = (Family::<KindLabel, Counter>::default(), Family::<KindLabel, Counter>::default());
        let by_kind = |family: &Family<KindLabel, Counter>| {
            ["text", "file"].map(|kind| family.get_or_create(&KindLabel { kind }).clone())
        };
        let (stored_bytes, read_bytes) = (by_kind(&stored), by_kind(&read));
        registry.register("message_stored_bytes", "Bytes of messages stored, by kind (text, file)", stored);
        registry.register(
            "message_read_bytes",
            "Bytes of messages returned by reads (each view counts), by kind (text, file)",
            read,
        );
        registry.register(
            "inflight_body_bytes",
            "Bytes request bodies hold now, being read or answered (bounded by CRYPT_MAX_INFLIGHT_BODY_BYTES)",
            m.inflight_body_bytes.clone(),
        );
        registry.register(
            "body_busy_refusals",
            "Request bodies answered 503 Server busy: CRYPT_MAX_INFLIGHT_BODY_BYTES stayed full for the body timeout",
            m.busy.clone(),
        );
        Self { registry, stored_bytes, read_bytes, ..m }
    }

    /// A body refused because the in-flight bound stayed full.
    pub(crate) fn busy(&self) {
        self.busy.inc();
    }

    /// One view spent, and a burn when it was the last.
    fn viewed(&self, v: &Viewed) {
        self.views.inc();
        self.read_bytes[usize::from(v.message.is_file())].inc_by(v.message.len() as u64);
        if v.views_left == 0 {
            self.burned.inc();
        }
    }

    /// One answered request.
    pub(crate) fn request(&self, route: &'static str, status: u16, started: Started) {
        let elapsed = started.nanos();
        let Some(r) = ROUTES.iter().position(|&known| known == route) else {
            self.requests.get_or_create(&RequestLabels { route, status }).inc();
            self.durations.get_or_create(&RouteLabel { route }).observe(elapsed);
            return;
        };
        match STATUSES.iter().position(|&known| known == status) {
            Some(s) => self.requests_resolved[r][s]
                .get_or_init(|| self.requests.get_or_create(&RequestLabels { route, status }).clone())
                .inc(),
            None => self.requests.get_or_create(&RequestLabels { route, status }).inc(),
        };
        self.durations_resolved[r]
            .get_or_init(|| self.durations.get_or_create(&RouteLabel { route }).clone())
            .observe(elapsed);
    }

    /// What the memory store holds, and how many expired messages a sweep dropped.
    pub(crate) fn memory_store(&self, bytes: usize, entries: usize, swept: usize) {
        self.memory_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.memory_entries.set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.expired.inc_by(swept as u64);
    }

    pub(crate) fn connection_opened(&self) {
        self.connections.inc();
    }

    pub(crate) fn connection_closed(&self) {
        self.connections.dec();
    }

    pub(crate) fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    pub(crate) fn connections_max(&self, max: usize) {
        self.connections_max.set(i64::try_from(max).unwrap_or(i64::MAX));
    }

    fn store_error(&self, e: &StoreError) {
        let kind = match e {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Full => "full",
        };
        self.store_errors.get_or_create(&KindLabel { kind }).inc();
    }

    fn op(&self, store: &'static str, op: &'static str, started: Started) {
        let elapsed = started.nanos();
        // The label sets are few and fixed: each histogram is looked up in the family once and
        // kept, so a request does not hash labels and take the family's lock per operation.
        let s = usize::from(store != "memory");
        let o = OPS.iter().position(|&known| known == op);
        match o {
            Some(o) => self.ops_resolved[s][o]
                .get_or_init(|| self.store_ops.get_or_create(&OpLabels { store, op }).clone())
                .observe(elapsed),
            None => self.store_ops.get_or_create(&OpLabels { store, op }).observe(elapsed),
        }
    }

    /// The OpenMetrics text of every metric.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The SQLite store's writer reports its commits and expiries here.
impl crypt_sqlite::CommitObserver for Metrics {
    fn committed(&self, batch: usize, nanos: u64) {
        self.sqlite_batches.observe(batch as u64);
        self.sqlite_commits.observe(nanos);
    }

    fn expired(&self, unread: usize) {
        self.expired.inc_by(unread as u64);
    }
}

/// A [`MessageStore`] that counts what passes through it.
pub(crate) struct MeteredStore {
    pub(crate) inner: Arc<dyn MessageStore>,
    pub(crate) metrics: Arc<Metrics>,
    /// `memory` or `redis`, for the operation label.
    pub(crate) store: &'static str,
}

impl MeteredStore {
    fn inserted(&self, started: Started, message: &StoredMessage, result: &Result<Inserted, StoreError>) {
        self.metrics.op(self.store, "insert", started);
        match result {
            Ok(Inserted::Stored) => {
                self.metrics.created.inc();
                let m = &message.message;
                self.metrics.stored_bytes[usize::from(m.is_file())].inc_by(m.len() as u64);
            }
            Ok(Inserted::Taken) => {}
            Err(e) => self.metrics.store_error(e),
        }
    }

    fn viewed(&self, started: Started, result: &Result<Option<Viewed>, StoreError>) {
        self.metrics.op(self.store, "spend_view", started);
        match result {
            Ok(Some(v)) => self.metrics.viewed(v),
            Ok(None) => {}
            Err(e) => self.metrics.store_error(e),
        }
    }
}

#[async_trait]
impl MessageStore for MeteredStore {
    async fn insert_new(&self, id: &MessageId, message: &StoredMessage, ttl: Ttl) -> Result<Inserted, StoreError> {
        let started = Started::now();
        let result = self.inner.insert_new(id, message, ttl).await;
        self.inserted(started, message, &result);
        result
    }

    async fn spend_view(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Viewed>, StoreError> {
        let started = Started::now();
        let result = self.inner.spend_view(id, now).await;
        self.viewed(started, &result);
        result
    }

    async fn record(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Record>, StoreError> {
        let started = Started::now();
        let result = self.inner.record(id, now).await;
        self.metrics.op(self.store, "record", started);
        if let Err(e) = &result {
            self.metrics.store_error(e);
        }
        result
    }

    async fn delete(
        &self,
        id: &MessageId,
        receipt: &ReceiptDigest,
        now: UnixMillis,
    ) -> Result<Option<DeleteOutcome>, StoreError> {
        let started = Started::now();
        let result = self.inner.delete(id, receipt, now).await;
        self.metrics.op(self.store, "delete", started);
        match &result {
            // Only the one delete that destroyed the message counts (not a second, nor one
            // that came after the last view).
            Ok(Some(o)) if o.deletion == Deletion::Deleted => {
                self.metrics.deleted.inc();
            }
            Ok(_) => {}
            Err(e) => self.metrics.store_error(e),
        }
        result
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let started = Started::now();
        let result = self.inner.ping().await;
        self.metrics.op(self.store, "ping", started);
        if let Err(e) = &result {
            self.metrics.store_error(e);
        }
        result
    }

    // The inner store's answer at once, counted the same way; `None` when it has none.
    fn insert_new_at_once(
        &self,
        id: &MessageId,
        message: &StoredMessage,
        ttl: Ttl,
    ) -> Option<Result<Inserted, StoreError>> {
        let started = Started::now();
        let result = self.inner.insert_new_at_once(id, message, ttl)?;
        self.inserted(started, message, &result);
        Some(result)
    }

    fn spend_view_at_once(&self, id: &MessageId, now: UnixMillis) -> Option<Result<Option<Viewed>, StoreError>> {
        let started = Started::now();
        let result = self.inner.spend_view_at_once(id, now)?;
        self.viewed(started, &result);
        Some(result)
    }
}

/// A [`RateLimiter`] that counts the requests it refuses.
pub(crate) struct MeteredLimiter {
    pub(crate) inner: Arc<dyn RateLimiter>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) store: &'static str,
}

impl MeteredLimiter {
    fn decided(&self, started: Started, result: &Result<RateDecision, StoreError>) {
        self.metrics.op(self.store, "rate_limit", started);
        match result {
            Ok(RateDecision::Limited { .. }) => {
                self.metrics.rate_limited.inc();
            }
            Ok(RateDecision::Allowed) => {}
            Err(e) => self.metrics.store_error(e),
        }
    }
}

#[async_trait]
impl RateLimiter for MeteredLimiter {
    async fn hit(&self, client: &str, now: UnixMillis, limit: RateLimit) -> Result<RateDecision, StoreError> {
        let started = Started::now();
        let result = self.inner.hit(client, now, limit).await;
        self.decided(started, &result);
        result
    }

    fn hit_at_once(&self, client: &str, now: UnixMillis, limit: RateLimit) -> Option<Result<RateDecision, StoreError>> {
        let started = Started::now();
        let result = self.inner.hit_at_once(client, now, limit)?;
        self.decided(started, &result);
        Some(result)
    }
}

/// A [`CountingStore`] that counts what passes through it, as [`MeteredStore`] and
/// [`MeteredLimiter`] do for the two ports it joins (its operations are labelled
/// `insert_counted` and `spend_view_counted`: one Redis script each).
pub(crate) struct MeteredCounting {
    pub(crate) inner: Arc<dyn CountingStore>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) store: &'static str,
}

impl MeteredCounting {
    fn outcome<T>(&self, result: &Result<Counted<T>, StoreError>, counted: impl FnOnce(&T)) {
        match result {
            Ok(Counted::Allowed(value)) => counted(value),
            Ok(Counted::Limited { .. }) => {
                self.metrics.rate_limited.inc();
            }
            Err(e) => self.metrics.store_error(e),
        }
    }
}

#[async_trait]
impl CountingStore for MeteredCounting {
    async fn insert_new_counted(
        &self,
        client: &str,
        now: UnixMillis,
        limit: RateLimit,
        id: &MessageId,
        message: &StoredMessage,
        ttl: Ttl,
    ) -> Result<Counted<Inserted>, StoreError> {
        let started = Started::now();
        let result = self.inner.insert_new_counted(client, now, limit, id, message, ttl).await;
        self.metrics.op(self.store, "insert_counted", started);
        self.outcome(&result, |inserted| {
            if *inserted == Inserted::Stored {
                self.metrics.created.inc();
            }
        });
        result
    }

    async fn spend_view_counted(
        &self,
        client: &str,
        now: UnixMillis,
        limit: RateLimit,
        id: &MessageId,
    ) -> Result<Counted<Option<Viewed>>, StoreError> {
        let started = Started::now();
        let result = self.inner.spend_view_counted(client, now, limit, id).await;
        self.metrics.op(self.store, "spend_view_counted", started);
        self.outcome(&result, |viewed| {
            if let Some(v) = viewed {
                self.metrics.viewed(v);
            }
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn resolved_and_unresolved_labels_count_into_the_same_families() {
        let m = Metrics::new();
        let started = Started::now();
        for _ in 0..3 {
            m.request("create", 201, started); // resolved once, then kept
        }
        m.request("create", 418, started); // a status outside the table
        m.request("elsewhere", 200, started); // a route outside the table
        let text = m.render();
        assert_eq!(
            line(&text, "crypt_http_requests_total{route=\"create\",status=\"201\"}"),
            Some("crypt_http_requests_total{route=\"create\",status=\"201\"} 3")
        );
        assert!(line(&text, "crypt_http_requests_total{route=\"create\",status=\"418\"} 1").is_some(), "{text}");
        assert!(line(&text, "crypt_http_requests_total{route=\"elsewhere\",status=\"200\"} 1").is_some(), "{text}");
        assert!(
            line(&text, "crypt_http_request_duration_seconds_count{route=\"create\"} 4").is_some(),
            "the route's histogram saw every request: {text}"
        );
    }

    #[test]
    fn the_batch_histogram_counts_operations_in_its_own_buckets() {
        let batches = LockFree::<Operations>::default();
        for ops in [1u64, 3, 3, 512, 600] {
            batches.observe(ops);
        }
        let mut registry = Registry::default();
        registry.register("batch", "help", batches);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "batch_sum 1119.0",
            "batch_count 5",
            "batch_bucket{le=\"1.0\"} 1",
            "batch_bucket{le=\"4.0\"} 3",
            "batch_bucket{le=\"512.0\"} 4",
            "batch_bucket{le=\"+Inf\"} 5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        assert!(!text.contains("le=\"1024"), "no bucket past the scale's own: {text}");
    }

    #[test]
    fn the_lock_free_histogram_renders_as_prometheus_clients_own() {
        use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
        let ours = Latency::default();
        let theirs = Histogram::new(exponential_buckets(0.000_05, 2.5, 13));
        // Whole microseconds, so that both sums are exact in binary and compare as text.
        for micros in [1u64, 50, 51, 400, 2_000, 2_000, 900_000, 5_000_000] {
            ours.observe(micros * 1_000);
            theirs.observe(micros as f64 * 1e-6);
        }
        let render = |metric: Box<dyn Fn(&mut Registry)>| {
            let mut registry = Registry::default();
            metric(&mut registry);
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
            out
        };
        let a = render(Box::new(move |r| r.register("latency", "help", ours.clone())));
        let b = render(Box::new(move |r| r.register("latency", "help", theirs.clone())));
        let without_sum = |text: &str| text.lines().filter(|l| !l.contains("_sum")).collect::<Vec<_>>().join("\n");
        assert_eq!(without_sum(&a), without_sum(&b));
        assert!(a.contains("latency_bucket{le=\"0.00005\"} 2\n"), "{a}");
        assert!(a.contains("latency_bucket{le=\"+Inf\"} 8\n"), "{a}");
        let sum =
            |text: &str| -> f64 { text.lines().find_map(|l| l.strip_prefix("latency_sum ")).unwrap().parse().unwrap() };
        assert!((sum(&a) - sum(&b)).abs() < 1e-9, "{a}\n{b}");
    }
}
