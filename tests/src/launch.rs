//! Launchers: how each runtime × store pair is started for a check.

use crate::wrangler::WranglerDev;
use crate::{client, Caps, Profile, Target};
use crypt_redis_harness::{RedisCluster, RedisServer};
use futures::future::BoxFuture;
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The self-hosted server with the in-memory store, in this process, on a free port.
pub fn server_memory(profile: Profile) -> BoxFuture<'static, Target> {
    Box::pin(async move {
        let running = start_server(profile.env()).await;
        Target { base: running.url(), caps: Caps::SELF_HOSTED, http: client(), keep: Box::new(running) }
    })
}

/// The self-hosted server on its own real `redis-server` (started on a free port).
pub fn server_redis(profile: Profile) -> BoxFuture<'static, Target> {
    Box::pin(async move {
        let redis = tokio::task::spawn_blocking(RedisServer::start).await.expect("redis starts");
        let url = redis.url();
        with_redis(profile, url, Box::new(redis)).await
    })
}

/// The self-hosted server on a real 3-master Redis Cluster, shared by the tests of one binary
/// (each server gets its own key prefix).
pub fn server_redis_cluster(profile: Profile) -> BoxFuture<'static, Target> {
    Box::pin(async move {
        let cluster = tokio::task::spawn_blocking(RedisCluster::shared).await.expect("cluster starts");
        with_redis(profile, cluster.urls(), Box::new(())).await
    })
}

/// The self-hosted server on a SQLite database in a fresh folder of its own (removed after).
pub fn server_sqlite(profile: Profile) -> BoxFuture<'static, Target> {
    Box::pin(async move {
        let dir = ScratchDir::new("sqlite");
        let mut env = profile.env();
        env.insert("CRYPT_STORE".into(), "sqlite".into());
        env.insert("CRYPT_SQLITE_PATH".into(), dir.path().join("crypt.db").display().to_string());
        let running = start_server(env).await;
        Target {
            base: running.url(),
            // Its 507 (CRYPT_SQLITE_MAX_BYTES, a full disk) is checked in crypt-server's SQLite
            // tests: the page-based room a read frees is not the memory store's byte count.
            caps: Caps { capacity: false, ..Caps::SELF_HOSTED },
            http: client(),
            keep: Box::new((running, dir)),
        }
    })
}

/// A folder under the system's temporary folder, removed on drop.
#[derive(Debug)]
pub struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    /// A new, empty folder whose name starts with `crypt-` and `what`.
    pub fn new(what: &str) -> Self {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("crypt-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        Self(dir)
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn with_redis(profile: Profile, url: String, redis: Box<dyn Any + Send + Sync>) -> Target {
    let mut env = profile.env();
    env.insert("CRYPT_STORE".into(), "redis".into());
    env.insert("CRYPT_REDIS_URL".into(), url);
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    env.insert("CRYPT_REDIS_PREFIX".into(), format!("conformance{}:", SEQ.fetch_add(1, Ordering::SeqCst)));
    let running = start_server(env).await;
    Target {
        base: running.url(),
        // A Redis store has no byte capacity a test can fill through the API; its 507
        // (maxmemory with noeviction) is checked in crypt-server's Redis tests.
        caps: Caps { capacity: false, ..Caps::SELF_HOSTED },
        http: client(),
        // Fields drop in order: the server first, then its Redis.
        keep: Box::new((running, redis)),
    }
}

async fn start_server(mut env: HashMap<String, String>) -> crypt_server::Running {
    env.insert("CRYPT_LISTEN".into(), "127.0.0.1:0".into());
    let settings = crypt_server::Config::from_sources(None, env).expect("the profile's settings are valid");
    crypt_server::spawn(settings).await.expect("the server starts")
}

/// A deployment someone else runs, at `CRYPT_BASE_URL` (e.g. `https://crypt.example.workers.dev`).
///
/// Its settings are whatever it was deployed with, so checks that need other settings report
/// themselves not applicable. Set `CRYPT_BASE_URL_KV=1` when it runs on Workers KV (no atomic
/// burn). Its rate limit must allow the suite's requests from this machine (a few hundred a minute).
pub fn external(_profile: Profile) -> BoxFuture<'static, Target> {
    Box::pin(async move {
        let base = std::env::var("CRYPT_BASE_URL").expect("CRYPT_BASE_URL names the deployment to check");
        let base = base.trim_end_matches('/').to_owned();
        let kv = std::env::var("CRYPT_BASE_URL_KV").is_ok_and(|v| v == "1");
        Target {
            caps: Caps {
                exact_once: !kv,
                capacity: false,
                configurable: false,
                raw_tcp: base.starts_with("http://"),
                header_timeout: false,
                streamed_bodies: false,
            },
            base,
            http: client(),
            keep: Box::new(()),
        }
    })
}

/// The Worker under `wrangler dev` with `CRYPT_EDGE_STORE = "durable-object"`: one local
/// SQLite-backed Durable Object per message, so burn-on-read is exactly-once and checked.
pub fn worker_durable(profile: Profile) -> BoxFuture<'static, Target> {
    let mut env = profile.env();
    env.insert("CRYPT_EDGE_STORE".into(), "durable-object".into());
    worker(env, profile.is_base(), true)
}

/// The Worker under `wrangler dev` (the real workerd runtime) with a local KV namespace whose
/// state lives in a fresh temporary directory, on a free port. Needs the test bundle built by
/// `scripts/build-worker --test` (`./scripts/test` does it first).
pub fn worker_kv(profile: Profile) -> BoxFuture<'static, Target> {
    // KV cannot burn atomically.
    worker(profile.env(), profile.is_base(), false)
}

/// The Worker with `[vars]` `env`; `exact_once` when its store burns atomically. On either
/// store workerd owns header timeouts and there is no byte capacity to fill. Checks of the base
/// profile share one `wrangler dev` per process and `env` (see [`shared_worker`]); the others
/// get one of their own.
fn worker(env: HashMap<String, String>, base: bool, exact_once: bool) -> BoxFuture<'static, Target> {
    Box::pin(async move {
        let start = move || if base { shared_worker(env) } else { Arc::new(WranglerDev::start(&env)) };
        let wrangler = tokio::task::spawn_blocking(start).await.expect("wrangler dev starts");
        Target {
            base: wrangler.url(),
            caps: Caps {
                exact_once,
                capacity: false,
                configurable: true,
                raw_tcp: true,
                header_timeout: false,
                streamed_bodies: false,
            },
            http: client(),
            keep: Box::new(wrangler),
        }
    })
}

/// The `wrangler dev` for the base profile's `env`, started by the first check that asks and
/// kept for the rest of the process. The checks that ask only for the base settings are written
/// to share a deployment (the [`external`] launcher runs them all against one), and starting
/// `wrangler dev` takes seconds: about thirty of them per suite. The instance is never dropped;
/// its reaper stops it when the test process ends.
fn shared_worker(env: HashMap<String, String>) -> Arc<WranglerDev> {
    type Shared = Vec<(Vec<(String, String)>, Arc<WranglerDev>)>;
    static SHARED: Mutex<Shared> = Mutex::new(Vec::new());
    let mut key: Vec<(String, String)> = env.clone().into_iter().collect();
    key.sort();
    // Held while starting, so that checks arriving together wait for one instance. A start that
    // panicked poisons it; the next check then tries again.
    let mut shared = SHARED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, dev)) = shared.iter().find(|(k, _)| *k == key) {
        return dev.clone();
    }
    let dev = Arc::new(WranglerDev::start(&env));
    shared.push((key, dev.clone()));
    dev
}
