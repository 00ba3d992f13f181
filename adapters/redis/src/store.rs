use crate::config::{SentinelUrl, Topology};
use crate::{RedisConfig, RedisError};
use async_trait::async_trait;
use crypt_domain::{
    Content, Counted, CountingStore, DeleteOutcome, Deletion, Inserted, Message, MessageId, MessageStore, RateDecision,
    RateLimit, RateLimiter, ReceiptDigest, Record, StoreError, StoredMessage, Ttl, UnixMillis, Viewed,
};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, FromRedisValue, Pipeline, RedisFuture, RedisWrite, ServerErrorKind, ToRedisArgs, Value};
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;

/// One connection for the whole process: a single node, a cluster, or the master Sentinel names.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(MultiplexedConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
        }
    }
}

enum Backend {
    /// Lazily connected and reconnecting by itself; cloning it is cheap and shares the socket.
    Single(ConnectionManager),
    /// Connected on first use (the cluster client cannot start without a reachable node);
    /// a failed attempt is not cached, so the next request tries again.
    Cluster { client: Box<ClusterClient>, conn: OnceCell<ClusterConnection> },
    /// The master the Sentinels name, asked for on first use and again after any failure
    /// (the master died, or was demoted and answers READONLY), so a failover is followed by
    /// the next request after Sentinel has promoted a replica.
    Sentinel(Box<SentinelBackend>),
}

struct SentinelBackend {
    /// Held while the master is looked up, so a burst of failures asks the Sentinels once.
    client: tokio::sync::Mutex<redis::sentinel::SentinelClient>,
    conn: std::sync::RwLock<Option<MultiplexedConnection>>,
    config: redis::AsyncConnectionConfig,
}

impl SentinelBackend {
    fn new(url: &SentinelUrl, timeout: Duration) -> Result<Self, RedisError> {
        let mut info = redis::RedisConnectionInfo::default().set_db(url.db);
        if let Some(user) = &url.username {
            info = info.set_username(user);
        }
        if let Some(password) = &url.password {
            info = info.set_password(password);
        }
        let node = redis::sentinel::SentinelNodeConnectionInfo::default().set_redis_connection_info(info);
        let client = redis::sentinel::SentinelClient::build(
            url.sentinels.clone(),
            url.master.clone(),
            Some(node),
            redis::sentinel::SentinelServerType::Master,
        )
        .map_err(|e| RedisError::BadUrl(e.to_string()))?;
        let config =
            redis::AsyncConnectionConfig::new().set_connection_timeout(Some(timeout)).set_response_timeout(None);
        Ok(Self { client: tokio::sync::Mutex::new(client), conn: std::sync::RwLock::new(None), config })
    }

    fn cached(&self) -> Option<MultiplexedConnection> {
        self.conn.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    async fn connect(&self) -> Result<MultiplexedConnection, StoreError> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let mut client = self.client.lock().await;
        if let Some(c) = self.cached() {
            return Ok(c); // another request found the master while this one waited
        }
        let conn = client
            .get_async_connection_with_config(&self.config)
            .await
            .map_err(|e| StoreError::Unavailable(format!("sentinel: {e}")))?;
        *self.conn.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(conn.clone());
        tracing::info!("connected to the master Sentinel names");
        Ok(conn)
    }

    /// After any failure, the next request asks the Sentinels again: the master may have died
    /// or been demoted.
    fn forget(&self) {
        self.conn.write().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }
}

const VERSION_UNKNOWN: u8 = 0;
const VERSION_OK: u8 = 1;
const VERSION_TOO_OLD: u8 = 2;

/// Messages and rate-limit logs in Redis.
///
/// Guarantees: exactly N readers for N views, a delete and the last view's read with one
/// winner (each change is one script on the message's one key), and one global rate limit
/// across every process on the same Redis or Cluster. Not guaranteed: Redis replication is asynchronous, so a failover
/// to a replica can lose the last acknowledged writes (a message just created may vanish; a
/// message just burned may come back, once).
pub struct RedisStore {
    backend: Backend,
    prefix: String,
    timeout: Duration,
    /// Whether the server was checked to be 6.2 or newer; checked at start and again by
    /// readiness probes while unknown (Redis may appear after crypt).
    version: AtomicU8,
    limiter: LuaScript,
    insert: LuaScript,
    spend: LuaScript,
    delete: LuaScript,
    create_counted: LuaScript,
    spend_counted: LuaScript,
}

/// A Lua script, called by its SHA-1 with its keys and arguments written straight into one
/// `EVALSHA` command. (The `redis` crate's `ScriptInvocation` first copies every key and
/// argument into vectors of its own, then again into the command: with its reply, about 4,000
/// instructions a call under callgrind, a twentieth of a create+read pair.) A Redis that has
/// not seen the script (restarted, failed over, `SCRIPT FLUSH`) answers `NOSCRIPT`: the same
/// call is sent once more with the body (`EVAL`), which also caches it there again.
struct LuaScript {
    body: &'static str,
    sha1: String,
}

impl LuaScript {
    fn new(body: &'static str) -> Self {
        Self { body, sha1: redis::Script::new(body).get_hash().to_owned() }
    }

    /// `EVALSHA` (or, with `by_body`, `EVAL`) with the keys and arguments `fill` writes.
    fn command(&self, by_body: bool, fill: &impl Fn(&mut Cmd)) -> Cmd {
        let mut cmd = Cmd::with_capacity(10, 256);
        if by_body {
            cmd.arg("EVAL").arg(self.body);
        } else {
            cmd.arg("EVALSHA").arg(&self.sha1);
        }
        fill(&mut cmd);
        cmd
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.backend {
            Backend::Single(_) => "single",
            Backend::Cluster { .. } => "cluster",
            Backend::Sentinel(_) => "sentinel",
        };
        f.debug_struct("RedisStore").field("kind", &kind).field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// The sliding-window log of `crypt_domain::WindowLog`, server-side, atomically.
///
/// KEYS[1] the client's log; ARGV: now (ms), window (ms), budget. Returns 0 when allowed (and
/// counted), else the milliseconds until the oldest counted hit leaves the window.
///
/// The window as a Lua function, `window()`: 0 when the hit is allowed (and counted), else the
/// milliseconds to wait. Shared by the limiter's script and the two counted operations.
///
/// A client's log is one string of the instants still in the window, in decimal, separated by
/// spaces, that expires with its newest instant: a client's first hit in a window is one
/// `SET ... NX PX` (`first_hit!`, which each script runs first, before any Lua of its own:
/// that ordering alone takes about 8 % off a counted create's time in Redis), a later one a
/// `GET` and a `SET ... PX` (`window()`). Measured with `redis-benchmark`
/// on a million random clients: 4.1 µs of Redis time a hit, against 6.2 µs for the first
/// design (a sorted set: four commands a hit) and 22 % less memory. The string is short (most
/// clients have one or two instants) and bounded by the budget.
macro_rules! window_fn {
    () => {
        r"
local function window()
  local now = tonumber(ARGV[1])
  local window = tonumber(ARGV[2])
  local budget = tonumber(ARGV[3])
  local log = redis.call('GET', KEYS[1])
  local kept = {}
  local oldest = nil
  if log then
    for t in string.gmatch(log, '%d+') do
      local at = tonumber(t)
      if at + window > now then
        kept[#kept + 1] = t
        if oldest == nil or at < oldest then oldest = at end
      end
    end
  end
  if #kept >= budget then
    local wait = oldest + window - now
    if wait < 1 then wait = 1 end
    return wait
  end
  kept[#kept + 1] = ARGV[1]
  redis.call('SET', KEYS[1], table.concat(kept, ' '), 'PX', window)
  return 0
end
"
    };
}

/// A client with no log (the usual case): its first hit, counted in one command. The line
/// each script starts with, `then` what it does when the hit is allowed.
macro_rules! first_hit {
    () => {
        "if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then "
    };
}

const SLIDING_WINDOW: &str = concat!(first_hit!(), "return 0 end\n", window_fn!(), "return window()\n");

// ## A message in Redis
//
// One key per message, `{prefix}m:{id}`, so every change to it is one script on one key (on
// a Cluster too: nothing to keep in one slot). It is a hash:
//
// | field | what |
// |---|---|
// | `t` | the message's UTF-8, while a view is left; removed by the last view or a delete |
// | `e` | the expiry instant (ms since the epoch, decimal) |
// | `v` | the views asked for |
// | `s` | the views spent |
// | `r` | when each was spent: instants (ms) separated by spaces, oldest first |
// | `d` | `1` once the sender deleted it |
// | `h` | the receipt token's SHA-256 (32 bytes) |
//
// The key's TTL is set once, at create, to the message's time to live, and never changed: the
// receipt lives exactly until the original expiry, then Redis drops the key and nothing is
// left. A key that is a plain string is a message stored before views and receipts (format 1,
// `StoredMessage::encode`): it is read once with `GETDEL`, as before, and has no receipt.
//
// Why scripts: a create must write only if the key is absent *and* set several fields and the
// TTL (`HSETNX` guards one field; a `MULTI` cannot make its writes depend on whether the key
// existed), a read must spend a view only if one is left and remove the text only on the
// last, and a delete must check the receipt first: each later command depends on an earlier
// one's answer, which a `MULTI` cannot express and `WATCH` would turn into retries under the
// very race (N readers at once) that must have exactly N winners. A script runs alone, so
// each is exact, and it is one round trip. The receipt (`record`) is a plain `HMGET`: it only
// reads.

/// Stores a message if the key is free: 1 stored, 0 taken.
macro_rules! insert_fn {
    () => {
        r"
local function insert(key, text, expires, views, digest, ttl)
  if redis.call('EXISTS', key) == 1 then return 0 end
  if digest == '' then
    redis.call('HSET', key, 't', text, 'e', expires, 'v', views)
  else
    redis.call('HSET', key, 't', text, 'e', expires, 'v', views, 'h', digest)
  end
  redis.call('EXPIRE', key, ttl)
  return 1
end
"
    };
}

/// Spends one view at `now`: nil when there is nothing to read (no key, every view spent,
/// deleted, or expired); else one string, `V<views left> <expiry> <text>`; or, for a format-1
/// message, its stored bytes (which start with byte 1), removed.
macro_rules! spend_fn {
    () => {
        r"
local function spend(key, now)
  local f = redis.pcall('HMGET', key, 't', 'e', 'v', 's', 'r')
  if f.err then return redis.call('GETDEL', key) end
  local text = f[1]
  if not text or tonumber(now) >= tonumber(f[2]) then return false end
  local spent = (tonumber(f[4]) or 0) + 1
  local left = tonumber(f[3]) - spent
  if left <= 0 then
    left = 0
    redis.call('HDEL', key, 't')
  end
  redis.call('HSET', key, 's', spent, 'r', f[5] and (f[5] .. ' ' .. now) or now)
  return 'V' .. left .. ' ' .. f[2] .. ' ' .. text
end
"
    };
}

/// The sender's delete: nil unless the key holds a live message whose receipt digest is
/// `digest` (compared byte by byte in constant time); else the text is removed if still there,
/// and the answer is the receipt afterwards and whether this call removed it: `{e, v, s, d, r,
/// x}` (`x` is `1` when it did).
macro_rules! delete_fn {
    () => {
        r"
local function delete(key, digest, now)
  local f = redis.pcall('HMGET', key, 'h', 'e', 'v', 's', 'd', 'r', 't')
  if f.err or not f[1] or #f[1] ~= #digest then return false end
  local diff = 0
  for i = 1, #digest do
    diff = bit.bor(diff, bit.bxor(string.byte(f[1], i), string.byte(digest, i)))
  end
  if diff ~= 0 or tonumber(now) >= tonumber(f[2]) then return false end
  local deleted, now_deleted = f[5] or '0', '0'
  if f[7] then
    redis.call('HDEL', key, 't')
    redis.call('HSET', key, 'd', '1')
    deleted, now_deleted = '1', '1'
  end
  return {f[2], f[3], f[4] or '0', deleted, f[6] or '', now_deleted}
end
"
    };
}

/// A create: KEYS[1] the message; ARGV the text, expiry (ms), views, digest (or empty) and
/// TTL (s). 1 stored, 0 taken.
const INSERT: &str = concat!(insert_fn!(), "return insert(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])\n");

/// A read: KEYS[1] the message; ARGV now (ms). As `spend`.
const SPEND: &str = concat!(spend_fn!(), "return spend(KEYS[1], ARGV[1])\n");

/// A delete: KEYS[1] the message; ARGV the digest and now (ms). As `delete`.
const DELETE: &str = concat!(delete_fn!(), "return delete(KEYS[1], ARGV[1], ARGV[2])\n");

/// A counted create: KEYS[1] the client's log, KEYS[2] the message; ARGV 1-3 as the window's,
/// then the create's five. Minus the wait (ms) when limited (nothing stored), else 1 stored or
/// 0 taken. One integer, not a table: an array reply costs the client's parser more than the
/// rest of the call.
const CREATE_COUNTED: &str = concat!(
    insert_fn!(),
    first_hit!(),
    "return insert(KEYS[2], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]) end\n",
    window_fn!(),
    r"
local wait = window()
if wait > 0 then return -wait end
return insert(KEYS[2], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
"
);

/// A counted read: as [`CREATE_COUNTED`], then `spend`'s answer (a string or nil) at the
/// window's `now`. An integer answer is the wait (ms) when limited (nothing read).
const SPEND_COUNTED: &str = concat!(
    spend_fn!(),
    first_hit!(),
    "return spend(KEYS[2], ARGV[1]) end\n",
    window_fn!(),
    r"
local wait = window()
if wait > 0 then return wait end
return spend(KEYS[2], ARGV[1])
"
);

fn unavailable(e: redis::RedisError) -> StoreError {
    if e.code() == Some("OOM") {
        // maxmemory with noeviction: Redis refuses writes rather than dropping unread messages.
        StoreError::Full
    } else {
        StoreError::Unavailable(e.to_string())
    }
}

impl RedisStore {
    /// Sets up the connection without waiting for Redis: crypt starts even while Redis is
    /// down, reports not ready, and recovers by itself when Redis answers. If Redis does
    /// answer now, its version is checked.
    ///
    /// # Errors
    /// [`RedisError::BadUrl`] for a URL that is not Redis's; [`RedisError::TooOld`] when the
    /// server answers and is older than 6.2.
    pub async fn connect(config: &RedisConfig) -> Result<Self, RedisError> {
        let certs = config.certificates()?;
        if config.url.trim_start().starts_with("rediss") || certs.is_some() {
            install_tls_provider();
        }
        let backend = match config.topology()? {
            Topology::Cluster(urls) => {
                let mut builder = ClusterClient::builder(urls)
                    .connection_timeout(config.timeout)
                    .response_timeout(config.timeout)
                    .retries(2);
                if let Some(certs) = certs {
                    builder = builder.certs(certs);
                }
                let client = builder.build().map_err(|e| RedisError::BadUrl(e.to_string()))?;
                Backend::Cluster { client: Box::new(client), conn: OnceCell::new() }
            }
            Topology::Sentinel(url) => {
                if certs.is_some() {
                    return Err(RedisError::Tls {
                        setting: "CRYPT_REDIS_CA_FILE",
                        why: "TLS through Sentinel is not supported; use rediss:// to a single node or a Cluster"
                            .into(),
                    });
                }
                Backend::Sentinel(Box::new(SentinelBackend::new(&url, config.timeout)?))
            }
            Topology::Single(url) => {
                let client = match certs {
                    Some(certs) => redis::Client::build_with_tls(url.as_str(), certs),
                    None => redis::Client::open(url.as_str()),
                }
                .map_err(|e| RedisError::BadUrl(e.to_string()))?;
                // Reconnect quickly and give up quickly: the per-command timeout in `bounded`,
                // not the retry loop, bounds how long a request can wait. That one timer covers
                // the whole command, so the connection's own response timer (a second timer
                // armed per command) is off.
                let manager_config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config.timeout))
                    .set_response_timeout(None)
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                let manager = ConnectionManager::new_lazy_with_config(client, manager_config)
                    .map_err(|e| RedisError::BadUrl(e.to_string()))?;
                Backend::Single(manager)
            }
        };
        let store = Self {
            backend,
            prefix: config.prefix.clone(),
            timeout: config.timeout,
            version: AtomicU8::new(VERSION_UNKNOWN),
            limiter: LuaScript::new(SLIDING_WINDOW),
            insert: LuaScript::new(INSERT),
            spend: LuaScript::new(SPEND),
            delete: LuaScript::new(DELETE),
            create_counted: LuaScript::new(CREATE_COUNTED),
            spend_counted: LuaScript::new(SPEND_COUNTED),
        };
        match store.check_version().await {
            Ok(()) => tracing::info!(url = %config.redacted_url(), prefix = %store.prefix, "connected to Redis"),
            Err(StoreError::Unavailable(cause)) if store.version.load(Ordering::Acquire) == VERSION_TOO_OLD => {
                return Err(RedisError::TooOld { found: cause });
            }
            Err(e) => tracing::warn!(
                url = %config.redacted_url(),
                error = %e,
                "Redis is not reachable yet; crypt reports not ready until it is"
            ),
        }
        Ok(store)
    }

    async fn conn(&self) -> Result<Conn, StoreError> {
        match &self.backend {
            Backend::Single(m) => Ok(Conn::Single(m.clone())),
            Backend::Cluster { client, conn } => {
                let c = conn
                    .get_or_try_init(|| client.get_async_connection())
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("cluster: {e}")))?;
                Ok(Conn::Cluster(c.clone()))
            }
            Backend::Sentinel(sentinel) => sentinel.connect().await.map(Conn::Sentinel),
        }
    }

    /// Runs a command within the timeout.
    async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let work = async {
            let mut conn = self.conn().await?;
            cmd.query_async(&mut conn).await.map_err(unavailable)
        };
        self.bounded(work).await
    }

    /// Runs `script` within the timeout, by its hash, and by its body if Redis lacks it.
    async fn eval<T: FromRedisValue>(&self, script: &LuaScript, fill: impl Fn(&mut Cmd)) -> Result<T, StoreError> {
        let work = async {
            let mut conn = self.conn().await?;
            match script.command(false, &fill).query_async(&mut conn).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    script.command(true, &fill).query_async(&mut conn).await.map_err(unavailable)
                }
                answer => answer.map_err(unavailable),
            }
        };
        self.bounded(work).await
    }

    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!("no answer within {:?}", self.timeout))),
        };
        if let (Err(_), Backend::Sentinel(sentinel)) = (&result, &self.backend) {
            sentinel.forget();
        }
        result
    }

    /// Reads `INFO server` and refuses servers older than 6.2 (no `GETDEL`).
    async fn check_version(&self) -> Result<(), StoreError> {
        if self.version.load(Ordering::Acquire) == VERSION_OK {
            return Ok(());
        }
        // A cluster answers with one INFO per node: the oldest node decides.
        let info: Value = self.run(redis::cmd("INFO").arg("server")).await?;
        let mut versions = Vec::new();
        collect_versions(&info, &mut versions);
        let (major, minor, found) = versions.into_iter().min().unwrap_or((0, 0, "unknown".to_owned()));
        if supports_getdel(major, minor) {
            self.version.store(VERSION_OK, Ordering::Release);
            Ok(())
        } else {
            self.version.store(VERSION_TOO_OLD, Ordering::Release);
            tracing::error!(version = %found, "Redis is older than 6.2; crypt needs GETDEL");
            Err(StoreError::Unavailable(found))
        }
    }

    fn message_key<'a>(&'a self, id: &'a MessageId) -> Key<'a> {
        Key { prefix: &self.prefix, kind: "m:", name: id.as_str() }
    }

    fn rate_key<'a>(&'a self, client: &'a str) -> Key<'a> {
        Key { prefix: &self.prefix, kind: "l:", name: client }
    }
}

/// A key (`{prefix}m:{id}`, `{prefix}r:{client}`), written straight into the command.
struct Key<'a> {
    prefix: &'a str,
    kind: &'static str,
    name: &'a str,
}

impl Key<'_> {
    fn len(&self) -> usize {
        self.prefix.len() + self.kind.len() + self.name.len()
    }
}

impl ToRedisArgs for Key<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        // Writing into the command's own buffer cannot fail.
        let _ = arg.write_all(self.prefix.as_bytes());
        let _ = arg.write_all(self.kind.as_bytes());
        let _ = arg.write_all(self.name.as_bytes());
    }
}

/// The byte a file's stored bytes start with, in field `t`: UTF-8 never starts with 0xFF, so
/// a text (stored as itself, as before files existed) can never be read as a file.
const FILE_MARK: u8 = 0xff;

/// A create's five arguments (content, expiry, views, digest or empty, TTL), written straight
/// into the command: the content is not copied first. A file's is [`FILE_MARK`] and its bytes.
struct InsertArgs<'a>(&'a StoredMessage, Ttl);

impl ToRedisArgs for InsertArgs<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let m = self.0;
        {
            let mut arg = out.writer_for_next_arg();
            // Writing into the command's own buffer cannot fail.
            if m.message.is_file() {
                let _ = arg.write_all(&[FILE_MARK]);
            }
            let _ = arg.write_all(m.message.as_bytes());
        }
        m.expires_at.write_redis_args(out);
        m.views.write_redis_args(out);
        out.write_arg(m.receipt.as_ref().map_or(&[][..], |d| &d.as_bytes()[..]));
        self.1.secs().write_redis_args(out);
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("stored value is corrupt: {what}"))
}

/// Reads `spend`'s answer: `V<left> <expiry> <text>`, or a format-1 message's bytes.
fn viewed(bytes: Vec<u8>) -> Result<Viewed, StoreError> {
    if bytes.first() != Some(&b'V') {
        let old = StoredMessage::decode(bytes).map_err(|e| corrupt(&e.to_string()))?;
        return Ok(Viewed { message: old.message, views_left: 0, expires_at: old.expires_at });
    }
    let mut parts = bytes[1..].splitn(3, |&b| b == b' ');
    let mut number = || -> Result<u64, StoreError> {
        let digits = parts.next().ok_or_else(|| corrupt("a short answer"))?;
        std::str::from_utf8(digits).ok().and_then(|d| d.parse().ok()).ok_or_else(|| corrupt("not a number"))
    };
    let (left, expires_at) = (number()?, number()?);
    let text = parts.next().ok_or_else(|| corrupt("no text"))?;
    let start = bytes.len() - text.len();
    let views_left = u32::try_from(left).map_err(|_| corrupt("views out of range"))?;
    let content = if text.first() == Some(&FILE_MARK) {
        // The reply's buffer becomes the file's, without a copy.
        Content::File(crypt_domain::Bytes::from(bytes).slice(start + 1..))
    } else {
        let mut bytes = bytes;
        bytes.drain(..start);
        Content::Text(String::from_utf8(bytes).map_err(|_| corrupt("not UTF-8"))?)
    };
    Ok(Viewed { message: Message::from_store(content), views_left, expires_at })
}

/// A number field of a hash, as Redis gives it (nil is `default`).
fn field(v: &Value, default: u64) -> Result<u64, StoreError> {
    match v {
        Value::Nil => Ok(default),
        Value::BulkString(b) => {
            std::str::from_utf8(b).ok().and_then(|d| d.parse().ok()).ok_or_else(|| corrupt("a field"))
        }
        Value::Int(n) => u64::try_from(*n).map_err(|_| corrupt("a negative field")),
        _ => Err(corrupt("a field of another kind")),
    }
}

fn instants(v: &Value) -> Result<Vec<UnixMillis>, StoreError> {
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::BulkString(b) => std::str::from_utf8(b)
            .map_err(|_| corrupt("read_at"))?
            .split_ascii_whitespace()
            .map(|t| t.parse().map_err(|_| corrupt("read_at")))
            .collect(),
        _ => Err(corrupt("read_at of another kind")),
    }
}

/// A record without its text, from the fields `e, v, s, d, r` (and `h` when given).
fn record_of(e: &Value, v: &Value, s: &Value, d: &Value, r: &Value, h: Option<&Value>) -> Result<Record, StoreError> {
    let read_at = instants(r)?;
    let spent = field(s, 0)?;
    if spent != read_at.len() as u64 {
        return Err(corrupt("views spent and their instants disagree"));
    }
    let receipt = match h {
        Some(Value::BulkString(b)) => {
            Some(ReceiptDigest::from_bytes(b.as_slice().try_into().map_err(|_| corrupt("a digest"))?))
        }
        _ => None,
    };
    Ok(Record {
        message: None,
        expires_at: field(e, 0)?,
        views: u32::try_from(field(v, 1)?).map_err(|_| corrupt("views"))?,
        read_at,
        deleted: field(d, 0)? == 1,
        receipt,
    })
}

/// rustls needs one cryptographic provider for the process; crypt uses *ring* (the one the
/// rest of the tree already builds). Installing twice is harmless.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `GETDEL` arrived in Redis 6.2.
fn supports_getdel(major: u32, minor: u32) -> bool {
    (major, minor) >= (6, 2)
}

/// Finds every `redis_version:x.y.z` line in an INFO reply (a string, or a map per node).
fn collect_versions(v: &Value, out: &mut Vec<(u32, u32, String)>) {
    match v {
        Value::BulkString(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            for found in text.lines().filter_map(|l| l.strip_prefix("redis_version:")) {
                let mut parts = found.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
                out.push((parts.next().unwrap_or(0), parts.next().unwrap_or(0), found.trim().to_owned()));
            }
        }
        Value::VerbatimString { text, .. } | Value::SimpleString(text) => {
            collect_versions(&Value::BulkString(text.clone().into_bytes()), out)
        }
        Value::Map(pairs) => pairs.iter().for_each(|(_, v)| collect_versions(v, out)),
        Value::Array(items) => items.iter().for_each(|v| collect_versions(v, out)),
        _ => {}
    }
}

#[async_trait]
impl MessageStore for RedisStore {
    async fn insert_new(&self, id: &MessageId, message: &StoredMessage, ttl: Ttl) -> Result<Inserted, StoreError> {
        let key = self.message_key(id);
        let stored: i64 = self
            .eval(&self.insert, |cmd| {
                cmd.arg(1).arg(&key).arg(InsertArgs(message, ttl));
            })
            .await?;
        Ok(if stored == 1 { Inserted::Stored } else { Inserted::Taken })
    }

    async fn spend_view(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Viewed>, StoreError> {
        let key = self.message_key(id);
        let raw: Option<Vec<u8>> = self
            .eval(&self.spend, |cmd| {
                cmd.arg(1).arg(&key).arg(now);
            })
            .await?;
        raw.map(viewed).transpose()
    }

    async fn record(&self, id: &MessageId, now: UnixMillis) -> Result<Option<Record>, StoreError> {
        let key = self.message_key(id);
        let mut cmd = Cmd::with_capacity(8, 32 + key.len());
        cmd.arg("HMGET").arg(&key).arg("e").arg("v").arg("s").arg("d").arg("r").arg("h");
        let work = async {
            let mut conn = self.conn().await?;
            match cmd.query_async::<Vec<Value>>(&mut conn).await {
                Ok(fields) => Ok(Some(fields)),
                // A format-1 message (a plain string) has no receipt.
                Err(e) if e.code() == Some("WRONGTYPE") => Ok(None),
                Err(e) => Err(unavailable(e)),
            }
        };
        let Some(fields) = self.bounded(work).await? else { return Ok(None) };
        let [e, v, s, d, r, h] = fields.as_slice() else {
            return Err(corrupt("HMGET answered another number of fields"));
        };
        if matches!(e, Value::Nil) {
            return Ok(None);
        }
        let record = record_of(e, v, s, d, r, Some(h))?;
        Ok((!record.is_expired(now)).then_some(record))
    }

    async fn delete(
        &self,
        id: &MessageId,
        receipt: &ReceiptDigest,
        now: UnixMillis,
    ) -> Result<Option<DeleteOutcome>, StoreError> {
        let key = self.message_key(id);
        let answer: Value = self
            .eval(&self.delete, |cmd| {
                cmd.arg(1).arg(&key).arg(&receipt.as_bytes()[..]).arg(now);
            })
            .await?;
        match answer {
            Value::Nil => Ok(None),
            Value::Array(fields) => match fields.as_slice() {
                [e, v, s, d, r, x] => {
                    let deletion = match x {
                        Value::BulkString(b) if b.as_slice() == b"1" => Deletion::Deleted,
                        _ => Deletion::AlreadyGone,
                    };
                    Ok(Some(DeleteOutcome { deletion, receipt: record_of(e, v, s, d, r, None)?.receipt() }))
                }
                _ => Err(unexpected("delete", &Value::Array(fields))),
            },
            other => Err(unexpected("delete", &other)),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.check_version().await?;
        let _: String = self.run(&redis::cmd("PING")).await?;
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for RedisStore {
    async fn hit(&self, client: &str, now: UnixMillis, limit: RateLimit) -> Result<RateDecision, StoreError> {
        let key = self.rate_key(client);
        let wait_ms: u64 = self
            .eval(&self.limiter, |cmd| {
                cmd.arg(1).arg(&key).arg(now).arg(limit.window_ms()).arg(limit.max());
            })
            .await?;
        Ok(if wait_ms == 0 { RateDecision::Allowed } else { RateDecision::Limited { retry_after_ms: Some(wait_ms) } })
    }
}

impl RedisStore {
    /// The prefix of every key this store writes (`CRYPT_REDIS_PREFIX`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// True when a count and a store operation can run as one script: on one node (or the
    /// master Sentinel names), not on Cluster, where the client's log and the message live in
    /// different slots (a hash tag cannot join a per-client key to a per-message one).
    pub fn counts_in_one_step(&self) -> bool {
        !matches!(self.backend, Backend::Cluster { .. })
    }

    /// Runs a counted operation's script (KEYS: the client's log, the message; ARGV: the
    /// window's three, then `extra`'s) and returns its one-value answer.
    async fn counted(
        &self,
        script: &LuaScript,
        client: &str,
        now: UnixMillis,
        limit: RateLimit,
        id: &MessageId,
        extra: impl Fn(&mut Cmd),
    ) -> Result<Value, StoreError> {
        let (rate_key, message_key) = (self.rate_key(client), self.message_key(id));
        self.eval(script, |cmd| {
            cmd.arg(2).arg(&rate_key).arg(&message_key).arg(now).arg(limit.window_ms()).arg(limit.max());
            extra(cmd);
        })
        .await
    }
}

/// An answer a script never gives. Only its kind is told: an answer may hold message text,
/// which is never logged.
fn unexpected(script: &str, answer: &Value) -> StoreError {
    let kind = match answer {
        Value::Int(n) => format!("the integer {n}"),
        Value::Nil => "nil".to_owned(),
        Value::BulkString(_) => "a string".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        _ => "another kind of value".to_owned(),
    };
    StoreError::Unavailable(format!("unexpected answer from the {script} script: {kind}"))
}

#[async_trait]
impl CountingStore for RedisStore {
    async fn insert_new_counted(
        &self,
        client: &str,
        now: UnixMillis,
        limit: RateLimit,
        id: &MessageId,
        message: &StoredMessage,
        ttl: Ttl,
    ) -> Result<Counted<Inserted>, StoreError> {
        let answer = self
            .counted(&self.create_counted, client, now, limit, id, |cmd| {
                cmd.arg(InsertArgs(message, ttl));
            })
            .await?;
        match answer {
            Value::Int(1) => Ok(Counted::Allowed(Inserted::Stored)),
            Value::Int(0) => Ok(Counted::Allowed(Inserted::Taken)),
            Value::Int(minus_wait) if minus_wait < 0 => {
                Ok(Counted::Limited { retry_after_ms: minus_wait.checked_neg().and_then(|w| u64::try_from(w).ok()) })
            }
            other => Err(unexpected("counted create", &other)),
        }
    }

    async fn spend_view_counted(
        &self,
        client: &str,
        now: UnixMillis,
        limit: RateLimit,
        id: &MessageId,
    ) -> Result<Counted<Option<Viewed>>, StoreError> {
        match self.counted(&self.spend_counted, client, now, limit, id, |_| {}).await? {
            Value::BulkString(bytes) => Ok(Counted::Allowed(Some(viewed(bytes)?))),
            Value::Nil => Ok(Counted::Allowed(None)),
            Value::Int(wait) if wait > 0 => Ok(Counted::Limited { retry_after_ms: u64::try_from(wait).ok() }),
            other => Err(unexpected("counted read", &other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(version: &str) -> Value {
        Value::BulkString(format!("# Server\r\nredis_version:{version}\r\nredis_mode:standalone\r\n").into_bytes())
    }

    #[test]
    fn the_oldest_node_decides_the_version() {
        let mut found = Vec::new();
        collect_versions(
            &Value::Map(vec![
                (Value::SimpleString("a".into()), info("7.0.15")),
                (Value::SimpleString("b".into()), info("6.0.9")),
            ]),
            &mut found,
        );
        assert_eq!(found.into_iter().min(), Some((6, 0, "6.0.9".to_owned())));
    }

    #[test]
    fn a_single_node_reply_is_read() {
        let mut found = Vec::new();
        collect_versions(&info("6.2.0"), &mut found);
        assert_eq!(found, vec![(6, 2, "6.2.0".to_owned())]);
        assert!(supports_getdel(6, 2) && supports_getdel(7, 0) && supports_getdel(10, 0));
        assert!(!supports_getdel(6, 0) && !supports_getdel(5, 9) && !supports_getdel(0, 0));
    }
}
