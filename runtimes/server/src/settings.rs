//! The server's configuration: defaults < optional file < environment, read through the one
//! settings struct both runtimes share ([`crypt_http::Settings`]: every name, default and check
//! is written there), then turned into what this runtime needs.

use crypt_http::{ApiSettings, SettingError, Settings, StoreChoice};
use crypt_redis::{RedisConfig, RedisTls};
use crypt_sqlite::SqliteConfig;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Which store holds the messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// In this process's memory (the default): nothing else to install, lost on restart.
    Memory,
    /// In Redis or Redis Cluster (`CRYPT_REDIS_URL`, `CRYPT_REDIS_PREFIX`,
    /// `CRYPT_REDIS_TIMEOUT_MS`): shared by every process, survives restarts. Its `Debug`
    /// hides the password.
    Redis(RedisConfig),
    /// In a SQLite database on this machine (`CRYPT_SQLITE_PATH`, `CRYPT_SQLITE_MAX_BYTES`):
    /// survives restarts and crashes; one process per database.
    Sqlite(SqliteConfig),
}

/// Everything the server needs to start, checked. Build it with [`Config::load`] (file and
/// environment), [`Config::from_vars`] (named values, as in the environment) or
/// [`Config::ephemeral`] (tests).
#[derive(Debug, Clone)]
pub struct Config {
    /// `CRYPT_LISTEN`: where to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `CRYPT_STORE` and the Redis settings.
    pub store: StoreKind,
    /// The limits, CORS and the body cap, shared with the Worker.
    pub api: ApiSettings,
    /// `CRYPT_TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `CRYPT_MEMORY_CAPACITY_BYTES`: the memory store's capacity.
    pub memory_capacity_bytes: usize,
    /// `CRYPT_MAX_CONNECTIONS`: the most connections open at once (lowered at start-up to what
    /// the process's file descriptor limit allows).
    pub max_connections: usize,
    /// `CRYPT_MAX_CONNECTIONS_PER_CLIENT`: the most one client address may hold; 0: no cap.
    pub max_connections_per_client: u32,
    /// `CRYPT_HEADER_TIMEOUT_MS`: time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// `CRYPT_BODY_TIMEOUT_MS`: time a client has to send a request's body.
    pub body_timeout: Duration,
    /// `CRYPT_MAX_INFLIGHT_BODY_BYTES`: the most bytes all request bodies may hold together.
    pub max_inflight_body_bytes: usize,
    /// `CRYPT_SHUTDOWN_GRACE_MS`: how long in-flight requests may take to finish on shutdown.
    pub shutdown_grace: Duration,
    /// `CRYPT_METRICS_LISTEN`: serve metrics on this address only; `None`: at `/metrics` on
    /// the API's address.
    pub metrics_listen: Option<SocketAddr>,
}

/// Variables with the prefix that are not settings but are still expected.
const ALSO_EXPECTED: [&str; 5] =
    ["CRYPT_CONFIG", "CRYPT_LOG", "CRYPT_LOG_FORMAT", "CRYPT_BASE_URL", "CRYPT_BASE_URL_KV"];

impl Config {
    /// Checks the settings and builds the configuration.
    ///
    /// # Errors
    /// The first setting that does not fit the others, named.
    pub fn from_settings(s: Settings) -> Result<Self, SettingError> {
        let api = s.api()?;
        let store = match s.store {
            StoreChoice::Memory => StoreKind::Memory,
            StoreChoice::Sqlite => StoreKind::Sqlite(SqliteConfig {
                path: s.sqlite_path.clone().into(),
                max_bytes: (s.sqlite_max_bytes > 0).then_some(s.sqlite_max_bytes),
            }),
            StoreChoice::Redis => StoreKind::Redis(RedisConfig {
                url: s.redis_url,
                prefix: s.redis_prefix,
                timeout: s.redis_timeout.duration(),
                tls: RedisTls {
                    ca_file: s.redis_ca_file.map(Into::into),
                    client_cert_file: s.redis_client_cert_file.map(Into::into),
                    client_key_file: s.redis_client_key_file.map(Into::into),
                },
            }),
        };
        Ok(Self {
            listen: s.listen,
            store,
            api,
            trusted_proxies: s.trusted_proxies.0,
            memory_capacity_bytes: s.memory_capacity_bytes,
            max_connections: s.max_connections.get(),
            max_connections_per_client: s.max_connections_per_client,
            header_timeout: s.header_timeout.duration(),
            body_timeout: s.body_timeout.duration(),
            max_inflight_body_bytes: s.max_inflight_body_bytes,
            shutdown_grace: s.shutdown_grace.duration(),
            metrics_listen: s.metrics_listen,
        })
    }

    /// The configuration from named values, as they would be in the environment
    /// (`("CRYPT_RATE_LIMIT_MAX", "0")`); unnamed settings keep their defaults. Nothing is read
    /// from the process's environment or a file.
    ///
    /// # Errors
    /// The first invalid setting, named.
    pub fn from_vars<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, SettingError> {
        Self::from_settings(Settings::from_vars(vars)?)
    }

    /// For a server inside tests: a free port on loopback, everything else default.
    pub fn ephemeral() -> Self {
        Self::from_vars([("CRYPT_LISTEN", "127.0.0.1:0")]).expect("the defaults are valid")
    }

    /// Reads the process's configuration: defaults, then the file named by `CRYPT_CONFIG`
    /// (which must exist) or `crypt.toml` in the working directory (if it exists), then the
    /// environment.
    ///
    /// # Errors
    /// The first setting that is missing its file, unreadable or invalid.
    pub fn load() -> Result<Self, SettingError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let file = match env.get("CRYPT_CONFIG") {
            Some(path) => (path.clone(), true),
            None => ("crypt.toml".to_owned(), false),
        };
        Self::from_sources(Some(file), env)
    }

    /// Variables that look like settings (`CRYPT_*`) but are not, most likely typos, for a
    /// warning at start-up.
    pub fn unknown_variables<'a>(env: impl Iterator<Item = &'a str>) -> Vec<String> {
        let names = Settings::names();
        env.filter(|k| k.starts_with("CRYPT_") && !names.contains(k) && !ALSO_EXPECTED.contains(k))
            .map(str::to_owned)
            .collect()
    }

    /// Reads settings from an optional TOML file (`(path, required)`) and a map of environment
    /// variables, in that order of precedence (the environment wins). In the file a setting is
    /// its name lower-cased without `CRYPT_` (`id_length = 8`, `rate_limit_per_second = 3`).
    ///
    /// # Errors
    /// The first setting that is invalid, named; a file that cannot be read, or has a key that
    /// is not a setting, as `CRYPT_CONFIG`.
    pub fn from_sources(file: Option<(String, bool)>, env: HashMap<String, String>) -> Result<Self, SettingError> {
        let names = Settings::names();
        let mut vars: HashMap<String, String> = match file {
            Some((path, required)) => read_file(&path, required)?,
            None => HashMap::new(),
        };
        vars.extend(env.into_iter().filter(|(k, _)| names.contains(&k.as_str())));
        Self::from_vars(vars)
    }
}

/// The file's settings by their environment names.
fn read_file(path: &str, required: bool) -> Result<HashMap<String, String>, SettingError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Settings::file_vars(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(HashMap::new()),
        Err(e) => Err(SettingError { setting: "CRYPT_CONFIG".into(), why: format!("{path}: {e}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypt_domain::RateLimit;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("crypt-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("crypt.toml");
        std::fs::write(&path, "id_length = 8\nrate_limit_max = 7\ncors_origins = \"https://a.example\"\n").unwrap();
        let file = Some((path.to_string_lossy().into_owned(), true));
        let c = Config::from_sources(file, env(&[("CRYPT_RATE_LIMIT_MAX", "9"), ("PATH", "/bin")])).unwrap();
        assert_eq!(c.api.policy.id_length(), 8);
        assert_eq!(c.api.policy.rate_limit(), RateLimit::of(9, 60));
        assert!(matches!(c.api.cors, crypt_http::Cors::List(_)));

        std::fs::write(&path, "rate_limit_per_second = 3\n").unwrap();
        let c = Config::from_sources(Some((path.to_string_lossy().into_owned(), true)), HashMap::new()).unwrap();
        assert_eq!(c.api.policy.rate_limit(), RateLimit::of(3, 1));

        std::fs::write(&path, "idlength = 8\n").unwrap();
        let e = Config::from_sources(Some((path.to_string_lossy().into_owned(), true)), HashMap::new()).unwrap_err();
        assert_eq!(e.setting, "CRYPT_CONFIG");
        assert!(e.why.contains("'idlength' is not a setting"), "{e}");
    }

    #[test]
    fn a_missing_required_file_is_an_error_and_an_optional_one_is_not() {
        let e = Config::from_sources(Some(("/nonexistent/crypt.toml".into(), true)), HashMap::new()).unwrap_err();
        assert_eq!(e.setting, "CRYPT_CONFIG");
        assert!(Config::from_sources(Some(("/nonexistent/crypt.toml".into(), false)), HashMap::new()).is_ok());
    }

    #[test]
    fn the_reference_rate_limit_setting_is_read_from_the_environment() {
        let c = Config::from_sources(None, env(&[("RATE_LIMIT_PER_SECOND", "3")])).unwrap();
        assert_eq!(c.api.policy.rate_limit(), RateLimit::of(3, 1));
        let e = Config::from_sources(None, env(&[("RATE_LIMIT_PER_SECOND", "3"), ("CRYPT_RATE_LIMIT_MAX", "60")]))
            .unwrap_err();
        assert_eq!(
            e.to_string().split(':').next(),
            Some("invalid setting RATE_LIMIT_PER_SECOND and CRYPT_RATE_LIMIT_MAX")
        );
    }

    #[test]
    fn redis_settings_have_defaults_and_can_be_set() {
        let c = Config::from_vars([("CRYPT_STORE", "redis")]).unwrap();
        let StoreKind::Redis(r) = c.store else { panic!("expected redis") };
        assert_eq!(
            (r.url.as_str(), r.prefix.as_str(), r.timeout),
            ("redis://127.0.0.1:6379", "crypt:", Duration::from_secs(2))
        );
        let c = Config::from_vars([
            ("CRYPT_STORE", "redis"),
            ("CRYPT_REDIS_URL", "redis://:pw@a:1,redis://:pw@b:2"),
            ("CRYPT_REDIS_TIMEOUT_MS", "250"),
        ])
        .unwrap();
        assert!(!format!("{c:?}").contains("pw@"), "{c:?}");
        let StoreKind::Redis(r) = c.store else { panic!("expected redis") };
        assert!(r.is_cluster());
        assert_eq!(r.timeout, Duration::from_millis(250));
    }

    #[test]
    fn typos_are_reported() {
        let unknown = Config::unknown_variables(
            ["CRYPT_STOR", "CRYPT_STORE", "CRYPT_LOG", "PATH", "RATE_LIMIT_PER_SECOND"].into_iter(),
        );
        assert_eq!(unknown, vec!["CRYPT_STOR".to_string()]);
    }
}
