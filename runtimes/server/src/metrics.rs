//! Prometheus metrics (SPEC Part 2 item 5), with `prometheus-client`.
//!
//! Labels are route labels, status codes, operation names and error kinds only: never an id,
//! a client address or message text. Store metrics come from decorators around the ports
//! ([`MeteredStore`], [`MeteredLimiter`]), so no adapter knows metrics exist.

use crate::system::monotonic_nanos;
use async_trait::async_trait;
use crypt_domain::{
    Clock, Counted, CountingStore, Inserted, MessageId, MessageStore, RateDecision, RateLimit, RateLimiter, StoreError,
    StoredMessage, Ttl, UnixMillis,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
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

    /// Seconds since, for a histogram.
    pub(crate) fn seconds(self) -> f64 {
        monotonic_nanos().saturating_sub(self.0) as f64 * 1e-9
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

/// Latency buckets from 50 µs to 2.5 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.000_05, 2.5, 13)
}

/// Every metric of one server.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabel, Histogram>,
    created: Counter,
    burned: Counter,
    expired: Counter,
    rate_limited: Counter,
    store_errors: Family<KindLabel, Counter>,
    store_ops: Family<OpLabels, Histogram>,
    memory_bytes: Gauge,
    memory_entries: Gauge,
    connections: Gauge,
    connections_max: Gauge,
    connections_refused: Counter,
    /// `store_ops` entries by store (memory, then the rest) and [`OPS`] index, once resolved.
    ops_resolved: [[std::sync::OnceLock<Histogram>; OPS.len()]; 2],
    /// `requests` entries by [`ROUTES`] and [`STATUSES`] index, and `durations` entries by
    /// [`ROUTES`] index, once resolved: a family lookup hashes the labels (SipHash) and takes
    /// the family's lock, about 600 instructions a request (callgrind).
    requests_resolved: [[std::sync::OnceLock<Counter>; STATUSES.len()]; ROUTES.len()],
    durations_resolved: [std::sync::OnceLock<Histogram>; ROUTES.len()],
}

/// The route labels answered most, in the order of the resolved tables (`crypt_http::Route`'s
/// labels and `preflight`); any other label still counts, through the family.
const ROUTES: [&str; 10] =
    ["create", "open", "preflight", "healthz", "readyz", "metrics", "openapi", "reveal-page", "asset", "unknown"];

/// The statuses the API answers with; any other still counts, through the family.
const STATUSES: [u16; 12] = [200, 201, 204, 400, 404, 405, 408, 413, 415, 429, 500, 503];

/// The store operations that are timed.
const OPS: [&str; 6] = ["insert", "take", "ping", "rate_limit", "insert_counted", "take_counted"];

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("crypt");
        let requests = Family::<RequestLabels, Counter>::default();
        let durations =
            Family::<RouteLabel, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()) as Histogram);
        let store_ops =
            Family::<OpLabels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()) as Histogram);
        let m = Self {
            registry: Registry::default(),
            requests,
            durations,
            created: Counter::default(),
            burned: Counter::default(),
            expired: Counter::default(),
            rate_limited: Counter::default(),
            store_errors: Family::default(),
            store_ops,
            memory_bytes: Gauge::default(),
            memory_entries: Gauge::default(),
            connections: Gauge::default(),
            connections_max: Gauge::default(),
            connections_refused: Counter::default(),
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
        registry.register("messages_burned", "Messages read (and so destroyed)", m.burned.clone());
        registry.register(
            "messages_expired",
            "Messages that expired unread (found on a read, or swept from memory)",
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
        Self { registry, ..m }
    }

    /// One answered request.
    pub(crate) fn request(&self, route: &'static str, status: u16, started: Started) {
        let elapsed = started.seconds();
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
        let elapsed = started.seconds();
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

/// A [`MessageStore`] that counts what passes through it.
pub(crate) struct MeteredStore {
    pub(crate) inner: Arc<dyn MessageStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Arc<Metrics>,
    /// `memory` or `redis`, for the operation label.
    pub(crate) store: &'static str,
}

#[async_trait]
impl MessageStore for MeteredStore {
    async fn insert_new(&self, id: &MessageId, message: &StoredMessage, ttl: Ttl) -> Result<Inserted, StoreError> {
        let started = Started::now();
        let result = self.inner.insert_new(id, message, ttl).await;
        self.metrics.op(self.store, "insert", started);
        match &result {
            Ok(Inserted::Stored) => {
                self.metrics.created.inc();
            }
            Ok(Inserted::Taken) => {}
            Err(e) => self.metrics.store_error(e),
        }
        result
    }

    async fn take(&self, id: &MessageId) -> Result<Option<StoredMessage>, StoreError> {
        let started = Started::now();
        let result = self.inner.take(id).await;
        self.metrics.op(self.store, "take", started);
        match &result {
            // The vault decides expiry with the same clock: an expired message is not served.
            Ok(Some(m)) if m.is_expired(self.clock.now()) => {
                self.metrics.expired.inc();
            }
            Ok(Some(_)) => {
                self.metrics.burned.inc();
            }
            Ok(None) => {}
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
}

/// A [`RateLimiter`] that counts the requests it refuses.
pub(crate) struct MeteredLimiter {
    pub(crate) inner: Arc<dyn RateLimiter>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) store: &'static str,
}

#[async_trait]
impl RateLimiter for MeteredLimiter {
    async fn hit(&self, client: &str, now: UnixMillis, limit: RateLimit) -> Result<RateDecision, StoreError> {
        let started = Started::now();
        let result = self.inner.hit(client, now, limit).await;
        self.metrics.op(self.store, "rate_limit", started);
        match &result {
            Ok(RateDecision::Limited { .. }) => {
                self.metrics.rate_limited.inc();
            }
            Ok(RateDecision::Allowed) => {}
            Err(e) => self.metrics.store_error(e),
        }
        result
    }
}

/// A [`CountingStore`] that counts what passes through it, as [`MeteredStore`] and
/// [`MeteredLimiter`] do for the two ports it joins (its operations are labelled
/// `insert_counted` and `take_counted`: one Redis script each).
pub(crate) struct MeteredCounting {
    pub(crate) inner: Arc<dyn CountingStore>,
    pub(crate) clock: Arc<dyn Clock>,
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

    async fn take_counted(
        &self,
        client: &str,
        now: UnixMillis,
        limit: RateLimit,
        id: &MessageId,
    ) -> Result<Counted<Option<StoredMessage>>, StoreError> {
        let started = Started::now();
        let result = self.inner.take_counted(client, now, limit, id).await;
        self.metrics.op(self.store, "take_counted", started);
        self.outcome(&result, |taken| match taken {
            Some(m) if m.is_expired(self.clock.now()) => {
                self.metrics.expired.inc();
            }
            Some(_) => {
                self.metrics.burned.inc();
            }
            None => {}
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
}
