//! `crypt-bench`: crypt against a minimal hyper baseline doing the same work, side by side.
//!
//! ```text
//! cargo run --release -p crypt-bench                 # the full sweep, writes bench/RESULTS.md
//! cargo run --release -p crypt-bench -- --quick      # a few seconds: completes with zero errors?
//! cargo run --release -p crypt-bench -- --headline   # only the 32-connection comparison
//! cargo run --release -p crypt-bench -- --headline --store files   # only files: 10 MiB, memory, envelope
//! cargo run --release -p crypt-bench -- --headline --clients 1000  # deployed rows with 1,000 clients
//! cargo run --release -p crypt-bench -- --headline --runs 21        # medians of 21 alternating runs
//! cargo run --release -p crypt-bench -- --headline --store redis --redis-own-core  # Redis on a core of its own
//! cargo run --release -p crypt-bench -- --headline --store memory --server-own-core # the server on a core of its own
//! cargo run --release -p crypt-bench -- server-memory 1000000  # RSS after a million distinct clients
//! cargo run --release -p crypt-bench -- server-memory 1000000 redis  # what Redis holds for them
//! cargo run --release -p crypt-bench -- --worker     # only the Worker: crypt against a JavaScript Worker
//! CRYPT_BENCH_BINARY=target/x86_64-unknown-linux-musl/release/crypt-server \
//!   cargo run --release -p crypt-bench -- --headline  # crypt as that binary (the image's build)
//! ```
//!
//! Every measurement starts a fresh server process (crypt, or the baseline in `baseline.rs`)
//! on a free port, with Redis (started here, on a free port) or in memory, and drives it from
//! this process over HTTP/1.1 keep-alive. crypt and the baseline alternate, so drift on a
//! shared machine hits both alike; the ratios are the figures to quote.

mod baseline;
mod load;
mod worker;

use crypt_redis_harness::{RedisCluster, RedisServer};
use load::Outcome;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    Crypt,
    Baseline,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Crypt => "crypt",
            Impl::Baseline => "baseline",
        }
    }
}

/// How crypt is configured for a run. The baseline never limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Rate limiting off, every request from one address (how the first benchmark ran).
    Off,
    /// As deployed: the default rate limit (60 per 60 s per client), metrics on, each request
    /// from one of `clients` addresses through a trusted proxy's `X-Forwarded-For`.
    Deployed { clients: u32 },
}

impl Shape {
    fn arg(self) -> &'static str {
        match self {
            Shape::Off => "off",
            Shape::Deployed { .. } => "default",
        }
    }

    fn clients(self) -> Option<u32> {
        match self {
            Shape::Off => None,
            Shape::Deployed { clients } => Some(clients),
        }
    }

    fn label(self) -> String {
        match self {
            Shape::Off => "limiting off, 1 client".into(),
            Shape::Deployed { clients } => format!("default limit, {clients} clients"),
        }
    }
}

/// The core each server under test is pinned to (`--server-own-core`).
static SERVER_CORE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Pins every thread of process `pid` to `cpus` (a `taskset` CPU list).
fn pin(pid: u32, cpus: String) {
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", &cpus, &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "taskset could not pin process {pid} to CPUs {cpus}");
}

/// A server process under test, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(which: Impl, redis_url: Option<&str>, shape: Shape) -> Self {
        if which == Impl::Crypt {
            if let Some(binary) = std::env::var_os("CRYPT_BENCH_BINARY") {
                return Self::start_binary(binary.as_ref(), redis_url, shape.arg());
            }
        }
        let mut cmd = Command::new(std::env::current_exe().expect("own path"));
        cmd.args(["serve", which.name(), shape.arg()]);
        if let Some(url) = redis_url {
            cmd.arg(url);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("READY line");
        let addr = line.trim().strip_prefix("READY ").expect("READY <addr>").parse().expect("addr");
        let server = Server { child, addr };
        server.pin();
        server
    }

    /// crypt in a child process of its own, with `CRYPT_MAX_INFLIGHT_BODY_BYTES` set when given.
    fn start_with_env(which: Impl, shape: Shape, inflight: Option<String>) -> Self {
        let mut cmd = Command::new(std::env::current_exe().expect("own path"));
        cmd.args(["serve", which.name(), shape.arg()]);
        if let Some(bytes) = inflight {
            cmd.env("CRYPT_MAX_INFLIGHT_BODY_BYTES", bytes);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("READY line");
        let addr = line.trim().strip_prefix("READY ").expect("READY <addr>").parse().expect("addr");
        Server { child, addr }
    }

    /// A `crypt-server` binary (`CRYPT_BENCH_BINARY`: the static build the container image
    /// ships, say) in place of crypt inside this process, with the same settings. It logs its
    /// address; the rest of its log is drained so that it never blocks on a full pipe.
    fn start_binary(binary: &std::path::Path, redis_url: Option<&str>, shape: &str) -> Self {
        let mut child = Command::new(binary)
            .env_clear()
            .envs(crypt_vars(shape, redis_url.map(str::to_owned)))
            .env("CRYPT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("CRYPT_BENCH_BINARY {}: {e}", binary.display()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if stderr.read_line(&mut line).expect("the server's log") == 0 {
                panic!("CRYPT_BENCH_BINARY {} exited before it listened", binary.display());
            }
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr: String =
                    rest.chars().take_while(|c| c.is_ascii_alphanumeric() || ".:".contains(*c)).collect();
                break addr.parse().expect("the logged address");
            }
        };
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let server = Server { child, addr };
        server.pin();
        server
    }

    /// With `--server-own-core` (`SERVER_CORE` set), the server on the last core, alone.
    fn pin(&self) {
        if let Some(cpu) = SERVER_CORE.get() {
            pin(self.child.id(), cpu.to_string());
        }
    }

    /// Peak resident memory (VmHWM) in MiB.
    fn peak_rss_mib(&self) -> f64 {
        self.status_kib("VmHWM:") / 1024.0
    }

    /// Current resident memory (VmRSS) in MiB.
    fn rss_mib(&self) -> f64 {
        self.status_kib("VmRSS:") / 1024.0
    }

    /// CPU time the server process has used (user + system), in microseconds.
    fn cpu_us(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        // Every field keeps its place: the first (the state) is a letter, so filtering out what
        // does not parse as a number would shift utime onto stime and stime onto cutime.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
        let ticks = field(11) + field(12);
        ticks * 1e6 / 100.0 // USER_HZ is 100 on Linux
    }

    fn status_kib(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(f64::NAN)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// crypt's settings for a run of `shape` (`off`, `default` or `no-limit`), on Redis at
/// `redis_url` or in memory.
fn crypt_vars(shape: &str, redis_url: Option<String>) -> Vec<(&'static str, String)> {
    let mut vars =
        vec![("CRYPT_LISTEN", "127.0.0.1:0".to_owned()), ("CRYPT_MEMORY_CAPACITY_BYTES", (8u64 << 30).to_string())];
    // The files section's in-flight bound, handed down by its parent.
    if let Ok(bytes) = std::env::var("CRYPT_MAX_INFLIGHT_BODY_BYTES") {
        vars.push(("CRYPT_MAX_INFLIGHT_BODY_BYTES", bytes));
    }
    match shape {
        "off" => vars.push(("CRYPT_RATE_LIMIT_MAX", "0".to_owned())),
        // As shipped but with limiting off: the default's price without the limiter
        // (scripts/bench-cpu-split).
        "no-limit" => {
            vars.push(("CRYPT_RATE_LIMIT_MAX", "0".to_owned()));
            vars.push(("CRYPT_TRUSTED_PROXIES", "127.0.0.1".to_owned()));
        }
        // The default limit; the load generator's X-Forwarded-For is believed.
        _ => vars.push(("CRYPT_TRUSTED_PROXIES", "127.0.0.1".to_owned())),
    }
    // `sqlite:PATH`: the SQLite store on that file.
    if let Some(path) = redis_url.as_deref().and_then(|u| u.strip_prefix("sqlite:")) {
        vars.extend([("CRYPT_STORE", "sqlite".to_owned()), ("CRYPT_SQLITE_PATH", path.to_owned())]);
    } else if let Some(url) = redis_url {
        vars.extend([
            ("CRYPT_STORE", "redis".to_owned()),
            ("CRYPT_REDIS_URL", url),
            ("CRYPT_REDIS_PREFIX", "bench:".to_owned()),
        ]);
    }
    vars
}

/// The child process: serve until killed, after printing `READY <addr>`.
fn serve(which: &str, shape: &str, redis_url: Option<String>) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        match which {
            "crypt" => {
                let vars = crypt_vars(shape, redis_url);
                let settings = crypt_server::Config::from_vars(vars).expect("valid bench settings");
                let running = crypt_server::spawn(settings).await.expect("crypt starts");
                println!("READY {}", running.addr());
                std::future::pending::<()>().await;
            }
            _ => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                println!("READY {}", listener.local_addr().unwrap());
                baseline::serve(listener, redis_url).await;
            }
        }
    });
}

struct Plan {
    quick: bool,
    duration: Duration,
    warmup: Duration,
    headline_runs: usize,
}

#[derive(Clone)]
struct Row {
    store: &'static str,
    connections: usize,
    size: usize,
    which: Impl,
    outcome: Outcome,
    peak_rss_mib: f64,
}

/// One measurement: the outcome, the server's peak RSS (MiB) and its CPU time per pair (µs).
fn measure(
    rt: &tokio::runtime::Runtime,
    which: Impl,
    redis: Option<&str>,
    conns: usize,
    size: usize,
    plan: &Plan,
    shape: Shape,
) -> (Outcome, f64, f64) {
    let server = Server::start(which, redis, shape);
    let cpu_before = server.cpu_us();
    let outcome = rt.block_on(load::run(server.addr, conns, size, plan.warmup, plan.duration, shape.clients()));
    let cpu_per_pair = (server.cpu_us() - cpu_before) / (outcome.pairs + outcome.warmup_pairs).max(1) as f64;
    (outcome, server.peak_rss_mib(), cpu_per_pair)
}

/// Section 1c: crypt on SQLite, on Redis with `appendfsync always` and in memory, alternating,
/// 32 connections, limiting off; then the database's bytes per live message.
fn durable(rt: &tokio::runtime::Runtime, plan: &Plan) -> (String, u64) {
    let mut report = String::new();
    let mut errors = 0;
    let aof = RedisServer::start_with(&["--save", "", "--appendonly", "yes", "--appendfsync", "always"]);
    let aof_url = aof.url();
    let _ = writeln!(
        report,
        "\n## Durable on one machine: SQLite, Redis with appendfsync always, memory (32 connections, 100 B, limiting \
         off; median of {} alternating runs)\n\n\
         SQLite and Redis with `appendfsync always` make the same promise: a write is fsynced before it is answered \
         (and a read, which burns, is a write). Every run a fresh server, and for SQLite a fresh database in the \
         temporary folder ({}).\n",
        plan.headline_runs,
        std::env::temp_dir().display()
    );
    let _ = writeln!(report, "| crypt on | promise | pairs/s | p50 ms | p99 ms | server CPU µs/pair |");
    let _ = writeln!(report, "|---|---|---:|---:|---:|---:|");
    let kinds = ["sqlite", "redis-aof", "memory"];
    // Per store: pairs/s, p50, p99 and CPU per pair of each run.
    type Runs = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);
    let mut results: Vec<Runs> = vec![Default::default(); kinds.len()];
    for run in 0..plan.headline_runs {
        let mut order: Vec<usize> = (0..kinds.len()).collect();
        order.rotate_left(run % kinds.len());
        for k in order {
            let dir = crypt_conformance::launch::ScratchDir::new("bench-sqlite");
            let url = match kinds[k] {
                "sqlite" => Some(format!("sqlite:{}", dir.path().join("crypt.db").display())),
                "redis-aof" => Some(aof_url.clone()),
                _ => None,
            };
            let (o, _, cpu) = measure(rt, Impl::Crypt, url.as_deref(), 32, 100, plan, Shape::Off);
            errors += o.errors;
            eprintln!(
                "durable {} run {run}: {:.0} pairs/s, p50 {:.2} p99 {:.2} ms, {} errors",
                kinds[k],
                o.pairs_per_sec(),
                o.quantile_ms(0.5),
                o.quantile_ms(0.99),
                o.errors
            );
            let r = &mut results[k];
            r.0.push(o.pairs_per_sec());
            r.1.push(o.quantile_ms(0.5));
            r.2.push(o.quantile_ms(0.99));
            r.3.push(cpu);
        }
    }
    let medians: Vec<(f64, f64, f64, f64)> =
        results.into_iter().map(|(a, b, c, d)| (median(a), median(b), median(c), median(d))).collect();
    for (k, (rate, p50, p99, cpu)) in medians.iter().enumerate() {
        let promise = match kinds[k] {
            "sqlite" => "on disk before the answer (WAL, synchronous=FULL, group commit)",
            "redis-aof" => "on disk before the answer (AOF, appendfsync always)",
            _ => "none: lost on restart",
        };
        let name = match kinds[k] {
            "redis-aof" => "Redis, appendfsync always",
            other => other,
        };
        let _ = writeln!(report, "| {name} | {promise} | {rate:.0} | {p50:.2} | {p99:.2} | {cpu:.1} |");
    }
    let (sqlite, aof_row, memory) = (medians[0], medians[1], medians[2]);
    let _ = writeln!(
        report,
        "\nSQLite against Redis with appendfsync always: **{:.2}×** the pairs/s, p99 **{:.2}×**. Against memory: \
         **{:.2}×** the pairs/s, p99 {:.2}×.",
        sqlite.0 / aof_row.0,
        sqlite.2 / aof_row.2,
        sqlite.0 / memory.0,
        sqlite.2 / memory.2
    );
    // What the database holds per live (unread) message.
    let count = if plan.quick { 2_000 } else { 50_000 };
    let dir = crypt_conformance::launch::ScratchDir::new("bench-sqlite-size");
    let db = dir.path().join("crypt.db");
    let server = Server::start(Impl::Crypt, Some(&format!("sqlite:{}", db.display())), Shape::Off);
    let stored = rt.block_on(fill(server.addr, count, 100));
    // The checkpoint that follows the last write moves the WAL into the file.
    std::thread::sleep(crypt_sqlite::ERASE_WITHIN + Duration::from_millis(500));
    let bytes: u64 = std::fs::read_dir(dir.path())
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0);
    let stored_count = stored / 100;
    let _ = writeln!(
        report,
        "\nDatabase size: {stored_count} live messages of 100 B (and their receipts) in {:.1} MiB of files: \
         **{} bytes a message**.",
        bytes as f64 / (1024.0 * 1024.0),
        bytes / stored_count.max(1) as u64
    );
    drop(server);
    (report, errors)
}

/// One HTTP/1.1 exchange on a kept-alive connection: the status and the body (read by its
/// Content-Length).
async fn exchange(stream: &mut tokio::net::TcpStream, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body).await.expect("write body");
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 256 * 1024];
    let (status, len, start) = loop {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head[9..12].parse().expect("status");
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().expect("length"));
            break (status, len, end + 4);
        }
    };
    while buf.len() < start + len {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
    (status, buf[start..start + len].to_vec())
}

/// Creates a 10 MiB file and reads it back, `rounds` times on one connection: MB/s of the
/// bytes moved (up and down), and how many came back wrong.
async fn file_round_trips(addr: SocketAddr, file: &[u8], rounds: usize) -> (f64, usize) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        file.len()
    );
    let started = Instant::now();
    let mut wrong = 0;
    for _ in 0..rounds {
        let (status, body) = exchange(&mut stream, &head, file).await;
        let id =
            serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["id"].as_str().map(str::to_owned));
        let Some(id) = id.filter(|_| status == 200) else {
            wrong += 1;
            continue;
        };
        let (status, back) = exchange(&mut stream, &format!("GET /{id} HTTP/1.1\r\nHost: bench\r\n\r\n"), &[]).await;
        wrong += usize::from(status != 200 || back != file);
    }
    let moved = (2 * rounds * file.len()) as f64;
    (moved / started.elapsed().as_secs_f64() / 1e6, wrong)
}

/// 32 uploads of a 10 MiB file at once, each on its own connection: their statuses.
async fn concurrent_uploads(addr: SocketAddr, file: &[u8], count: usize) -> Vec<u16> {
    let head = format!(
        "POST / HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        file.len()
    );
    let uploads = (0..count).map(|_| {
        let head = head.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            exchange(&mut stream, &head, file).await.0
        }
    });
    futures::future::join_all(uploads).await
}

/// Section 1d: files. A 10 MiB file's create and read against the baseline doing the same with
/// raw bytes; the server's peak memory with 32 concurrent 10 MiB uploads, by in-flight bound;
/// and the file envelope's speed (what `crypt send --file` and `crypt open` run).
fn files_section(rt: &tokio::runtime::Runtime, plan: &Plan) -> (String, u64) {
    let mut report = String::new();
    let mut errors = 0u64;
    let file: Vec<u8> = (0..10usize << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let (runs, rounds) = if plan.quick { (1, 3) } else { (plan.headline_runs, 20) };
    let _ = writeln!(
        report,
        "\n## Files: 10 MiB (one connection, create then read, {rounds} files a run; median of {runs} alternating runs)\n\n\
         The baseline stores the raw bytes in a map and answers them back; crypt does the same through its rules \
         (memory store, limiting off). MB/s counts the bytes moved both ways.\n"
    );
    let mut rates = [Vec::new(), Vec::new()];
    for run in 0..runs {
        for (k, which) in [(0, Impl::Crypt), (1, Impl::Baseline)].into_iter().cycle().skip(run % 2).take(2) {
            let server = Server::start(which, None, Shape::Off);
            let (rate, wrong) = rt.block_on(file_round_trips(server.addr, &file, rounds));
            errors += wrong as u64;
            eprintln!("files {} run {run}: {rate:.0} MB/s, {wrong} wrong", which.name());
            rates[k].push(rate);
        }
    }
    let (crypt, baseline) = (median(rates[0].clone()), median(rates[1].clone()));
    let _ = writeln!(report, "| server | MB/s |\n|---|---:|\n| crypt | {crypt:.0} |\n| baseline | {baseline:.0} |");
    let _ = writeln!(report, "\ncrypt against the baseline: **{:.2}×**.\n", crypt / baseline);
    let _ = writeln!(report, "| 32 uploads of 10 MiB at once | answers | server peak RSS MiB |\n|---|---|---:|");
    for (label, bound) in [("in-flight bound 64 MiB", Some(64u64 << 20)), ("default bound (256 MiB)", None)] {
        let server = Server::start_with_env(Impl::Crypt, Shape::Off, bound.map(|b| b.to_string()));
        let statuses = rt.block_on(concurrent_uploads(server.addr, &file, 32));
        let mut counts = std::collections::BTreeMap::new();
        for s in statuses {
            *counts.entry(s).or_insert(0) += 1;
        }
        errors += counts.iter().filter(|(s, _)| ![200, 503].contains(*s)).map(|(_, n)| *n as u64).sum::<u64>();
        let _ = writeln!(report, "| {label} | {counts:?} | {:.0} |", server.peak_rss_mib());
    }
    let _ = writeln!(report, "\n(The 32 files kept by the memory store are 320 MiB of that.)\n");
    // The envelope's own speed, on this core: 64 MiB sealed and opened in 64 KiB writes.
    let key = crypt_envelope::Key::generate();
    let meta = crypt_envelope::FileMeta { name: "bench.bin".into(), ..Default::default() };
    let big: Vec<u8> = file.iter().copied().cycle().take(64 << 20).collect();
    let started = Instant::now();
    let mut sealer = crypt_envelope::FileSealer::new(Vec::with_capacity(65 << 20), &key, None, &meta).expect("sealer");
    for piece in big.chunks(64 * 1024) {
        std::io::Write::write_all(&mut sealer, piece).expect("seal");
    }
    let sealed = sealer.finish().expect("finish");
    let seal_rate = big.len() as f64 / started.elapsed().as_secs_f64() / 1e6;
    let started = Instant::now();
    let (_, opened) = crypt_envelope::open_file(&sealed, &key, None).expect("opens");
    let open_rate = big.len() as f64 / started.elapsed().as_secs_f64() / 1e6;
    errors += u64::from(opened != big);
    let _ = writeln!(
        report,
        "File envelope (AES-256-GCM in 64 KiB pieces, one core): seals at **{seal_rate:.0} MB/s**, opens at \
         **{open_rate:.0} MB/s** (64 MiB)."
    );
    (report, errors)
}

fn median(mut xs: Vec<f64>) -> f64 {
    // `total_cmp`: a quantile of a run that completed nothing is NaN, and must not panic here.
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `serve crypt|baseline off|default|no-limit [REDIS_URL]`: one server, `READY ADDR` when it
    // listens (what the harness starts for each run, and the scripts drive by hand).
    if args.first().map(String::as_str) == Some("serve") {
        return serve(&args[1], &args[2], args.get(3).cloned());
    }
    // `drive ADDR CONNS SIZE SECS [CLIENTS]`: load a server started elsewhere (e.g. under valgrind, to count
    // instructions per pair) and print what was done.
    if args.first().map(String::as_str) == Some("drive") {
        let num = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok()).expect("drive ADDR CONNS SIZE SECS");
        let addr: SocketAddr = args.get(1).and_then(|a| a.parse().ok()).expect("drive ADDR CONNS SIZE SECS");
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let o = rt.block_on(load::run(
            addr,
            num(2) as usize,
            num(3) as usize,
            Duration::ZERO,
            Duration::from_secs(num(4)),
            args.get(5).and_then(|n| n.parse().ok()),
        ));
        println!(
            "pairs {} errors {} p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} ms",
            o.pairs,
            o.errors,
            o.quantile_ms(0.5),
            o.quantile_ms(0.9),
            o.quantile_ms(0.99),
            o.quantile_ms(0.999)
        );
        return;
    }
    if args.first().map(String::as_str) == Some("limiter-memory") {
        println!("{}", limiter_memory(1_000_000));
        return;
    }
    if args.first().map(String::as_str) == Some("server-memory") {
        // server-memory [CLIENTS] [redis]: crypt-server as shipped (memory store) and the baseline
        // after a request from each of CLIENTS distinct addresses, all within one window; with
        // `redis`, on the Redis store, what Redis holds.
        let clients = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let (report, errors) = if args.get(2).map(String::as_str) == Some("redis") {
            redis_memory(&rt, clients)
        } else {
            server_memory(&rt, clients)
        };
        println!("{report}");
        if errors > 0 {
            std::process::exit(1);
        }
        return;
    }
    if args.first().map(String::as_str) == Some("limiter-speed") {
        // limiter-speed [CLIENTS] [HITS PER THREAD]: the memory limiter alone, two threads.
        let clients = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
        let hits = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(2_000_000);
        println!("{}", limiter_speed(clients, hits));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    if args.iter().any(|a| a == "--worker") {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        // `--edge-store kv` (or `durable-object`) compares on one store only.
        let stores = match args.iter().position(|a| a == "--edge-store").and_then(|i| args.get(i + 1)) {
            Some(one) => vec![one.clone()],
            None => vec!["kv".to_owned(), "durable-object".to_owned()],
        };
        let plan = if quick {
            worker::WorkerPlan {
                stores,
                runs: 1,
                connections: 8,
                warmup: Duration::from_millis(300),
                duration: Duration::from_secs(1),
            }
        } else {
            worker::WorkerPlan {
                stores,
                runs: 7,
                connections: 8,
                warmup: Duration::from_secs(3),
                duration: Duration::from_secs(4),
            }
        };
        let (report, errors) = worker::compare(&rt, &plan);
        // A full run of this tree's Worker on both stores is the record (bench/RESULTS-worker.md).
        if !quick && std::env::var_os("CRYPT_BENCH_WORKER_MAIN").is_none() && plan.stores.len() == 2 {
            let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
            let text = format!(
                "# crypt benchmark: the Worker

Machine: {cores} cores; load generator on the same machine.
{report}"
            );
            std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS-worker.md"), text)
                .expect("write RESULTS-worker.md");
        }
        println!("{report}");
        println!("total errors: {errors}");
        if errors > 0 {
            std::process::exit(1);
        }
        return;
    }
    // Only the headline comparison, for iterating on a change (nothing is written).
    let headline_only = args.iter().any(|a| a == "--headline");
    let plan = if quick {
        Plan { quick, duration: Duration::from_millis(800), warmup: Duration::from_millis(200), headline_runs: 1 }
    } else {
        // `--runs N`: more alternating runs in the headline, for a median that moves less.
        let runs = args
            .iter()
            .position(|a| a == "--runs")
            .and_then(|i| args.get(i + 1))
            .map(|n| n.parse().expect("--runs N: a number of runs"))
            .unwrap_or(7);
        Plan { quick, duration: Duration::from_secs(3), warmup: Duration::from_millis(500), headline_runs: runs }
    };
    let clients: u32 = args
        .iter()
        .position(|a| a == "--clients")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse().expect("--clients N: a number up to 16777216"))
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let redis = RedisServer::start();
    let redis_url = redis.url();
    let cluster = RedisCluster::start();
    let cluster_urls = cluster.urls();
    // `--redis-own-core`: Redis (and the Cluster's nodes) on the last core, this process (the
    // load generator) and every server it starts on the others, as Redis runs in a deployment:
    // on a host or a core of its own, its work not taken from crypt's. Without it everything
    // shares every core, and Redis's time per pair comes straight off the pairs/s.
    // `--server-own-core`: likewise the server under test on the last core and the load
    // generator (this process) on the others, as clients come from other machines.
    let redis_own_core = args.iter().any(|a| a == "--redis-own-core");
    let server_own_core = args.iter().any(|a| a == "--server-own-core");
    if redis_own_core || server_own_core {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        assert!(cores >= 2, "--redis-own-core and --server-own-core need at least 2 cores");
        assert!(!(redis_own_core && server_own_core), "--redis-own-core and --server-own-core: one at a time");
        let rest = if cores == 2 { "0".to_owned() } else { format!("0-{}", cores - 2) };
        let redis_cores = if redis_own_core { (cores - 1).to_string() } else { rest.clone() };
        for pid in redis.pid().into_iter().chain(cluster.pids()) {
            pin(pid, redis_cores.clone());
        }
        if server_own_core {
            let _ = SERVER_CORE.set(cores - 1);
        }
        pin(std::process::id(), rest);
    }
    let stores: [(&'static str, Option<&str>); 2] = [("memory", None), ("redis", Some(redis_url.as_str()))];
    let mut report = String::new();
    let mut errors = 0;
    let _ = writeln!(
        report,
        "# crypt benchmark\n\nMachine: {} cores; load generator on the same machine. Each line is one run of {:?} after {:?} of warm-up, \
         a fresh server process per run. `pairs/s` counts create+read pairs whose read returned what was created.\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        plan.duration,
        plan.warmup
    );

    // 1. The headline: 32 connections, 100-byte messages, crypt and baseline alternating, in the
    //    configuration the first benchmark used and in the one people deploy.
    let _ = writeln!(
        report,
        "## Headline: 32 connections, 100 B messages (median of {} alternating runs)\n\n\
         The baseline never limits and has no metrics, so the ratio is the whole price of crypt's rules. \
         \"default limit\": crypt as shipped (60 requests per 60 s per client, metrics on), each request from one of \
         N addresses drawn at random (`X-Forwarded-For` through a trusted proxy).\n",
        plan.headline_runs
    );
    if redis_own_core {
        let _ = writeln!(
            report,
            "Redis (and the Cluster's nodes) ran on a core of its own (`--redis-own-core`); the servers and the load \
             generator shared the rest.\n"
        );
    }
    if server_own_core {
        let _ = writeln!(
            report,
            "Each server under test ran on a core of its own (`--server-own-core`); the load generator (and Redis) \
             shared the rest.\n"
        );
    }
    if let Some(binary) = std::env::var_os("CRYPT_BENCH_BINARY") {
        let _ = writeln!(report, "crypt is the binary `{}` (`CRYPT_BENCH_BINARY`).\n", binary.to_string_lossy());
    }
    let _ = writeln!(
        report,
        "| store | crypt configuration | crypt pairs/s | baseline pairs/s | ratio | crypt p99 ms | baseline p99 ms | p99 ratio | \
         crypt server CPU µs/pair | baseline server CPU µs/pair | CPU ratio | crypt peak RSS MiB |"
    );
    let _ = writeln!(report, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let headline_stores: [(&'static str, Option<&str>); 3] =
        [("memory", None), ("redis", Some(redis_url.as_str())), ("redis cluster", Some(cluster_urls.as_str()))];
    // `--store NAME` (memory, redis, "redis cluster") and `--only-default` narrow the headline
    // while iterating on one of them.
    let only_store = args.iter().position(|a| a == "--store").and_then(|i| args.get(i + 1)).cloned();
    let shapes: &[Shape] = if args.iter().any(|a| a == "--only-default") {
        &[Shape::Deployed { clients }]
    } else {
        &[Shape::Off, Shape::Deployed { clients }]
    };
    for (store, url) in headline_stores {
        if only_store.as_deref().is_some_and(|only| only != store) {
            continue;
        }
        for &shape in shapes {
            let (mut c_rate, mut b_rate, mut c_p99, mut b_p99) = (vec![], vec![], vec![], vec![]);
            let (mut c_cpu, mut b_cpu, mut c_rss) = (vec![], vec![], vec![]);
            for run in 0..plan.headline_runs {
                let order = if run % 2 == 0 { [Impl::Crypt, Impl::Baseline] } else { [Impl::Baseline, Impl::Crypt] };
                for which in order {
                    let (o, rss, cpu) = measure(&rt, which, url, 32, 100, &plan, shape);
                    errors += o.errors;
                    if which == Impl::Crypt {
                        c_rss.push(rss);
                    }
                    eprintln!(
                        "headline {store} [{}] {} run {run}: {:.0} pairs/s, p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} ms, {} errors",
                        shape.label(),
                        which.name(),
                        o.pairs_per_sec(),
                        o.quantile_ms(0.5),
                        o.quantile_ms(0.9),
                        o.quantile_ms(0.99),
                        o.quantile_ms(0.999),
                        o.errors
                    );
                    let (rate, p99, cpus) = if which == Impl::Crypt {
                        (&mut c_rate, &mut c_p99, &mut c_cpu)
                    } else {
                        (&mut b_rate, &mut b_p99, &mut b_cpu)
                    };
                    rate.push(o.pairs_per_sec());
                    p99.push(o.quantile_ms(0.99));
                    cpus.push(cpu);
                }
            }
            let (c, b, cp, bp) = (median(c_rate), median(b_rate), median(c_p99), median(b_p99));
            let (cc, bc) = (median(c_cpu), median(b_cpu));
            let _ = writeln!(
                report,
                "| {store} | {} | {c:.0} | {b:.0} | **{:.2}** | {cp:.2} | {bp:.2} | **{:.2}** | {cc:.1} | {bc:.1} | **{:.2}** | {:.1} |",
                shape.label(),
                c / b,
                cp / bp,
                cc / bc,
                median(c_rss)
            );
        }
    }

    // 1b. Views: each message created for three views and read three times (crypt only: the
    //     baseline burns on its first read). Limiting off, 32 connections, 100 B.
    let _ = writeln!(
        report,
        "\n## Views: a message of 3 views, read 3 times (crypt only; limiting off; median of {} runs)\n\n\
         A \"create\" here is one create and its three reads. Requests/s against the headline's one-view crypt \
         (limiting off) measured beside it, which is what a view costs against a create.\n",
        plan.headline_runs
    );
    let _ = writeln!(report, "| store | views | creates/s | requests/s | requests/s, 1 view | ratio | p99 ms |");
    let _ = writeln!(report, "|---|---:|---:|---:|---:|---:|---:|");
    for (store, url) in [("memory", None), ("redis", Some(redis_url.as_str()))] {
        if only_store.as_deref().is_some_and(|only| only != store) {
            continue;
        }
        let (mut three, mut one, mut p99) = (vec![], vec![], vec![]);
        for run in 0..plan.headline_runs {
            for views in if run % 2 == 0 { [3, 1] } else { [1, 3] } {
                let server = Server::start(Impl::Crypt, url, Shape::Off);
                let o = rt.block_on(load::run_views(server.addr, 32, 100, views, plan.warmup, plan.duration, None));
                errors += o.errors;
                let requests = o.pairs_per_sec() * f64::from(views + 1);
                eprintln!("views {store} views={views} run {run}: {requests:.0} requests/s, {} errors", o.errors);
                if views == 3 {
                    three.push(o.pairs_per_sec());
                    p99.push(o.quantile_ms(0.99));
                } else {
                    one.push(requests);
                }
            }
        }
        let (creates, single) = (median(three), median(one));
        let _ = writeln!(
            report,
            "| {store} | 3 | {creates:.0} | {:.0} | {single:.0} | **{:.2}** | {:.2} |",
            creates * 4.0,
            creates * 4.0 / single,
            median(p99)
        );
    }

    // 1c. Durable on one machine: SQLite against Redis with the same promise (`appendfsync
    //     always`: every write fsynced before its answer) and against memory (no promise).
    if only_store.as_deref().is_none_or(|only| only == "sqlite") {
        let (text, durable_errors) = durable(&rt, &plan);
        errors += durable_errors;
        report.push_str(&text);
    }

    // 1d. Files: 10 MiB through crypt and the baseline, memory under concurrent uploads, and the
    //     envelope's speed.
    if only_store.as_deref().is_none_or(|only| only == "files") {
        let (text, file_errors) = files_section(&rt, &plan);
        errors += file_errors;
        report.push_str(&text);
    }

    if headline_only {
        println!("{report}");
        return;
    }

    // 2. The sweep.
    let (conns, sizes): (&[usize], &[usize]) =
        if plan.quick { (&[8], &[100]) } else { (&[1, 8, 32, 128], &[100, 10_240, 102_400]) };
    let mut rows = Vec::new();
    for (store, url) in stores {
        for &c in conns {
            for &size in sizes {
                for which in [Impl::Crypt, Impl::Baseline] {
                    let (outcome, peak_rss_mib, _) = measure(&rt, which, url, c, size, &plan, Shape::Off);
                    errors += outcome.errors;
                    eprintln!(
                        "sweep {store} c={c} size={size} {}: {:.0} pairs/s",
                        which.name(),
                        outcome.pairs_per_sec()
                    );
                    rows.push(Row { store, connections: c, size, which, outcome, peak_rss_mib });
                }
            }
        }
    }
    let _ = writeln!(report, "\n## Sweep (one run each)\n");
    let _ = writeln!(report, "| store | conns | size | server | pairs/s | req/s | p50 ms | p99 ms | p99.9 ms | errors | peak RSS MiB | crypt/baseline |");
    let _ = writeln!(report, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for pair in rows.chunks(2) {
        let ratio = pair[0].outcome.pairs_per_sec() / pair[1].outcome.pairs_per_sec();
        for (i, r) in pair.iter().enumerate() {
            let o = &r.outcome;
            let _ = writeln!(
                report,
                "| {} | {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {} |",
                r.store,
                r.connections,
                r.size,
                r.which.name(),
                o.pairs_per_sec(),
                o.requests_per_sec(),
                o.quantile_ms(0.5),
                o.quantile_ms(0.99),
                o.quantile_ms(0.999),
                o.errors,
                r.peak_rss_mib,
                if i == 0 { format!("{ratio:.2}") } else { String::new() }
            );
        }
    }

    if !plan.quick {
        // 3. Memory: 100,000 stored 1 KiB messages.
        let _ = writeln!(report, "\n## Memory: 100,000 stored 1 KiB messages (not read)\n");
        let _ = writeln!(report, "| server | RSS MiB | stored MiB | target (1.3 × stored + 20) MiB |");
        let _ = writeln!(report, "|---|---:|---:|---:|");
        for which in [Impl::Crypt, Impl::Baseline] {
            let server = Server::start(which, None, Shape::Off);
            let stored = rt.block_on(fill(server.addr, 100_000, 1024));
            let rss = server.rss_mib();
            let stored_mib = stored as f64 / (1024.0 * 1024.0);
            let _ =
                writeln!(report, "| {} | {rss:.1} | {stored_mib:.1} | {:.1} |", which.name(), 1.3 * stored_mib + 20.0);
        }

        // 3b. The memory limiter's cost per client, in a process of its own.
        let out = Command::new(std::env::current_exe().expect("own path")).arg("limiter-memory").output().unwrap();
        let _ = writeln!(report, "\n## Memory limiter: 1,000,000 distinct clients in one window\n");
        let _ = writeln!(report, "{}", String::from_utf8_lossy(&out.stdout).trim());

        // 3c. The whole server with as many distinct clients in its window.
        let _ = writeln!(report, "\n## Server memory: 1,000,000 distinct clients in one window (memory store)\n");
        let (text, server_errors) = server_memory(&rt, 1_000_000);
        errors += server_errors;
        let _ = write!(report, "{text}");
        let _ = writeln!(report, "\n## Redis memory: 1,000,000 distinct clients in one window (Redis store)\n");
        let (text, redis_errors) = redis_memory(&rt, 1_000_000);
        errors += redis_errors;
        let _ = write!(report, "{text}");

        // 4. Scale: 1 vs 2 crypt processes on one Redis and on a 3-master Redis Cluster.
        let _ = writeln!(report, "\n## Scale: crypt processes on one backend (64 connections split evenly, 100 B)\n");
        let _ = writeln!(report, "| backend | processes | pairs/s | p99 ms |");
        let _ = writeln!(report, "|---|---:|---:|---:|");
        for (backend, url) in [("redis", redis_url.clone()), ("redis cluster (3 masters)", cluster_urls.clone())] {
            for processes in [1usize, 2] {
                let servers: Vec<Server> =
                    (0..processes).map(|_| Server::start(Impl::Crypt, Some(&url), Shape::Off)).collect();
                let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
                let o = rt.block_on(async {
                    let runs =
                        addrs.iter().map(|&a| load::run(a, 64 / processes, 100, plan.warmup, plan.duration, None));
                    let parts = futures::future::join_all(runs).await;
                    let mut all = Outcome { elapsed: plan.duration, ..Outcome::default() };
                    for p in parts {
                        all.pairs += p.pairs;
                        all.errors += p.errors;
                        all.latencies_us.extend(p.latencies_us);
                    }
                    all.latencies_us.sort_unstable();
                    all
                });
                errors += o.errors;
                let _ = writeln!(
                    report,
                    "| {backend} | {processes} | {:.0} | {:.2} |",
                    o.pairs_per_sec(),
                    o.quantile_ms(0.99)
                );
            }
        }
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS.md"), &report).expect("write RESULTS.md");
    }
    println!("{report}");
    println!("total errors: {errors}");
    if errors > 0 {
        std::process::exit(1);
    }
}

/// Stores `count` messages of `size` bytes (never read) over 16 connections; returns bytes stored.
async fn fill(addr: SocketAddr, count: usize, size: usize) -> usize {
    let body = bytes::Bytes::from(serde_json::json!({ "message": "m".repeat(size) }).to_string());
    let per = count / 16;
    let tasks = (0..16).map(|_| {
        let body = body.clone();
        tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
            tokio::spawn(conn);
            for _ in 0..per {
                sender.ready().await.unwrap();
                let req = http::Request::post("/")
                    .header("host", "bench")
                    .body(http_body_util::Full::new(body.clone()))
                    .unwrap();
                let resp = sender.send_request(req).await.unwrap();
                assert_eq!(resp.status(), 200);
                let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
            }
        })
    });
    for t in futures::future::join_all(tasks).await {
        t.unwrap();
    }
    per * 16 * size
}

/// Resident memory of this process, in bytes.
fn own_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// What the memory limiter holds for `n` distinct clients with one request each in the window
/// (the server's default limit), measured as this process's resident memory.
/// Nanoseconds per hit of the memory limiter, two threads hitting it at once, each hit from
/// one of `clients` addresses drawn at random (the key written as the server writes it), the
/// clock moving a millisecond every thousand hits. The first half of the hits warms the map up;
/// the second half is timed. Wall-clock time, so it counts what the instruction counts of
/// `scripts/bench-instructions` do not: the cache and TLB misses of a map of a million clients.
fn limiter_speed(clients: u32, hits: u64) -> String {
    use std::io::Write as _;
    let limit = crypt_domain::RateLimit::of(60, 60).expect("the default limit");
    let limiter = std::sync::Arc::new(crypt_memory::MemoryLimiter::default());
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let (limiter, barrier) = (limiter.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ (t + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                let mut timed = Duration::ZERO;
                let mut allowed = 0u64;
                for round in 0..2 {
                    barrier.wait();
                    let started = std::time::Instant::now();
                    for i in 0..hits / 2 {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        let ip = u32::try_from(seed % u64::from(clients)).unwrap_or(0).wrapping_add(0x0a00_0000);
                        let mut key = [0u8; 16];
                        let mut w = &mut key[..];
                        let _ = write!(w, "{}", std::net::Ipv4Addr::from(ip));
                        let len = 16 - w.len();
                        let client = std::str::from_utf8(&key[..len]).unwrap_or("");
                        let now = 1_000_000 + (round * hits / 2 + i) / 1000;
                        if limiter.hit_now(client, now, limit) == crypt_domain::RateDecision::Allowed {
                            allowed += 1;
                        }
                    }
                    if round == 1 {
                        timed = started.elapsed();
                    }
                }
                (timed, allowed)
            })
        })
        .collect();
    let results: Vec<(Duration, u64)> = threads.into_iter().map(|t| t.join().expect("thread")).collect();
    let ns = results.iter().map(|(d, _)| d.as_nanos() as f64).sum::<f64>() / (hits as f64);
    format!(
        "{clients} clients, 2 threads: {ns:.0} ns per hit ({} clients held, {} hits allowed)",
        limiter.clients(),
        results.iter().map(|r| r.1).sum::<u64>()
    )
}

/// The resident memory of crypt as shipped (memory store, the default limit, metrics on) and of
/// the baseline, each a fresh process, before and after `clients` requests from as many
/// distinct addresses (half creates, half reads of what was created, so the store ends empty),
/// all within the default 60-second window: what a server holds for that many clients. Returns
/// a markdown table and a sentence, and the errors seen.
fn server_memory(rt: &tokio::runtime::Runtime, clients: u32) -> (String, u64) {
    let mut out = String::new();
    let mut errors = 0;
    let _ = writeln!(
        out,
        "| server | distinct clients | pairs | errors | seconds | RSS at start MiB | RSS after MiB | peak RSS MiB |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut after = [0.0; 2];
    let mut slow = false;
    for (i, which) in [Impl::Crypt, Impl::Baseline].into_iter().enumerate() {
        let server = Server::start(which, None, Shape::Deployed { clients });
        let start = server.rss_mib();
        let o = rt.block_on(load::distinct(server.addr, 32, 100, clients));
        after[i] = server.rss_mib();
        errors += o.errors;
        slow |= which == Impl::Crypt && o.elapsed > Duration::from_secs(55);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} | {start:.1} | {:.1} | {:.1} |",
            which.name(),
            o.pairs * 2,
            o.pairs,
            o.errors,
            o.elapsed.as_secs_f64(),
            after[i],
            server.peak_rss_mib()
        );
    }
    let per = (after[0] - after[1]) * f64::from(1u32 << 20) / f64::from(clients & !1);
    let _ = writeln!(
        out,
        "\ncrypt holds {:.1} MiB more than the baseline after the same load: **{per:.0} bytes per client address** \
         in its window (the limiter's log of each, and the allocator's keep).{}",
        after[0] - after[1],
        if slow { " The load took longer than the window: some logs may have been swept before the end." } else { "" }
    );
    (out, errors)
}

/// What Redis holds (`used_memory`) for crypt as shipped on the Redis store and for the
/// baseline, each with a fresh `redis-server`, after `clients` requests from as many distinct
/// addresses within the default window. The messages are all read; crypt keeps each one's
/// receipt until its expiry (SPEC Part 2 item 10), and those are counted, then dropped before
/// Redis's memory is read, so what crypt leaves beyond the baseline is the limiter's log of each
/// client.
fn redis_memory(rt: &tokio::runtime::Runtime, clients: u32) -> (String, u64) {
    let used = |redis: &RedisServer| -> f64 {
        let info = redis.command_text(&["INFO", "memory"]);
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN)
    };
    let mut out = String::new();
    let mut errors = 0;
    let _ = writeln!(
        out,
        "| server | distinct clients | pairs | errors | seconds | Redis keys after | Redis used_memory at start MiB | \
         after MiB | receipts dropped before measuring |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut grew = [0.0; 2];
    for (i, which) in [Impl::Crypt, Impl::Baseline].into_iter().enumerate() {
        let redis = RedisServer::start();
        let server = Server::start(which, Some(&redis.url()), Shape::Deployed { clients });
        let start = used(&redis);
        let o = rt.block_on(load::distinct(server.addr, 32, 100, clients));
        let receipts = drop_receipts(&redis);
        let after = used(&redis);
        grew[i] = after - start;
        errors += o.errors;
        let keys = redis.command(&["DBSIZE"]).unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} | {} | {:.1} | {:.1} | {receipts} |",
            which.name(),
            o.pairs * 2,
            o.pairs,
            o.errors,
            o.elapsed.as_secs_f64(),
            keys.trim().trim_start_matches(':'),
            start / f64::from(1u32 << 20),
            after / f64::from(1u32 << 20)
        );
    }
    let per = (grew[0] - grew[1]) / f64::from(clients & !1);
    let _ = writeln!(
        out,
        "\nRedis holds {:.1} MiB more for crypt than for the baseline after the same load: **{per:.0} bytes per client \
         address** in its window (each client's log: a key that expires with the window).",
        (grew[0] - grew[1]) / f64::from(1u32 << 20)
    );
    (out, errors)
}

/// Unlinks every message key (`bench:m:*`, crypt's prefix here: after a read, the receipt) in batches of a
/// `SCAN`, and answers how many there were.
fn drop_receipts(redis: &RedisServer) -> u64 {
    const BATCH: &str = "local r = redis.call('SCAN', ARGV[1], 'MATCH', 'bench:m:*', 'COUNT', 5000) \
                         for _, k in ipairs(r[2]) do redis.call('UNLINK', k) end \
                         return {r[1], #r[2]}";
    let (mut cursor, mut dropped) = ("0".to_owned(), 0);
    loop {
        // The reply: *2, then the next cursor as a bulk string, then the count as an integer.
        let reply = redis.command_text(&["EVAL", BATCH, "0", &cursor]);
        let lines: Vec<&str> = reply.lines().map(str::trim).collect();
        let next = lines.get(2).copied().unwrap_or("0").to_owned();
        dropped += lines.get(3).and_then(|n| n.trim_start_matches(':').parse::<u64>().ok()).unwrap_or(0);
        if next == "0" {
            return dropped;
        }
        cursor = next;
    }
}

fn limiter_memory(n: u32) -> String {
    let limit = crypt_domain::RateLimit::of(60, 60).expect("the default limit");
    let limiter = crypt_memory::MemoryLimiter::default();
    let before = own_rss();
    for i in 0..n {
        let client = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        limiter.hit_now(&client, 1_000_000 + u64::from(i) / 1000, limit);
    }
    let after = own_rss();
    let per = after.saturating_sub(before) as f64 / f64::from(n);
    let swept = limiter.sweep(1_000_000 + 61_000 + u64::from(n) / 1000, limit);
    let swept_rss = own_rss().saturating_sub(before);
    format!(
        "{} clients: {:.0} MiB resident, **{per:.0} bytes per client** (a hash, its instant and its place in the \
         sweep queue); a sweep a window later dropped {swept}, and {:.1} MiB stayed resident.",
        limiter.clients() + swept,
        (after - before) as f64 / (1 << 20) as f64,
        swept_rss as f64 / (1 << 20) as f64
    )
}
