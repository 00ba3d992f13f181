//! The load generator: N keep-alive HTTP/1.1 connections, each creating a message and reading
//! back the id it got (a "pair"), checking every read returns what was created.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// What one measurement saw.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub pairs: u64,
    /// Pairs completed during the warm-up (not in `pairs`), for CPU cost per pair.
    pub warmup_pairs: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Every request's latency in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl Outcome {
    pub fn pairs_per_sec(&self) -> f64 {
        self.pairs as f64 / self.elapsed.as_secs_f64()
    }
    pub fn requests_per_sec(&self) -> f64 {
        2.0 * self.pairs_per_sec()
    }
    /// The latency at quantile `q` (0..1), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * q).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

#[derive(serde::Deserialize)]
struct Created {
    id: String,
}

/// Drives `addr` with `connections` connections for `warmup` (not counted) then `duration`.
/// With `clients`, every request says it comes from one of that many addresses, drawn at
/// random (`X-Forwarded-For`, which crypt believes from a trusted proxy on loopback), afresh
/// for every run: a run that replayed the last one's sequence would meet, on a Redis kept
/// across runs, every client again with its log from the run before (what the Redis rows
/// measured before 2026-11-30: see docs/PERFORMANCE.md).
pub async fn run(
    addr: SocketAddr,
    connections: usize,
    size: usize,
    warmup: Duration,
    duration: Duration,
    clients: Option<u32>,
) -> Outcome {
    run_views(addr, connections, size, 1, warmup, duration, clients).await
}

/// As [`run`], with each message created for `views` views and read that many times: a "pair"
/// is then one create and its `views` reads, all answered with the message.
pub async fn run_views(
    addr: SocketAddr,
    connections: usize,
    size: usize,
    views: u32,
    warmup: Duration,
    duration: Duration,
    clients: Option<u32>,
) -> Outcome {
    let message = "x".repeat(size);
    let create_body = if views == 1 {
        Bytes::from(serde_json::json!({ "message": message }).to_string())
    } else {
        Bytes::from(serde_json::json!({ "message": message, "views": views }).to_string())
    };
    let expected_read = read_prefix(&message);
    let start = Instant::now() + warmup;
    let end = start + duration;
    let run_seed: u64 = rand::random();
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let (create_body, expected_read) = (create_body.clone(), expected_read.clone());
            let clients = clients.map(|n| Clients::new(n, run_seed ^ i as u64));
            tokio::spawn(async move { connection(addr, create_body, expected_read, views, start, end, clients).await })
        })
        .collect();
    let mut total = Outcome { elapsed: duration, ..Outcome::default() };
    for t in tasks {
        let o = t.await.expect("load task");
        total.pairs += o.pairs;
        total.warmup_pairs += o.warmup_pairs;
        total.errors += o.errors;
        total.latencies_us.extend(o.latencies_us);
    }
    total.latencies_us.sort_unstable();
    total
}

/// Sends exactly `clients` requests (`clients / 2` pairs, `clients` even), each from an address
/// no other request used (`10.a.b.c`, split between `connections` connections), as fast as the
/// server answers: what a server holds for that many distinct clients within one window.
pub async fn distinct(addr: SocketAddr, connections: usize, size: usize, clients: u32) -> Outcome {
    let message = "x".repeat(size);
    let create_body = Bytes::from(serde_json::json!({ "message": message }).to_string());
    let expected_read = read_prefix(&message);
    // Whole pairs, shared out as evenly as they go.
    let (pairs, conns) = (clients.min(1 << 24) / 2, connections as u32);
    let share = |i: u32| 2 * (i * (pairs / conns) + i.min(pairs % conns));
    let started = Instant::now();
    let far = started + Duration::from_secs(24 * 3600);
    let tasks: Vec<_> = (0..conns)
        .map(|i| {
            let (create_body, expected_read) = (create_body.clone(), expected_read.clone());
            let clients = Clients::Sequence { next: share(i), end: share(i + 1) };
            tokio::spawn(
                async move { connection(addr, create_body, expected_read, 1, started, far, Some(clients)).await },
            )
        })
        .collect();
    let mut total = Outcome::default();
    for t in tasks {
        let o = t.await.expect("load task");
        total.pairs += o.pairs;
        total.errors += o.errors;
        total.latencies_us.extend(o.latencies_us);
    }
    total.elapsed = started.elapsed();
    total.latencies_us.sort_unstable();
    total
}

/// How a read that returned `message` begins: `{"message":"…"` then `}` (the baseline, and
/// the reference) or `,"views_left":k}` (crypt).
fn read_prefix(message: &str) -> Bytes {
    let whole = serde_json::json!({ "message": message }).to_string();
    Bytes::from(whole.trim_end_matches('}').to_owned())
}

/// Where each request says it comes from: addresses `10.a.b.c` for client numbers below 2^24.
enum Clients {
    /// Numbers below `n`, drawn by a xorshift generator: cheap enough not to load the load
    /// generator.
    Random { n: u32, state: u64 },
    /// Each number from `next` up to `end` once; the connection stops when they run out.
    Sequence { next: u32, end: u32 },
}

impl Clients {
    fn new(n: u32, seed: u64) -> Self {
        Clients::Random {
            n: n.clamp(1, 1 << 24),
            state: 0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_add(1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
        }
    }

    fn exhausted(&self) -> bool {
        matches!(self, Clients::Sequence { next, end } if next >= end)
    }

    fn next(&mut self) -> http::HeaderValue {
        let i = match self {
            Clients::Random { n, state } => {
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                (*state % u64::from(*n)) as u32
            }
            Clients::Sequence { next, .. } => {
                *next += 1;
                *next - 1
            }
        };
        let text = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        http::HeaderValue::from_str(&text).expect("an address is a header value")
    }
}

async fn connect(addr: SocketAddr) -> Option<http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(conn);
    Some(sender)
}

async fn send(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
) -> Option<(http::StatusCode, Bytes)> {
    sender.ready().await.ok()?;
    let resp = sender.send_request(req).await.ok()?;
    let status = resp.status();
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some((status, body))
}

async fn connection(
    addr: SocketAddr,
    create_body: Bytes,
    expected_read: Bytes,
    views: u32,
    start: Instant,
    end: Instant,
    mut clients: Option<Clients>,
) -> Outcome {
    let mut out = Outcome::default();
    let Some(mut sender) = connect(addr).await else {
        out.errors += 1;
        return out;
    };
    loop {
        let t0 = Instant::now();
        if t0 >= end || clients.as_ref().is_some_and(Clients::exhausted) {
            break;
        }
        let counted = t0 >= start;
        let mut post = http::Request::post("/")
            .header("host", "bench")
            .header("content-type", "application/json")
            .body(Full::new(create_body.clone()))
            .unwrap();
        if let Some(c) = clients.as_mut() {
            post.headers_mut().insert("x-forwarded-for", c.next());
        }
        let created = match send(&mut sender, post).await {
            Some((s, body)) if s == 200 => serde_json::from_slice::<Created>(&body).ok(),
            _ => None,
        };
        let t1 = Instant::now();
        let Some(created) = created else {
            if counted {
                out.errors += 1;
            }
            match connect(addr).await {
                Some(s) => sender = s,
                None => return out,
            }
            continue;
        };
        // Each view is a read; the pair counts when every one returned the message.
        let (mut all_read, mut any_answer) = (true, false);
        let mut read_at = t1;
        let mut read_latencies = [0u32; 8];
        for view in 0..views {
            let mut get = http::Request::get(format!("/{}", created.id))
                .header("host", "bench")
                .body(Full::new(Bytes::new()))
                .unwrap();
            if let Some(c) = clients.as_mut() {
                get.headers_mut().insert("x-forwarded-for", c.next());
            }
            let read = send(&mut sender, get).await;
            let now = Instant::now();
            any_answer |= read.is_some();
            all_read &= matches!(&read, Some((s, body)) if *s == 200 && body.starts_with(&expected_read));
            if let Some(slot) = read_latencies.get_mut(view as usize) {
                *slot = (now - read_at).as_micros() as u32;
            }
            read_at = now;
            if read.is_none() {
                break;
            }
        }
        if !counted {
            out.warmup_pairs += u64::from(any_answer);
            continue;
        }
        if all_read {
            out.pairs += 1;
            out.latencies_us.push((t1 - t0).as_micros() as u32);
            out.latencies_us.extend_from_slice(&read_latencies[..(views as usize).min(8)]);
        } else {
            out.errors += 1;
        }
    }
    out
}
