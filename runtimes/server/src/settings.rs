//! Settings: defaults < optional file < `CRYPT_*` environment, each checked and named on error.

use config::{Config, Environment, File, FileFormat};
use crypt_domain::Policy;
use crypt_http::Cors;
use crypt_redis::RedisConfig;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// Which store holds the messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// In this process's memory (the default): nothing else to install, lost on restart.
    Memory,
    /// In Redis or Redis Cluster (`CRYPT_REDIS_URL`, `CRYPT_REDIS_PREFIX`,
    /// `CRYPT_REDIS_TIMEOUT_MS`): shared by every process, survives restarts.
    Redis(RedisConfig),
}

/// Everything the server needs to start. Build it with [`Settings::load`] (file and
/// environment), or start from [`Settings::default`] / [`Settings::ephemeral`] in code.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `CRYPT_LISTEN`: where to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `CRYPT_STORE`: `memory` or `redis`.
    pub store: StoreKind,
    /// The limits: `CRYPT_ID_LENGTH`, `CRYPT_ID_ATTEMPTS`, `CRYPT_MAX_MESSAGE_BYTES`, the TTL
    /// settings and the rate limit.
    pub policy: Policy,
    /// `CRYPT_MAX_BODY_BYTES`: a larger request body is refused with 413 and not read further.
    pub max_body_bytes: usize,
    /// `CRYPT_CORS_ORIGINS`.
    pub cors: Cors,
    /// `CRYPT_TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `CRYPT_MEMORY_CAPACITY_BYTES`: the memory store's capacity.
    pub memory_capacity_bytes: usize,
    /// `CRYPT_HEADER_TIMEOUT_MS`: time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// `CRYPT_BODY_TIMEOUT_MS`: time a client has to send a request's body.
    pub body_timeout: Duration,
    /// `CRYPT_SHUTDOWN_GRACE_MS`: how long in-flight requests may take to finish on shutdown.
    pub shutdown_grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            store: StoreKind::Memory,
            policy: Policy::default(),
            max_body_bytes: 1_048_576,
            cors: Cors::Any,
            trusted_proxies: Vec::new(),
            memory_capacity_bytes: 268_435_456,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A setting that could not be used; its `Display` is the one line start-up prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {why}")]
pub struct SettingsError {
    /// The setting's environment name, e.g. `CRYPT_ID_LENGTH`.
    pub setting: String,
    /// What is wrong with it.
    pub why: String,
}

fn invalid(setting: &str, why: impl Into<String>) -> SettingsError {
    SettingsError { setting: setting.to_owned(), why: why.into() }
}

/// Every setting the server reads, by its environment name. A `CRYPT_*` variable that is not
/// here (a typo, most likely) is reported at start-up.
pub const KNOWN: [&str; 20] = [
    "CRYPT_LISTEN",
    "CRYPT_STORE",
    "CRYPT_REDIS_URL",
    "CRYPT_REDIS_PREFIX",
    "CRYPT_REDIS_TIMEOUT_MS",
    "CRYPT_ID_LENGTH",
    "CRYPT_ID_ATTEMPTS",
    "CRYPT_MAX_MESSAGE_BYTES",
    "CRYPT_MAX_BODY_BYTES",
    "CRYPT_DEFAULT_TTL_SECS",
    "CRYPT_MIN_TTL_SECS",
    "CRYPT_MAX_TTL_SECS",
    "CRYPT_RATE_LIMIT_MAX",
    "CRYPT_RATE_LIMIT_WINDOW_SECS",
    "CRYPT_CORS_ORIGINS",
    "CRYPT_TRUSTED_PROXIES",
    "CRYPT_MEMORY_CAPACITY_BYTES",
    "CRYPT_HEADER_TIMEOUT_MS",
    "CRYPT_BODY_TIMEOUT_MS",
    "CRYPT_SHUTDOWN_GRACE_MS",
];

/// Variables with the prefix that are not settings of the server but are still expected.
const ALSO_EXPECTED: [&str; 3] = ["CRYPT_CONFIG", "CRYPT_LOG", "CRYPT_BASE_URL"];

impl Settings {
    /// Settings for a server inside tests: a free port on loopback, everything else default.
    pub fn ephemeral() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..Self::default() }
    }

    /// Reads the process's settings: defaults, then the file named by `CRYPT_CONFIG` (which
    /// must exist) or `crypt.toml` in the working directory (if it exists), then `CRYPT_*`
    /// environment variables.
    ///
    /// # Errors
    /// The first setting that is missing its file, unreadable or invalid.
    pub fn load() -> Result<Self, SettingsError> {
        let env: HashMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("CRYPT_")).collect();
        let file = match env.get("CRYPT_CONFIG") {
            Some(path) => Some((path.clone(), true)),
            None => Some(("crypt.toml".to_owned(), false)),
        };
        Self::from_sources(file, env)
    }

    /// Unknown `CRYPT_*` variables in `env`, most likely typos, for a warning at start-up.
    pub fn unknown_variables<'a>(env: impl Iterator<Item = &'a str>) -> Vec<String> {
        env.filter(|k| k.starts_with("CRYPT_") && !KNOWN.contains(k) && !ALSO_EXPECTED.contains(k))
            .map(str::to_owned)
            .collect()
    }

    /// Reads settings from an optional TOML file (`(path, required)`) and a map of environment
    /// variables, in that order of precedence (the environment wins).
    ///
    /// # Errors
    /// The first setting that is invalid, named as its environment variable.
    pub fn from_sources(file: Option<(String, bool)>, env: HashMap<String, String>) -> Result<Self, SettingsError> {
        let mut builder = Config::builder();
        if let Some((path, required)) = file {
            builder = builder.add_source(File::new(&path, FileFormat::Toml).required(required));
        }
        let env: HashMap<String, String> = env.into_iter().filter(|(k, _)| KNOWN.contains(&k.as_str())).collect();
        builder = builder.add_source(Environment::with_prefix("CRYPT").source(Some(env)));
        let cfg = builder.build().map_err(|e| invalid("CRYPT_CONFIG", e.to_string()))?;
        let r = Reader { cfg };
        let d = Settings::default();
        let unreadable = std::cell::RefCell::new(None);
        let policy = Policy::from_settings(|name| match r.text(name) {
            Ok(v) => v,
            Err(e) => {
                unreadable.borrow_mut().get_or_insert(e);
                None
            }
        });
        if let Some(e) = unreadable.into_inner() {
            return Err(e);
        }
        let policy = policy.map_err(|e| invalid(e.setting, e.why))?;
        let settings = Settings {
            listen: r.num("CRYPT_LISTEN", d.listen)?,
            store: match r.text("CRYPT_STORE")?.as_deref().map(str::trim) {
                None | Some("memory") => StoreKind::Memory,
                Some("redis") => StoreKind::Redis(RedisConfig {
                    url: r.text("CRYPT_REDIS_URL")?.unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
                    prefix: r.text("CRYPT_REDIS_PREFIX")?.unwrap_or_else(|| "crypt:".into()),
                    timeout: r.millis("CRYPT_REDIS_TIMEOUT_MS", Duration::from_millis(2000))?,
                }),
                Some(other) => {
                    return Err(invalid("CRYPT_STORE", format!("'{other}' is not a store; use memory or redis")))
                }
            },
            policy,
            max_body_bytes: r.num("CRYPT_MAX_BODY_BYTES", d.max_body_bytes)?,
            cors: match r.text("CRYPT_CORS_ORIGINS")? {
                None => d.cors,
                Some(s) => Cors::parse(&s).map_err(|why| invalid("CRYPT_CORS_ORIGINS", why))?,
            },
            trusted_proxies: match r.text("CRYPT_TRUSTED_PROXIES")? {
                None => d.trusted_proxies,
                Some(s) => parse_cidrs(&s).map_err(|why| invalid("CRYPT_TRUSTED_PROXIES", why))?,
            },
            memory_capacity_bytes: r.num("CRYPT_MEMORY_CAPACITY_BYTES", d.memory_capacity_bytes)?,
            header_timeout: r.millis("CRYPT_HEADER_TIMEOUT_MS", d.header_timeout)?,
            body_timeout: r.millis("CRYPT_BODY_TIMEOUT_MS", d.body_timeout)?,
            shutdown_grace: r.millis("CRYPT_SHUTDOWN_GRACE_MS", d.shutdown_grace)?,
        };
        if settings.max_body_bytes < settings.policy.max_message_bytes {
            return Err(invalid(
                "CRYPT_MAX_BODY_BYTES",
                format!(
                    "({}) is below CRYPT_MAX_MESSAGE_BYTES ({}); the largest message could never arrive",
                    settings.max_body_bytes, settings.policy.max_message_bytes
                ),
            ));
        }
        Ok(settings)
    }
}

/// Reads values by their environment name from the layered config, where the key is the name
/// without the prefix, lower-cased (`CRYPT_ID_LENGTH` is `id_length`, in the file too).
struct Reader {
    cfg: Config,
}

impl Reader {
    fn text(&self, setting: &str) -> Result<Option<String>, SettingsError> {
        let key = setting.trim_start_matches("CRYPT_").to_ascii_lowercase();
        match self.cfg.get_string(&key) {
            Ok(v) => Ok(Some(v)),
            Err(config::ConfigError::NotFound(_)) => Ok(None),
            Err(e) => Err(invalid(setting, e.to_string())),
        }
    }

    fn num<T: FromStr>(&self, setting: &str, default: T) -> Result<T, SettingsError>
    where
        T::Err: std::fmt::Display,
    {
        match self.text(setting)? {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|e| invalid(setting, format!("'{raw}': {e}"))),
        }
    }

    fn millis(&self, setting: &str, default: Duration) -> Result<Duration, SettingsError> {
        let ms: u64 = self.num(setting, default.as_millis() as u64)?;
        if ms == 0 {
            return Err(invalid(setting, "must be at least 1"));
        }
        Ok(Duration::from_millis(ms))
    }
}

fn parse_cidrs(s: &str) -> Result<Vec<IpNet>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.parse::<IpNet>()
                .or_else(|_| e.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("'{e}' is not an address or CIDR like 10.0.0.0/8"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_match_the_settings_table() {
        let s = Settings::from_sources(None, HashMap::new()).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8787".parse().unwrap());
        assert_eq!(s.store, StoreKind::Memory);
        assert_eq!(s.policy, Policy::default());
        assert_eq!(s.max_body_bytes, 1_048_576);
        assert_eq!(s.memory_capacity_bytes, 268_435_456);
        assert_eq!(s.cors, Cors::Any);
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("crypt-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("crypt.toml");
        std::fs::write(&path, "id_length = 8\nrate_limit_max = 7\ncors_origins = \"https://a.example\"\n").unwrap();
        let file = Some((path.to_string_lossy().into_owned(), true));
        let s = Settings::from_sources(file, env(&[("CRYPT_RATE_LIMIT_MAX", "9")])).unwrap();
        assert_eq!(s.policy.id_length, 8);
        assert_eq!(s.policy.rate_limit.max, 9);
        assert!(matches!(s.cors, Cors::List(_)));
    }

    #[test]
    fn a_missing_required_file_is_an_error_and_an_optional_one_is_not() {
        assert!(Settings::from_sources(Some(("/nonexistent/crypt.toml".into(), true)), HashMap::new()).is_err());
        assert!(Settings::from_sources(Some(("/nonexistent/crypt.toml".into(), false)), HashMap::new()).is_ok());
    }

    #[test]
    fn every_invalid_value_names_its_setting() {
        let cases = [
            ("CRYPT_ID_LENGTH", "4"),
            ("CRYPT_ID_LENGTH", "five"),
            ("CRYPT_ID_ATTEMPTS", "0"),
            ("CRYPT_LISTEN", "localhost"),
            ("CRYPT_STORE", "postgres"),
            ("CRYPT_MAX_TTL_SECS", "-1"),
            ("CRYPT_MIN_TTL_SECS", "0"),
            ("CRYPT_DEFAULT_TTL_SECS", "10"),
            ("CRYPT_RATE_LIMIT_WINDOW_SECS", "0"),
            ("CRYPT_CORS_ORIGINS", "example.com"),
            ("CRYPT_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("CRYPT_MEMORY_CAPACITY_BYTES", "lots"),
            ("CRYPT_MAX_BODY_BYTES", "1000"),
            ("CRYPT_BODY_TIMEOUT_MS", "0"),
        ];
        for (setting, value) in cases {
            let err = Settings::from_sources(None, env(&[(setting, value)])).unwrap_err();
            assert_eq!(err.setting, setting, "{setting}={value}: {err}");
            assert!(err.to_string().starts_with(&format!("invalid setting {setting}: ")));
        }
    }

    #[test]
    fn redis_settings_have_defaults_and_can_be_set() {
        let s = Settings::from_sources(None, env(&[("CRYPT_STORE", "redis")])).unwrap();
        let StoreKind::Redis(r) = s.store else { panic!("expected redis") };
        assert_eq!(
            (r.url.as_str(), r.prefix.as_str(), r.timeout),
            ("redis://127.0.0.1:6379", "crypt:", Duration::from_secs(2))
        );
        let s = Settings::from_sources(
            None,
            env(&[
                ("CRYPT_STORE", "redis"),
                ("CRYPT_REDIS_URL", "redis://a:1,redis://b:2"),
                ("CRYPT_REDIS_TIMEOUT_MS", "250"),
            ]),
        )
        .unwrap();
        let StoreKind::Redis(r) = s.store else { panic!("expected redis") };
        assert!(r.is_cluster());
        assert_eq!(r.timeout, Duration::from_millis(250));
        let err = Settings::from_sources(None, env(&[("CRYPT_STORE", "redis"), ("CRYPT_REDIS_TIMEOUT_MS", "soon")]))
            .unwrap_err();
        assert_eq!(err.setting, "CRYPT_REDIS_TIMEOUT_MS");
    }

    #[test]
    fn typos_are_reported() {
        let unknown = Settings::unknown_variables(["CRYPT_STOR", "CRYPT_STORE", "CRYPT_LOG", "PATH"].into_iter());
        assert_eq!(unknown, vec!["CRYPT_STOR".to_string()]);
    }

    #[test]
    fn trusted_proxies_accept_addresses_and_cidrs() {
        let s = Settings::from_sources(None, env(&[("CRYPT_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")])).unwrap();
        assert_eq!(s.trusted_proxies.len(), 3);
    }
}
