//! `wrangler dev` as a test fixture: the Worker's test bundle in the real workerd runtime.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A loopback port that is free now (and is not `other`).
fn free_port(other: Option<u16>) -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if Some(port) != other {
            return port;
        }
    }
}

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

/// Kills wrangler's process group and removes its directory when its standard input closes:
/// when the `WranglerDev` is dropped, or when the test process ends without dropping it (a
/// panic, an interrupted run, an instance shared for the whole process). `$1` is the group,
/// `$2` the directory. (dash's `kill` takes no `--`: `kill -KILL -- -PGID` kills nothing there.)
const REAPER: &str = r#"read _; kill -KILL "-$1" 2>/dev/null; sleep 1; rm -rf "$2""#;

/// A running `wrangler dev`, stopped (with its workerd) when dropped, or when the process that
/// started it ends.
#[derive(Debug)]
pub struct WranglerDev {
    child: Child,
    /// The shell that stops wrangler if this process ends first (see [`REAPER`]).
    reaper: Child,
    port: u16,
    /// The devtools inspector's port, held by the same workerd process as the dev server.
    inspector_port: u16,
    dir: PathBuf,
    /// Everything it printed, for the failure message.
    pub output: Arc<Mutex<Vec<String>>>,
}

/// Which store bindings the generated wrangler.toml carries.
#[derive(Debug, Clone, Copy)]
struct Bindings {
    kv: bool,
    durable: bool,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl WranglerDev {
    /// Starts the test bundle with `vars` as `[vars]` and waits until it answers. The free ports
    /// it picks can be taken by someone else before wrangler binds them; then it tries others.
    pub fn start(vars: &HashMap<String, String>) -> Self {
        Self::start_with(vars, "")
    }

    /// Like [`WranglerDev::start`], with extra wrangler.toml text (bindings) appended.
    pub fn start_with(vars: &HashMap<String, String>, extra_config: &str) -> Self {
        Self::start_bound(vars, extra_config, Bindings { kv: true, durable: true })
    }

    /// Like [`WranglerDev::start`], without the KV namespace binding `MESSAGES`: a
    /// misconfigured deployment.
    pub fn start_without_kv(vars: &HashMap<String, String>) -> Self {
        Self::start_bound(vars, "", Bindings { kv: false, durable: true })
    }

    /// Like [`WranglerDev::start`], without the Durable Object binding `MESSAGE_OBJECTS`: a
    /// misconfigured deployment.
    pub fn start_without_durable(vars: &HashMap<String, String>, extra_config: &str) -> Self {
        Self::start_bound(vars, extra_config, Bindings { kv: true, durable: false })
    }

    fn start_bound(vars: &HashMap<String, String>, extra_config: &str, bindings: Bindings) -> Self {
        let bundle = repo_root().join("runtimes/worker/build-test/index.js");
        assert!(
            bundle.exists(),
            "the Worker test bundle is missing: run ./scripts/test (or scripts/build-worker --test) first"
        );
        let mut config = String::new();
        if bindings.kv {
            config.push_str("[[kv_namespaces]]\nbinding = \"MESSAGES\"\nid = \"00000000000000000000000000000000\"\n\n");
        }
        if bindings.durable {
            // As in the repository's wrangler.toml: the class the bundle exports, SQLite-backed.
            config.push_str(
                "[[durable_objects.bindings]]\nname = \"MESSAGE_OBJECTS\"\nclass_name = \"MessageObject\"\n\n\
                 [[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"MessageObject\"]\n\n",
            );
        }
        config.push_str("[vars]\n");
        let mut names: Vec<_> = vars.keys().collect();
        names.sort();
        for name in names {
            config.push_str(&format!("{name} = {:?}\n", vars[name]));
        }
        config.push_str(extra_config);
        Self::start_script(&bundle, &config)
    }

    /// `wrangler dev` on any Worker script (`main`), with `config` as the wrangler.toml after its
    /// name, main and compatibility date: bindings and `[vars]`. The benchmark runs crypt's
    /// release bundle and its JavaScript baseline this way.
    pub fn start_script(main: &Path, config: &str) -> Self {
        let mut last = String::new();
        for _ in 0..4 {
            match Self::start_on(main, config, free_port(None)) {
                Ok(dev) => return dev,
                Err(output) => last = output,
            }
        }
        panic!("wrangler dev did not start:\n{last}");
    }

    /// One attempt of [`WranglerDev::start_script`] on a given port: what wrangler printed (or
    /// why the port would not do) when it does not start there.
    pub fn start_on(main: &Path, body: &str, port: u16) -> Result<Self, String> {
        let root = repo_root();
        // The devtools inspector would take 9229 on every instance: two at once (or one still
        // shutting down) would collide, so each gets a free port of its own.
        let inspector_port = free_port(Some(port));
        let dir = std::env::temp_dir().join(format!(
            "crypt-wrangler-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "name = \"crypt-test\"\nmain = \"{}\"\ncompatibility_date = \"2025-06-01\"\nsend_metrics = false\n\n{body}",
            main.display()
        );
        std::fs::write(dir.join("wrangler.toml"), config).unwrap();

        let mut child = Command::new(root.join("node_modules/.bin/wrangler"))
            .args(["dev", "--config"])
            .arg(dir.join("wrangler.toml"))
            .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--inspector-ip", "127.0.0.1", "--inspector-port", &inspector_port.to_string(), "--persist-to"])
            .arg(dir.join("state"))
            .args(["--show-interactive-dev-session=false", "--log-level", "warn"])
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_LOG_PATH", dir.join("logs"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("run node_modules/.bin/wrangler (npm ci installs it)");
        // In a process group of its own, so that an interrupt of the tests (which signals their
        // group) cannot stop it before it has stopped wrangler.
        let reaper = Command::new("sh")
            .args(["-c", REAPER, "sh", &child.id().to_string()])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("run sh");
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        let mut dev = WranglerDev { child, reaper, port, inspector_port, dir, output };
        dev.wait_ready()?;
        Ok(dev)
    }

    /// Waits for an HTTP answer from `/healthz`; the output so far if wrangler exits or never answers.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        // When the port answers, the dev server binds the inspector's port at the same moment;
        // if that stays unheld, the answer came from something else and the dev server failed.
        let mut answered_without_inspector: Option<Instant> = None;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return Err(self.output.lock().unwrap().join("\n"));
            }
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
                let mut buf = [0u8; 12];
                // Any HTTP answer means workerd serves the Worker (a misconfigured one answers
                // 500), if it comes from this wrangler's dev server: the port was free when
                // chosen, but something else can take it before wrangler binds it, and then
                // the tests would talk to that instead.
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 ") {
                    match self.answered_by_dev_server() {
                        Some(Ok(())) => return Ok(()),
                        Some(Err(why)) => return Err(why),
                        None => {
                            let since = *answered_without_inspector.get_or_insert_with(Instant::now);
                            if since.elapsed() > Duration::from_secs(5) {
                                return Err(format!(
                                    "port {} answers, but nothing holds the inspector's port {}",
                                    self.port, self.inspector_port
                                ));
                            }
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("never answered on port {}:\n{}", self.port, self.output.lock().unwrap().join("\n")))
    }

    /// Whether the port is held by this wrangler's dev server. Its process group is not enough:
    /// wrangler's node process and the Worker's workerd bind loopback servers of their own on
    /// ports the system hands out (they answer 404 to anything), and one of them can be given
    /// the port chosen here between its being found free and wrangler binding it; the dev
    /// server then cannot bind it, and every request meets a 404 (CI once saw `PUT /` answered
    /// 404 so). The dev server is the workerd process that also holds the inspector's port.
    /// `None` while that port is not held yet; `Some(Ok(()))` where `/proc` cannot tell.
    fn answered_by_dev_server(&self) -> Option<Result<(), String>> {
        use crypt_redis_harness::{listeners, process_group};
        let (Some(on_port), Some(on_inspector)) = (listeners(self.port), listeners(self.inspector_port)) else {
            return Some(Ok(()));
        };
        let group = self.child.id();
        dev_server_verdict(self.port, &on_port, &on_inspector, |pid| process_group(pid) == Some(group))
    }

    /// Where this instance keeps its local state (the KV namespace's data, on disk).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// CPU time (user + system) used so far by wrangler and everything it started (workerd, where
    /// the Worker and the local storage run), in microseconds: the benchmark's cost per request.
    pub fn cpu_us(&self) -> f64 {
        let group = self.child.id().to_string();
        let mut ticks = 0.0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // After the command name (in parentheses): state, ppid, pgrp, ..., utime (12th), stime.
            let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("").split_whitespace().collect();
            if fields.get(2) == Some(&group.as_str()) {
                ticks += fields.get(11).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
                ticks += fields.get(12).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
            }
        }
        ticks * 1e6 / 100.0 // USER_HZ is 100 on Linux
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for WranglerDev {
    fn drop(&mut self) {
        // Done here, at once, rather than by the reaper (which would wait a second to clean up).
        let _ = self.reaper.kill();
        let _ = self.reaper.wait();
        // The whole process group: wrangler and the workerd it started.
        let _ = Command::new("kill").args(["-s", "KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// [`WranglerDev::answered_by_dev_server`] on what `/proc` said: the processes listening on
/// the dev server's port and on the inspector's, and which processes are wrangler's.
fn dev_server_verdict(
    port: u16,
    on_port: &[u32],
    on_inspector: &[u32],
    wranglers: impl Fn(u32) -> bool,
) -> Option<Result<(), String>> {
    let ours: Vec<u32> = on_port.iter().copied().filter(|&pid| wranglers(pid)).collect();
    if ours.is_empty() {
        return Some(Err(format!("port {port} was taken by another process")));
    }
    if ours.iter().any(|pid| on_inspector.contains(pid)) {
        return Some(Ok(()));
    }
    if on_inspector.is_empty() {
        return None;
    }
    Some(Err(format!("port {port} is held by one of wrangler's own loopback servers, not its dev server")))
}

/// Runs one check of the `MessageStore` contract inside workerd, in a fresh `wrangler dev` of
/// the test bundle: `POST <route><check>` (`/__contract/store/` for KV, `/__contract/durable/`
/// for Durable Objects). The status, the body, and what wrangler printed (for a failure).
pub async fn contract_check(route: &str, check: &str) -> (u16, String, String) {
    let dev = tokio::task::spawn_blocking(|| WranglerDev::start(&HashMap::new())).await.expect("wrangler dev starts");
    let resp =
        crate::client().post(format!("{}{route}{check}", dev.url())).send().await.expect("the contract route answers");
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let output = dev.output.lock().unwrap().join("\n");
    (status, body, output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// The reaper stops a whole process group and removes the directory once its input closes,
    /// as it does when the test process ends, and not before.
    #[test]
    fn the_reaper_stops_the_group_and_removes_the_directory_when_its_input_closes() {
        let dir = std::env::temp_dir().join(format!("crypt-reaper-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let mut group = Command::new("sh").args(["-c", "sleep 60 & sleep 60"]).process_group(0).spawn().unwrap();
        let pgid = group.id().to_string();
        // The group's live members (a killed leader stays a zombie until it is waited for).
        let alive = || {
            std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
                .filter(|stat| {
                    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
                    fields.get(2) == Some(&pgid.as_str()) && fields.first() != Some(&"Z")
                })
                .count()
        };
        let mut reaper = Command::new("sh")
            .args(["-c", REAPER, "sh", &pgid])
            .arg(&dir)
            .stdin(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(alive() >= 2 && dir.exists(), "the reaper acted before its input closed");
        drop(reaper.stdin.take());
        assert!(reaper.wait().unwrap().success());
        assert_eq!((alive(), dir.exists()), (0, false), "the group or the directory outlived the reaper");
        let _ = group.wait();
    }

    /// The port must be held by the process that holds the inspector's port too, and it must
    /// be one of wrangler's: wrangler's own loopback servers (another process of its group, or
    /// the Worker's workerd) are not its dev server.
    #[test]
    fn only_the_process_holding_the_inspector_is_the_dev_server() {
        let wranglers = |pid: u32| (100..200).contains(&pid);
        // The dev server (workerd 101) holds both.
        assert_eq!(dev_server_verdict(8000, &[101], &[101], wranglers), Some(Ok(())));
        // wrangler's node (102) got the port; the dev server holds only the inspector.
        let err = dev_server_verdict(8000, &[102], &[101], wranglers).unwrap().unwrap_err();
        assert!(err.contains("loopback servers"), "{err}");
        // Another process (7) holds it.
        let err = dev_server_verdict(8000, &[7], &[101], wranglers).unwrap().unwrap_err();
        assert!(err.contains("another process"), "{err}");
        // The inspector is not up yet: ask again.
        assert_eq!(dev_server_verdict(8000, &[101], &[], wranglers), None);
    }

    /// Something else answering HTTP on the chosen port is not taken for this wrangler: the
    /// attempt fails (and `start_script` tries another port) instead of the tests talking to it.
    #[test]
    fn a_port_answered_by_another_process_is_not_taken_for_ready() {
        let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = squatter.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut conn in squatter.incoming().flatten() {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n");
            }
        });
        let bundle = repo_root().join("runtimes/worker/build-test/index.js");
        let err = WranglerDev::start_on(&bundle, "", port).expect_err("another process holds the port");
        assert!(err.contains("taken by another process"), "{err}");
    }
}
