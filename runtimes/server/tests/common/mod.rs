//! What the tests that run `crypt-server` over a store share: the process, and a client.
#![allow(dead_code)] // each test file uses its own part

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A `crypt-server` process.
pub struct Crypt {
    child: Child,
    pub base: String,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Crypt {
    /// On Redis at `redis_url`, with `extra` settings.
    pub fn start(redis_url: &str, extra: &[(&str, &str)]) -> Self {
        let mut env = vec![("CRYPT_STORE", "redis"), ("CRYPT_REDIS_URL", redis_url)];
        env.extend_from_slice(extra);
        Self::start_with(&env)
    }

    /// With `env` over a free loopback port, no rate limit and info logs.
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crypt-server"))
            .env_clear()
            .env("CRYPT_LISTEN", "127.0.0.1:0")
            .env("CRYPT_RATE_LIMIT_MAX", "0")
            .env("CRYPT_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .current_dir(std::env::temp_dir())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn crypt-server");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        // Drain stderr for the life of the process, so logging never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => Crypt { child, base: format!("http://{addr}"), logs },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("crypt-server did not start: {:?}", logs.lock().unwrap());
            }
        }
    }
}

impl Crypt {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Crypt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(20)).build().unwrap()
}

pub async fn create(http: &reqwest::Client, base: &str, text: &str) -> (u16, Value) {
    match http.post(format!("{base}/")).body(json!({ "message": text }).to_string()).send().await {
        Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
        Err(e) => panic!("create: no HTTP answer: {e}"),
    }
}

pub async fn read(http: &reqwest::Client, base: &str, id: &str) -> (u16, Value) {
    let r = http.get(format!("{base}/{id}")).send().await.expect("read answered");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

pub async fn status(http: &reqwest::Client, url: String) -> u16 {
    http.get(url).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

impl Crypt {
    /// Kills the process with SIGKILL, as a crash would, and waits for it.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process with SIGTERM, as an orchestrator would, and waits for its exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.child.wait().ok().and_then(|s| s.code())
    }

    /// Every log line so far, joined.
    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

/// Posts a body of `size` bytes of `byte` with `content_type` to `authority` (`host:port`) with
/// Python's `http.client`, `attempts` times with Content-Length and as many chunked: one line
/// per attempt, `<mode> <status> <body>` or `<mode> failed <error>`. The client that, before the
/// server drained refused bodies, saw BrokenPipe instead of the answer about one time in three.
pub fn python_posts(authority: &str, size: usize, byte: u8, content_type: &str, attempts: usize) -> Vec<String> {
    let script = r#"
import http.client, sys
host, port = sys.argv[1].rsplit(":", 1)
attempts, size, byte, content_type = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
body = bytes([byte]) * size
for mode in ("length", "chunked"):
    for i in range(attempts):
        c = http.client.HTTPConnection(host, int(port), timeout=20)
        headers = {"Content-Type": content_type}
        try:
            if mode == "length":
                c.request("POST", "/", body=body, headers=headers)
            else:
                chunks = (body[j:j + 65536] for j in range(0, len(body), 65536))
                c.request("POST", "/", body=chunks, headers=headers, encode_chunked=True)
            r = c.getresponse()
            print(mode, r.status, r.read().decode())
        except Exception as e:
            print(mode, "failed", repr(e))
        finally:
            c.close()
"#;
    let args =
        [authority.to_owned(), attempts.to_string(), size.to_string(), byte.to_string(), content_type.to_owned()];
    let out = Command::new("python3").arg("-c").arg(script).args(&args).output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2 * attempts, "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    lines
}
