//! Every setting of crypt, written once: its name, its default and its check.
//!
//! Both runtimes read the same flat set of names: the server from its environment (and its
//! optional file), the Worker from `[vars]` in wrangler.toml. Each hands [`Settings::from_vars`]
//! the names it found with their text; this is the one place that turns text into typed values
//! ([`text`] is the deserializer) and says which setting is wrong. A runtime reads the fields it
//! uses; the Worker ignores the server's.

mod text;

use crate::{Cors, Ipv6Prefix, TokenHashes};
use crypt_domain::{IdAlphabet, Limits, Policy};
use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

/// A setting that could not be used; its `Display` is the one line a runtime prints (the
/// server at start-up, the Worker in its log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {why}")]
pub struct SettingError {
    /// The setting's name, as an operator writes it (`CRYPT_ID_LENGTH`), or two names joined
    /// by " and " when they conflict.
    pub setting: String,
    /// What is wrong with it.
    pub why: String,
}

impl SettingError {
    pub(crate) fn new(setting: impl Into<String>, why: impl Into<String>) -> Self {
        Self { setting: setting.into(), why: why.into() }
    }
}

/// Which store holds the messages on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreChoice {
    /// In the process's memory (the default): nothing else to install, lost on restart.
    Memory,
    /// In Redis or Redis Cluster.
    Redis,
    /// In a SQLite database file on this machine: durable, one process.
    Sqlite,
}

/// Which store holds the messages at the edge (the Worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum EdgeStore {
    /// Workers KV (the default, the reference service's): eventually consistent, no atomic burn.
    #[serde(rename = "kv")]
    Kv,
    /// One Durable Object per message: strongly consistent, burned exactly once.
    #[serde(rename = "durable-object")]
    DurableObject,
}

/// A duration in whole milliseconds, at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Millis(NonZeroU64);

impl Millis {
    const fn of(ms: u64) -> Self {
        match NonZeroU64::new(ms) {
            Some(ms) => Millis(ms),
            None => panic!("a default duration is at least 1 ms"),
        }
    }

    /// As a [`Duration`].
    pub fn duration(self) -> Duration {
        Duration::from_millis(self.0.get())
    }
}

/// Addresses or CIDRs, comma-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(pub Vec<IpNet>);

impl<'de> Deserialize<'de> for Networks {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| serde::de::Error::custom(format!("'{e}' is not an address or CIDR like 10.0.0.0/8")))
            })
            .collect::<Result<_, _>>()
            .map(Networks)
    }
}

impl<'de> Deserialize<'de> for TokenHashes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TokenHashes::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Cors {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Cors::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Ipv6Prefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bits = u8::deserialize(d)?;
        Ipv6Prefix::new(bits)
            .ok_or_else(|| serde::de::Error::custom(format!("{bits} is not a prefix length from 1 to 128")))
    }
}

fn alphabet<'de, D: serde::Deserializer<'de>>(d: D) -> Result<IdAlphabet, D::Error> {
    let text = String::deserialize(d)?;
    IdAlphabet::parse(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "'{text}' is not an alphabet; use {} (the default) or {}",
            IdAlphabet::Lowercase.setting(),
            IdAlphabet::Mixed.setting()
        ))
    })
}

/// Every setting, by the name an operator writes (the `rename` on each field). A missing name
/// takes the default from [`Settings::default`] (and so, for the limits, from
/// [`Limits::default`]). Build it with [`Settings::from_vars`].
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Server: where to bind; port 0 picks a free port.
    #[serde(rename = "CRYPT_LISTEN")]
    pub listen: SocketAddr,
    /// Server: `memory`, `sqlite` or `redis`.
    #[serde(rename = "CRYPT_STORE")]
    pub store: StoreChoice,
    /// Worker: `kv` (Workers KV, the default) or `durable-object` (one Durable Object per
    /// message, exactly-once).
    #[serde(rename = "CRYPT_EDGE_STORE")]
    pub edge_store: EdgeStore,
    /// Server: one Redis URL, or several comma-separated for Redis Cluster. May hold a
    /// password, so `Debug` never shows it.
    #[serde(rename = "CRYPT_REDIS_URL")]
    pub redis_url: String,
    /// Server: put before every Redis key.
    #[serde(rename = "CRYPT_REDIS_PREFIX")]
    pub redis_prefix: String,
    /// Server: a PEM CA trusted for `rediss://` instead of the system's roots.
    #[serde(rename = "CRYPT_REDIS_CA_FILE")]
    pub redis_ca_file: Option<String>,
    /// Server: a PEM client certificate for Redis servers that ask for one.
    #[serde(rename = "CRYPT_REDIS_CLIENT_CERT_FILE")]
    pub redis_client_cert_file: Option<String>,
    /// Server: the client certificate's PEM private key.
    #[serde(rename = "CRYPT_REDIS_CLIENT_KEY_FILE")]
    pub redis_client_key_file: Option<String>,
    /// Server: serve Prometheus metrics on this address only (not on the API's). Unset: on the
    /// API's own address, at `/metrics`.
    #[serde(rename = "CRYPT_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Server: the longest one Redis command may take.
    #[serde(rename = "CRYPT_REDIS_TIMEOUT_MS")]
    pub redis_timeout: Millis,
    /// Length of generated ids.
    #[serde(rename = "CRYPT_ID_LENGTH")]
    pub id_length: usize,
    /// The symbols of generated ids: `a-z0-9` or `A-Za-z0-9`.
    #[serde(rename = "CRYPT_ID_ALPHABET", deserialize_with = "alphabet")]
    pub id_alphabet: IdAlphabet,
    /// Ids tried before answering 500.
    #[serde(rename = "CRYPT_ID_ATTEMPTS")]
    pub id_attempts: u32,
    /// Largest message in bytes of UTF-8.
    #[serde(rename = "CRYPT_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: usize,
    /// The most views a create may ask for (SPEC Part 2 item 9).
    #[serde(rename = "CRYPT_MAX_VIEWS")]
    pub max_views: u32,
    /// Largest file (an `application/octet-stream` create, SPEC Part 2 item 11), in bytes:
    /// such a body is read up to it instead of `CRYPT_MAX_BODY_BYTES`.
    #[serde(rename = "CRYPT_MAX_FILE_BYTES")]
    pub max_file_bytes: usize,
    /// Server: the most bytes all request bodies being read or held may take together; an
    /// upload that would pass it waits (up to the body timeout) for others to finish, then is
    /// answered 503 `Server busy`. Never below the largest body or file.
    #[serde(rename = "CRYPT_MAX_INFLIGHT_BODY_BYTES")]
    pub max_inflight_body_bytes: usize,
    /// Largest request body; reading stops there.
    #[serde(rename = "CRYPT_MAX_BODY_BYTES")]
    pub max_body_bytes: usize,
    /// Time to live when a request names none.
    #[serde(rename = "CRYPT_DEFAULT_TTL_SECS")]
    pub default_ttl_secs: u64,
    /// Smallest `ttl` a request may ask for.
    #[serde(rename = "CRYPT_MIN_TTL_SECS")]
    pub min_ttl_secs: u64,
    /// Largest `ttl` a request may ask for.
    #[serde(rename = "CRYPT_MAX_TTL_SECS")]
    pub max_ttl_secs: u64,
    /// Requests per window per client; 0 turns limiting off. `None`: not set.
    #[serde(rename = "CRYPT_RATE_LIMIT_MAX")]
    pub rate_limit_max: Option<u32>,
    /// The sliding window in seconds. `None`: not set.
    #[serde(rename = "CRYPT_RATE_LIMIT_WINDOW_SECS")]
    pub rate_limit_window_secs: Option<u64>,
    /// The reference service's own setting: N requests per 1-second window. It cannot be set
    /// together with the window/budget pair.
    #[serde(rename = "RATE_LIMIT_PER_SECOND")]
    pub rate_limit_per_second: Option<NonZeroU32>,
    /// `*` or a comma-separated list of origins.
    #[serde(rename = "CRYPT_CORS_ORIGINS")]
    pub cors_origins: Cors,
    /// SHA-256 hashes (hex, comma-separated) of the tokens that may create messages; unset:
    /// anyone may. On the Worker, a secret binding (`wrangler secret put`).
    #[serde(rename = "CRYPT_CREATE_TOKEN_HASHES")]
    pub create_token_hashes: TokenHashes,
    /// How many leading bits of an IPv6 address count as one client (64: a host's usual /64).
    #[serde(rename = "CRYPT_IPV6_PREFIX")]
    pub ipv6_prefix: Ipv6Prefix,
    /// Server: peers whose `X-Forwarded-For` is believed.
    #[serde(rename = "CRYPT_TRUSTED_PROXIES")]
    pub trusted_proxies: Networks,
    /// Server, memory store: its capacity in bytes; beyond it, 507.
    #[serde(rename = "CRYPT_MEMORY_CAPACITY_BYTES")]
    pub memory_capacity_bytes: usize,
    /// Server, SQLite store: the database file (created when absent; its folder must exist).
    #[serde(rename = "CRYPT_SQLITE_PATH")]
    pub sqlite_path: String,
    /// Server, SQLite store: the most bytes the database may hold; beyond it, 507. 0: as much
    /// as the disk.
    #[serde(rename = "CRYPT_SQLITE_MAX_BYTES")]
    pub sqlite_max_bytes: u64,
    /// Server: the most connections held open at once; past it, new ones wait in the kernel's
    /// queue until one closes.
    #[serde(rename = "CRYPT_MAX_CONNECTIONS")]
    pub max_connections: std::num::NonZeroUsize,
    /// Server: the most connections one client address (an IPv6 client by its prefix) may hold
    /// open; past it, a new one is closed at once. 0: no per-client cap. Not applied to
    /// trusted proxies, whose connections carry many clients.
    #[serde(rename = "CRYPT_MAX_CONNECTIONS_PER_CLIENT")]
    pub max_connections_per_client: u32,
    /// Server: time a connection has to deliver a request's headers.
    #[serde(rename = "CRYPT_HEADER_TIMEOUT_MS")]
    pub header_timeout: Millis,
    /// Server: time a client has to send a request's body.
    #[serde(rename = "CRYPT_BODY_TIMEOUT_MS")]
    pub body_timeout: Millis,
    /// Server: how long in-flight requests may take to finish on shutdown.
    #[serde(rename = "CRYPT_SHUTDOWN_GRACE_MS")]
    pub shutdown_grace: Millis,
}

impl Default for Settings {
    fn default() -> Self {
        let l = Limits::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            store: StoreChoice::Memory,
            edge_store: EdgeStore::Kv,
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: "crypt:".into(),
            redis_timeout: Millis::of(2000),
            redis_ca_file: None,
            redis_client_cert_file: None,
            redis_client_key_file: None,
            metrics_listen: None,
            id_length: l.id_length,
            id_alphabet: l.id_alphabet,
            id_attempts: l.id_attempts,
            max_message_bytes: l.max_message_bytes,
            max_views: l.max_views,
            max_file_bytes: l.max_file_bytes,
            max_inflight_body_bytes: 268_435_456,
            max_body_bytes: 1_048_576,
            default_ttl_secs: l.default_ttl_secs,
            min_ttl_secs: l.min_ttl_secs,
            max_ttl_secs: l.max_ttl_secs,
            rate_limit_max: None,
            rate_limit_window_secs: None,
            rate_limit_per_second: None,
            cors_origins: Cors::Any,
            create_token_hashes: TokenHashes::default(),
            ipv6_prefix: Ipv6Prefix::default(),
            trusted_proxies: Networks::default(),
            memory_capacity_bytes: 268_435_456,
            sqlite_path: "crypt.db".into(),
            sqlite_max_bytes: 0,
            max_connections: std::num::NonZeroUsize::new(16_384).expect("not zero"),
            max_connections_per_client: 256,
            header_timeout: Millis::of(10_000),
            body_timeout: Millis::of(30_000),
            shutdown_grace: Millis::of(10_000),
        }
    }
}

impl std::fmt::Debug for Settings {
    /// Everything but the Redis URL, which may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("store", &self.store)
            .field("edge_store", &self.edge_store)
            .field("redis_url", &"(hidden: it may hold a password)")
            .field("redis_prefix", &self.redis_prefix)
            .field("api", &self.api())
            .field("trusted_proxies", &self.trusted_proxies)
            .field("memory_capacity_bytes", &self.memory_capacity_bytes)
            .field("sqlite_path", &self.sqlite_path)
            .field("sqlite_max_bytes", &self.sqlite_max_bytes)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_client", &self.max_connections_per_client)
            .finish_non_exhaustive()
    }
}

/// What the HTTP adapter needs from the settings, checked against each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// The limits.
    pub policy: Policy,
    /// Who may call from a browser.
    pub cors: Cors,
    /// Largest request body; never below the largest message.
    pub max_body_bytes: usize,
    /// Who may create messages.
    pub create_tokens: TokenHashes,
    /// How many leading bits of an IPv6 address count as one client.
    pub ipv6_prefix: Ipv6Prefix,
}

impl Settings {
    /// Every setting's name, as an operator writes it: read off the struct itself, so it can
    /// never miss one. A runtime asks its environment for exactly these.
    pub fn names() -> &'static [&'static str] {
        text::field_names::<Settings>()
    }

    /// Reads settings from `(name, text)` pairs (environment variables, `[vars]`). A blank
    /// value counts as unset; a name given twice takes its last value; a name that is not a setting is ignored (see [`Settings::names`]
    /// to warn about typos). Each value is checked on its own here; [`Settings::api`] checks
    /// how the limits fit together.
    ///
    /// # Errors
    /// The first value that is not of its setting's kind, naming the setting.
    pub fn from_vars<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, SettingError> {
        // A name given twice takes its last value, as a later source overrides an earlier one
        // (found by fuzzing: serde's "duplicate field" named no setting).
        let mut vars: Vec<(String, String)> =
            vars.into_iter().map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().trim().to_owned())).collect();
        let mut seen = std::collections::HashSet::new();
        vars.reverse();
        vars.retain(|(k, _)| seen.insert(k.clone()));
        vars.reverse();
        vars.retain(|(_, v)| !v.is_empty());
        text::from_pairs(&vars)
    }

    /// The settings a configuration file's TOML `text` holds, by their environment names
    /// (`id_length = 8` is `CRYPT_ID_LENGTH`; `rate_limit_per_second`, the reference's name,
    /// has no prefix). `path` only names the file in errors. The server reads its optional
    /// `crypt.toml` (or `CRYPT_CONFIG`) through this; the Worker has `[vars]` instead.
    ///
    /// # Errors
    /// Text that is not TOML, a key that is not a setting, or a value that is not a scalar, as
    /// `CRYPT_CONFIG`.
    #[cfg(feature = "file")]
    pub fn file_vars(path: &str, text: &str) -> Result<std::collections::HashMap<String, String>, SettingError> {
        let bad = |why: String| SettingError { setting: "CRYPT_CONFIG".into(), why: format!("{path}: {why}") };
        let table = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize::<std::collections::HashMap<String, config::Value>>())
            .map_err(|e| bad(e.to_string()))?;
        let names = Self::names();
        let mut vars = std::collections::HashMap::new();
        for (key, value) in table {
            let upper = key.to_ascii_uppercase();
            let name = [format!("CRYPT_{upper}"), upper]
                .into_iter()
                .find(|n| names.contains(&n.as_str()))
                .ok_or_else(|| bad(format!("'{key}' is not a setting")))?;
            let text = value.into_string().map_err(|e| bad(format!("'{key}': {e}")))?;
            vars.insert(name, text);
        }
        Ok(vars)
    }

    /// The policy, CORS and body cap, checked together.
    ///
    /// # Errors
    /// A limit that does not fit the others (named), `RATE_LIMIT_PER_SECOND` set together
    /// with `CRYPT_RATE_LIMIT_MAX` or `CRYPT_RATE_LIMIT_WINDOW_SECS` (both named), or a body cap
    /// below the largest message.
    pub fn api(&self) -> Result<ApiSettings, SettingError> {
        let d = Limits::default();
        let (rate_limit_max, rate_limit_window_secs) =
            match (self.rate_limit_per_second, self.rate_limit_max, self.rate_limit_window_secs) {
                (Some(n), None, None) => (n.get(), 1),
                (Some(_), max, _) => {
                    let other = if max.is_some() { "CRYPT_RATE_LIMIT_MAX" } else { "CRYPT_RATE_LIMIT_WINDOW_SECS" };
                    return Err(SettingError::new(
                        format!("RATE_LIMIT_PER_SECOND and {other}"),
                        "both set a rate limit; keep one (RATE_LIMIT_PER_SECOND=N means N requests per 1-second \
                         window, the reference service's setting)",
                    ));
                }
                (None, max, window) => (max.unwrap_or(d.rate_limit_max), window.unwrap_or(d.rate_limit_window_secs)),
            };
        let policy = Policy::new(Limits {
            max_message_bytes: self.max_message_bytes,
            max_file_bytes: self.max_file_bytes,
            default_ttl_secs: self.default_ttl_secs,
            min_ttl_secs: self.min_ttl_secs,
            max_ttl_secs: self.max_ttl_secs,
            id_length: self.id_length,
            id_alphabet: self.id_alphabet,
            id_attempts: self.id_attempts,
            rate_limit_max,
            rate_limit_window_secs,
            max_views: self.max_views,
        })
        .map_err(|e| SettingError::new(e.setting, e.why))?;
        if self.max_body_bytes < self.max_message_bytes {
            return Err(SettingError::new(
                "CRYPT_MAX_BODY_BYTES",
                format!(
                    "({}) is below CRYPT_MAX_MESSAGE_BYTES ({}); the largest message could never arrive",
                    self.max_body_bytes, self.max_message_bytes
                ),
            ));
        }
        let largest = self.max_body_bytes.max(self.max_file_bytes);
        if self.max_inflight_body_bytes < largest {
            return Err(SettingError::new(
                "CRYPT_MAX_INFLIGHT_BODY_BYTES",
                format!(
                    "({}) is below the largest body it must hold ({largest}, CRYPT_MAX_BODY_BYTES or \
                     CRYPT_MAX_FILE_BYTES); that body could never arrive",
                    self.max_inflight_body_bytes
                ),
            ));
        }
        Ok(ApiSettings {
            policy,
            cors: self.cors_origins.clone(),
            max_body_bytes: self.max_body_bytes,
            create_tokens: self.create_token_hashes.clone(),
            ipv6_prefix: self.ipv6_prefix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypt_domain::RateLimit;

    fn read(pairs: &[(&str, &str)]) -> Result<Settings, SettingError> {
        Settings::from_vars(pairs.iter().copied())
    }

    #[cfg(feature = "file")]
    #[test]
    fn a_settings_file_names_settings_lower_cased_without_the_prefix() {
        let vars =
            Settings::file_vars("crypt.toml", "id_length = 8\nrate_limit_per_second = 3\ncors_origins = \"*\"\n")
                .unwrap();
        let mut vars: Vec<_> = vars.into_iter().collect();
        vars.sort();
        let expected = [("CRYPT_CORS_ORIGINS", "*"), ("CRYPT_ID_LENGTH", "8"), ("RATE_LIMIT_PER_SECOND", "3")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(vars, expected);
        for (text, why) in [
            ("id_length = ", "crypt.toml: "),
            ("idlength = 8", "crypt.toml: 'idlength' is not a setting"),
            ("[listen]\nport = 1", "crypt.toml: 'listen': "),
        ] {
            let e = Settings::file_vars("crypt.toml", text).unwrap_err();
            assert_eq!(e.setting, "CRYPT_CONFIG", "{text}");
            assert!(e.why.starts_with(why), "{text}: {e}");
        }
    }

    #[test]
    fn the_defaults_are_the_reference_contract() {
        let s = read(&[]).unwrap();
        let api = s.api().unwrap();
        assert_eq!(api.policy, Policy::default());
        assert_eq!(api.policy.rate_limit(), RateLimit::of(60, 60));
        assert_eq!(api.policy.id_alphabet(), IdAlphabet::Lowercase);
        assert_eq!((api.cors, api.max_body_bytes), (Cors::Any, 1_048_576));
        assert_eq!(s.listen, "127.0.0.1:8787".parse().unwrap());
        assert_eq!(
            (s.store, s.redis_url.as_str(), s.redis_prefix.as_str()),
            (StoreChoice::Memory, "redis://127.0.0.1:6379", "crypt:")
        );
        assert_eq!(s.memory_capacity_bytes, 268_435_456);
        assert_eq!(s.header_timeout.duration(), Duration::from_secs(10));
    }

    #[test]
    fn names_are_read_off_the_struct() {
        let names = Settings::names();
        assert_eq!(names.len(), 36);
        for n in [
            "CRYPT_LISTEN",
            "CRYPT_ID_ALPHABET",
            "RATE_LIMIT_PER_SECOND",
            "CRYPT_SHUTDOWN_GRACE_MS",
            "CRYPT_MAX_FILE_BYTES",
        ] {
            assert!(names.contains(&n), "{n}");
        }
    }

    #[test]
    fn values_are_read_as_text_and_blank_is_unset() {
        let s = read(&[
            ("CRYPT_ID_LENGTH", " 9 "),
            ("CRYPT_ID_ALPHABET", "A-Za-z0-9"),
            ("CRYPT_STORE", "redis"),
            ("CRYPT_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1"),
            ("CRYPT_CORS_ORIGINS", ""),
            ("NOT_A_SETTING", "whatever"),
        ])
        .unwrap();
        assert_eq!((s.id_length, s.id_alphabet, s.store), (9, IdAlphabet::Mixed, StoreChoice::Redis));
        assert_eq!(s.trusted_proxies.0.len(), 3);
        assert_eq!(s.cors_origins, Cors::Any);
    }

    #[test]
    fn a_name_given_twice_takes_its_last_value() {
        let s = read(&[("CRYPT_ID_LENGTH", "8"), ("CRYPT_ID_LENGTH", "9")]).unwrap();
        assert_eq!(s.id_length, 9);
        let s = read(&[("CRYPT_ID_LENGTH", "8"), ("CRYPT_ID_LENGTH", " ")]).unwrap();
        assert_eq!(s.id_length, 5, "a blank last value unsets it");
        let e = read(&[("CRYPT_ID_LENGTH", "8"), ("CRYPT_ID_LENGTH", "x")]).unwrap_err();
        assert_eq!(e.setting, "CRYPT_ID_LENGTH");
    }

    #[test]
    fn the_reference_setting_means_n_per_second() {
        let api = read(&[("RATE_LIMIT_PER_SECOND", "3")]).unwrap().api().unwrap();
        assert_eq!(api.policy.rate_limit(), RateLimit::of(3, 1));
        let off = read(&[("CRYPT_RATE_LIMIT_MAX", "0")]).unwrap().api().unwrap();
        assert_eq!(off.policy.rate_limit(), None);
    }

    #[test]
    fn the_reference_setting_with_the_pair_names_both() {
        for other in ["CRYPT_RATE_LIMIT_MAX", "CRYPT_RATE_LIMIT_WINDOW_SECS"] {
            let e = read(&[("RATE_LIMIT_PER_SECOND", "3"), (other, "10")]).unwrap().api().unwrap_err();
            assert_eq!(e.setting, format!("RATE_LIMIT_PER_SECOND and {other}"));
            assert!(e.to_string().starts_with(&format!("invalid setting RATE_LIMIT_PER_SECOND and {other}: ")));
        }
    }

    #[test]
    fn every_invalid_value_names_its_setting() {
        let cases = [
            ("RATE_LIMIT_PER_SECOND", "0"),
            ("RATE_LIMIT_PER_SECOND", "-1"),
            ("RATE_LIMIT_PER_SECOND", "abc"),
            ("RATE_LIMIT_PER_SECOND", "1.5"),
            ("CRYPT_ID_ALPHABET", "base64"),
            ("CRYPT_ID_LENGTH", "4"),
            ("CRYPT_ID_LENGTH", "five"),
            ("CRYPT_ID_ATTEMPTS", "0"),
            ("CRYPT_LISTEN", "localhost"),
            ("CRYPT_STORE", "postgres"),
            ("CRYPT_MAX_TTL_SECS", "-1"),
            ("CRYPT_MIN_TTL_SECS", "0"),
            ("CRYPT_DEFAULT_TTL_SECS", "10"),
            ("CRYPT_RATE_LIMIT_WINDOW_SECS", "0"),
            ("CRYPT_RATE_LIMIT_MAX", "lots"),
            ("CRYPT_CORS_ORIGINS", "example.com"),
            ("CRYPT_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("CRYPT_MEMORY_CAPACITY_BYTES", "lots"),
            ("CRYPT_MAX_BODY_BYTES", "1000"),
            ("CRYPT_MAX_FILE_BYTES", "0"),
            ("CRYPT_MAX_FILE_BYTES", "ten megabytes"),
            ("CRYPT_MAX_INFLIGHT_BODY_BYTES", "10485759"),
            ("CRYPT_BODY_TIMEOUT_MS", "0"),
            ("CRYPT_REDIS_TIMEOUT_MS", "soon"),
            ("CRYPT_METRICS_LISTEN", "everywhere"),
            ("CRYPT_CREATE_TOKEN_HASHES", "hunter2"),
            ("CRYPT_MAX_CONNECTIONS", "0"),
            ("CRYPT_MAX_CONNECTIONS_PER_CLIENT", "-1"),
            ("CRYPT_IPV6_PREFIX", "0"),
            ("CRYPT_IPV6_PREFIX", "129"),
            ("CRYPT_IPV6_PREFIX", "/64"),
        ];
        for (setting, value) in cases {
            let err = read(&[(setting, value)]).and_then(|s| s.api().map(|_| s)).unwrap_err();
            assert_eq!(err.setting, setting, "{setting}={value}: {err}");
            assert!(err.to_string().starts_with(&format!("invalid setting {setting}: ")), "{err}");
        }
    }

    #[test]
    fn debug_hides_the_redis_url() {
        let s = read(&[("CRYPT_REDIS_URL", "redis://:hunter2@db:6379")]).unwrap();
        assert_eq!(s.redis_url, "redis://:hunter2@db:6379");
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("hidden"));
    }
}
