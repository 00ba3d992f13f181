//! Real `redis-server` processes for tests, on free loopback ports, in their own temporary
//! directories, killed when dropped. Never a Redis someone else started.
//!
//! `scripts/test` installs `redis-server` and `redis-cli` when they are missing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod ports;
pub use ports::{listened_by, listeners, process_group};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// One `redis-server` process.
///
/// It runs under a small shell reaper that holds a pipe from this process: when the test
/// process ends for any reason (even a panic, or a static never dropped), the pipe closes and
/// the reaper kills redis-server, so no test leaves a Redis behind.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    /// The reaper shell, and redis-server's own pid (for SIGKILL in fault tests).
    child: Option<(Child, u32)>,
}

const REAPER: &str =
    r#"redis-server "$@" & pid=$!; echo $pid; read _; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null"#;

/// A port that is free now, whose cluster bus port (port + 10000) is free too.
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = l.local_addr().unwrap().port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn redis_server_path() -> &'static str {
    if Command::new("redis-server").arg("--version").output().is_err() {
        panic!("redis-server is not installed: run ./scripts/test, which installs it");
    }
    "redis-server"
}

impl RedisServer {
    /// A server with no persistence.
    pub fn start() -> Self {
        Self::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// A server with extra arguments (`redis-server [config file] --port ... <args>`); a first
    /// argument ending in `.conf` is used as the configuration file.
    pub fn start_with(args: &[&str]) -> Self {
        Self::start_on(free_port(), args)
    }

    /// Like [`RedisServer::start_with`], on a given port (for a Redis that appears where a
    /// client already expects it).
    pub fn start_on(port: u16, args: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "crypt-redis-{}-{}-{}",
            std::process::id(),
            port,
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir for redis");
        let mut server = Self { port, dir, args: args.iter().map(|s| s.to_string()).collect(), child: None };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        redis_server_path();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", REAPER, "sh"]);
        let mut args = self.args.clone();
        if args.first().is_some_and(|a| a.ends_with(".conf")) {
            cmd.arg(args.remove(0));
        }
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--daemonize", "no"])
            .args(["--protected-mode", "no", "--dir"])
            .arg(&self.dir)
            .args(["--logfile", "redis.log"])
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("start redis-server");
        let mut pid = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut pid).expect("reaper prints the pid");
        let pid = pid.trim().parse().expect("a pid");
        self.child = Some((child, pid));
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            // The PONG must come from this server: another Redis may hold the port (see
            // `listened_by`), and then this one has failed to bind it.
            // A server with `--requirepass` answers NOAUTH: it is up all the same.
            if self.command(&["PING"]).is_some_and(|r| r.starts_with("+PONG") || r.starts_with("-NOAUTH")) {
                let pid = self.child.as_ref().map(|(_, pid)| *pid);
                match listened_by(self.port, |p| Some(p) == pid) {
                    Some(false) => panic!("port {} answers, but not from the redis-server started on it", self.port),
                    Some(true) | None => return,
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        panic!("redis-server on port {} did not start:\n{log}", self.port);
    }

    /// A Sentinel (`redis-server <conf> --sentinel`) on `port` that watches the master on
    /// `master_port` under `name`, decides alone (quorum 1) and calls the master down after
    /// `down_after_ms` without an answer.
    pub fn sentinel_on(port: u16, master_port: u16, name: &str, down_after_ms: u64) -> Self {
        let conf = std::env::temp_dir().join(format!(
            "crypt-sentinel-{}-{}-{}.conf",
            std::process::id(),
            port,
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(
            &conf,
            format!(
                "sentinel monitor {name} 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds {name} {down_after_ms}\n\
                 sentinel failover-timeout {name} 10000\n"
            ),
        )
        .expect("write the sentinel's configuration (Sentinel rewrites it, so it must be writable)");
        Self::start_on(port, &[conf.to_str().expect("a UTF-8 path"), "--sentinel"])
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The redis-server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|(_, pid)| *pid)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends one inline command and returns the first reply line (`None` if unreachable).
    pub fn command(&self, parts: &[&str]) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut req = format!("*{}\r\n", parts.len());
        for p in parts {
            req.push_str(&format!("${}\r\n{}\r\n", p.len(), p));
        }
        s.write_all(req.as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        Some(line)
    }

    /// Sends one command and reads the whole (bulk) reply as text, for `INFO` and the like.
    pub fn command_text(&self, parts: &[&str]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut req = format!("*{}\r\n", parts.len());
        for p in parts {
            req.push_str(&format!("${}\r\n{}\r\n", p.len(), p));
        }
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Kills the process with SIGKILL: no shutdown, no final save.
    pub fn kill(&mut self) {
        if let Some((mut reaper, pid)) = self.child.take() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            drop(reaper.stdin.take());
            let _ = reaper.wait();
        }
    }

    /// Freezes the process (SIGSTOP): connections stay open but nothing is answered, like a
    /// Redis stuck on a slow disk or behind a dead network path.
    pub fn pause(&self) {
        if let Some((_, pid)) = &self.child {
            let _ = Command::new("kill").args(["-STOP", &pid.to_string()]).status();
        }
    }

    /// Thaws a paused process (SIGCONT).
    pub fn resume(&self) {
        if let Some((_, pid)) = &self.child {
            let _ = Command::new("kill").args(["-CONT", &pid.to_string()]).status();
        }
    }

    /// Starts it again on the same port with the same directory (so an AOF is replayed).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three masters (no replicas), made with `redis-cli --cluster create`.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

static SHARED_CLUSTER: std::sync::OnceLock<RedisCluster> = std::sync::OnceLock::new();

impl RedisCluster {
    /// One cluster for the whole test binary (a cluster takes seconds to form). Tests sharing
    /// it must use distinct key prefixes. Its nodes are reaped when the test process exits.
    pub fn shared() -> &'static RedisCluster {
        SHARED_CLUSTER.get_or_init(RedisCluster::start)
    }

    /// Starts three cluster-enabled nodes, joins them, and waits until the cluster is ok.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli is installed (./scripts/test installs redis-tools)");
        assert!(out.status.success(), "cluster create failed: {}", String::from_utf8_lossy(&out.stdout));
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if nodes.iter().all(|n| n.command_text(&["CLUSTER", "INFO"]).contains("cluster_state:ok")) {
                return Self { nodes };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the cluster never reached cluster_state:ok");
    }

    /// The nodes' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(RedisServer::pid).collect()
    }

    /// Every node's URL, comma-separated: the form `CRYPT_REDIS_URL` takes for a cluster.
    pub fn urls(&self) -> String {
        self.nodes.iter().map(RedisServer::url).collect::<Vec<_>>().join(",")
    }
}
