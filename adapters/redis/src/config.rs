//! Where and how to reach Redis: one node, a Cluster, or a master found through Sentinel, in
//! plain TCP or TLS.

use std::path::PathBuf;
use std::time::Duration;

/// Where and how to reach Redis. Its `Debug` hides the password of every URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// One of:
    /// - `redis://[:password@]host:port[/db]` (or `rediss://` for TLS): a single node;
    /// - several such URLs comma-separated, or `redis+cluster://host:port`: Redis Cluster (any
    ///   reachable subset of its nodes);
    /// - `redis+sentinel://[:password@]host:port[,host:port...]/master-name[/db]`: the master
    ///   that the Sentinels at those addresses name, followed through failovers. The password
    ///   is the master's; the Sentinels are asked without one.
    pub url: String,
    /// Put before every key, so several services can share a Redis (`CRYPT_REDIS_PREFIX`).
    pub prefix: String,
    /// The longest any command may take before it counts as a failure (`CRYPT_REDIS_TIMEOUT_MS`).
    pub timeout: Duration,
    /// Certificates for `rediss://`.
    pub tls: RedisTls,
}

/// The files a `rediss://` connection uses, all PEM. With none set, the server's certificate
/// is checked against the system's trusted roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// The CA that signed the server's certificate (`CRYPT_REDIS_CA_FILE`), trusted instead of
    /// the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A client certificate (`CRYPT_REDIS_CLIENT_CERT_FILE`), for servers that ask for one
    /// (`tls-auth-clients yes`, Redis's default).
    pub client_cert_file: Option<PathBuf>,
    /// The client certificate's private key (`CRYPT_REDIS_CLIENT_KEY_FILE`).
    pub client_key_file: Option<PathBuf>,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted_url())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

/// How the nodes are arranged, read off the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Topology {
    Single(String),
    Cluster(Vec<String>),
    Sentinel(SentinelUrl),
}

/// A `redis+sentinel://` URL, taken apart.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SentinelUrl {
    /// `redis://host:port` of each Sentinel.
    pub(crate) sentinels: Vec<String>,
    /// The name the Sentinels monitor the master under.
    pub(crate) master: String,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) db: i64,
}

impl std::fmt::Debug for SentinelUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelUrl")
            .field("sentinels", &self.sentinels)
            .field("master", &self.master)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

const SENTINEL_SCHEME: &str = "redis+sentinel://";

/// The query's `pass` (the `redis` crate's name for a Unix socket's password) and `password`
/// values replaced by `***`.
fn redact_query(url: &str) -> String {
    let Some((path, query)) = url.split_once('?') else { return url.to_owned() };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key == "pass" || key == "password" => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    let mut out = format!("{path}?{}", pairs.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

impl RedisConfig {
    /// The URL(s) with every password replaced by `***`, for logs and `Debug`:
    /// `redis://:hunter2@host:6379` becomes `redis://:***@host:6379`, and a Unix socket's
    /// `unix:///run/redis.sock?pass=hunter2` becomes `unix:///run/redis.sock?pass=***`.
    pub fn redacted_url(&self) -> String {
        let redact = |url: &str| -> String {
            let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
            // The authority ends at the first '/', '?' or '#'; credentials end at its last '@'.
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let rest = match rest[..end].rfind('@') {
                None => rest.to_owned(),
                Some(at) => match rest[..at].split_once(':') {
                    Some((user, _password)) => format!("{user}:***@{}", &rest[at + 1..]),
                    // A lone user part is a user name, but some put a token there: hide it too.
                    None => format!("***@{}", &rest[at + 1..]),
                },
            };
            format!("{scheme}://{}", redact_query(&rest))
        };
        self.url.split(',').map(|u| redact(u.trim())).collect::<Vec<_>>().join(",")
    }

    /// True when the URL names several nodes, or uses `redis+cluster://`: the cluster client.
    pub fn is_cluster(&self) -> bool {
        matches!(self.topology(), Ok(Topology::Cluster(_)))
    }

    pub(crate) fn topology(&self) -> Result<Topology, RedisError> {
        let url = self.url.trim();
        if let Some(rest) = url.strip_prefix(SENTINEL_SCHEME) {
            return parse_sentinel(rest).map(Topology::Sentinel);
        }
        if url.contains(',') || url.starts_with("redis+cluster://") {
            let urls = url
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| u.replacen("redis+cluster://", "redis://", 1))
                .collect();
            return Ok(Topology::Cluster(urls));
        }
        // `unix://redis.sock` would read the file name as a host and fail as "Missing path".
        let socket = ["unix://", "redis+unix://", "valkey+unix://"].iter().find_map(|s| url.strip_prefix(s));
        if socket.is_some_and(|path| !path.starts_with('/')) {
            return Err(RedisError::BadUrl(
                "a Unix socket needs its absolute path, three slashes in all: unix:///run/redis/redis-server.sock"
                    .into(),
            ));
        }
        Ok(Topology::Single(url.to_owned()))
    }

    /// The certificates the TLS settings name, read now so a missing or unreadable file stops
    /// start-up instead of failing every connection. `None` when no file is set.
    pub(crate) fn certificates(&self) -> Result<Option<redis::TlsCertificates>, RedisError> {
        let read = |setting: &'static str, path: &PathBuf| {
            std::fs::read(path).map_err(|e| RedisError::Tls { setting, why: format!("{}: {e}", path.display()) })
        };
        // Checked here: a file without a certificate would otherwise trust nothing, and every
        // connection would fail later with a less helpful message.
        let certs = |setting: &'static str, path: &PathBuf| {
            use rustls::pki_types::pem::PemObject;
            let pem = read(setting, path)?;
            let found = rustls::pki_types::CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>();
            match found {
                Ok(found) if !found.is_empty() => Ok(pem),
                _ => Err(RedisError::Tls { setting, why: format!("{}: no PEM certificate in it", path.display()) }),
            }
        };
        let key = |path: &PathBuf| {
            use rustls::pki_types::pem::PemObject;
            let pem = read("CRYPT_REDIS_CLIENT_KEY_FILE", path)?;
            match rustls::pki_types::PrivateKeyDer::from_pem_slice(&pem) {
                Ok(_) => Ok(pem),
                Err(_) => Err(RedisError::Tls {
                    setting: "CRYPT_REDIS_CLIENT_KEY_FILE",
                    why: format!("{}: no PEM private key in it", path.display()),
                }),
            }
        };
        let root_cert = self.tls.ca_file.as_ref().map(|p| certs("CRYPT_REDIS_CA_FILE", p)).transpose()?;
        let client_tls = match (&self.tls.client_cert_file, &self.tls.client_key_file) {
            (None, None) => None,
            (Some(cert), Some(k)) => Some(redis::ClientTlsConfig {
                client_cert: certs("CRYPT_REDIS_CLIENT_CERT_FILE", cert)?,
                client_key: key(k)?,
            }),
            (Some(_), None) | (None, Some(_)) => {
                return Err(RedisError::Tls {
                    setting: "CRYPT_REDIS_CLIENT_CERT_FILE and CRYPT_REDIS_CLIENT_KEY_FILE",
                    why: "set both or neither".into(),
                })
            }
        };
        if root_cert.is_none() && client_tls.is_none() {
            return Ok(None);
        }
        Ok(Some(redis::TlsCertificates { client_tls, root_cert }))
    }
}

/// `[user:password@]host:port[,host:port...]/master[/db]`, after the scheme.
fn parse_sentinel(rest: &str) -> Result<SentinelUrl, RedisError> {
    let bad = |why: &str| {
        RedisError::BadUrl(format!(
            "{why}; a Sentinel URL is redis+sentinel://[:password@]host:port[,host:port...]/master-name[/db]"
        ))
    };
    let (authority, path) = rest.split_once('/').ok_or_else(|| bad("no master name"))?;
    let (credentials, hosts) = match authority.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, authority),
    };
    let (username, password) = match credentials.map(|c| c.split_once(':').unwrap_or(("", c))) {
        Some((user, pass)) => {
            ((!user.is_empty()).then(|| user.to_owned()), (!pass.is_empty()).then(|| pass.to_owned()))
        }
        None => (None, None),
    };
    let sentinels: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| if h.contains(':') { format!("redis://{h}") } else { format!("redis://{h}:26379") })
        .collect();
    if sentinels.is_empty() {
        return Err(bad("no Sentinel address"));
    }
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let master = parts.next().ok_or_else(|| bad("no master name"))?.to_owned();
    let db = match parts.next() {
        Some(db) => db.parse().map_err(|_| bad("the database after the master name is not a number"))?,
        None => 0,
    };
    if parts.next().is_some() {
        return Err(bad("too many parts after the addresses"));
    }
    Ok(SentinelUrl { sentinels, master, username, password, db })
}

/// Why the store could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL is not a Redis URL.
    #[error("CRYPT_REDIS_URL is not a Redis URL: {0}")]
    BadUrl(String),
    /// A certificate file could not be read or used.
    #[error("invalid setting {setting}: {why}")]
    Tls {
        /// The setting(s) at fault.
        setting: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The server is older than 6.2, which has no `GETDEL`.
    #[error("Redis {found} is too old: crypt needs Redis 6.2 or newer (for GETDEL)")]
    TooOld {
        /// The version the server reported.
        found: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            prefix: "crypt:".into(),
            timeout: Duration::from_secs(1),
            tls: RedisTls::default(),
        }
    }

    #[test]
    fn debug_never_shows_a_password() {
        let c = config("redis://:hunter2@a:6379/0, rediss://bob:s3cr%40t@b:1,redis://c:2,redis://tok3n@d:3");
        let shown = format!("{c:?} {c:#?}");
        for secret in ["hunter2", "s3cr", "tok3n"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert_eq!(c.redacted_url(), "redis://:***@a:6379/0,rediss://bob:***@b:1,redis://c:2,redis://***@d:3");
        let u = config("unix:///run/redis/redis.sock?db=2&pass=hunter2&user=crypt");
        assert_eq!(u.redacted_url(), "unix:///run/redis/redis.sock?db=2&pass=***&user=crypt");
        let u = config("redis+unix:///r.sock?password=hunter2#x");
        assert_eq!(u.redacted_url(), "redis+unix:///r.sock?password=***#x");
        assert_eq!(config("unix:///r.sock").redacted_url(), "unix:///r.sock");
        let s = config("redis+sentinel://:hunter2@a:26379,b:26379/mymaster");
        let shown = format!("{s:?} {:?}", s.topology().unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn a_unix_socket_needs_an_absolute_path() {
        assert_eq!(config("unix:///r.sock").topology().unwrap(), Topology::Single("unix:///r.sock".into()));
        assert_eq!(config("redis+unix:///r.sock").topology().unwrap(), Topology::Single("redis+unix:///r.sock".into()));
        for relative in ["unix://r.sock", "redis+unix://run/r.sock"] {
            assert!(matches!(config(relative).topology(), Err(RedisError::BadUrl(_))), "{relative}");
        }
    }

    #[test]
    fn cluster_urls_are_split_and_normalised() {
        let c = config("redis+cluster://a:1");
        assert!(c.is_cluster());
        assert_eq!(c.topology().unwrap(), Topology::Cluster(vec!["redis://a:1".to_owned()]));
        let c = config("redis://a:1, redis://b:2");
        assert_eq!(c.topology().unwrap(), Topology::Cluster(vec!["redis://a:1".to_owned(), "redis://b:2".to_owned()]));
        assert!(!config("redis://a:1").is_cluster());
    }

    #[test]
    fn sentinel_urls_name_the_sentinels_the_master_and_its_credentials() {
        let Topology::Sentinel(s) = config("redis+sentinel://u:pw@a:26379, b ,c:5/mymaster/3").topology().unwrap()
        else {
            panic!("not a Sentinel URL")
        };
        assert_eq!(s.sentinels, ["redis://a:26379", "redis://b:26379", "redis://c:5"]);
        assert_eq!((s.master.as_str(), s.db), ("mymaster", 3));
        assert_eq!((s.username.as_deref(), s.password.as_deref()), (Some("u"), Some("pw")));
        let Topology::Sentinel(s) = config("redis+sentinel://:pw@a:1/m").topology().unwrap() else { panic!() };
        assert_eq!((s.username, s.password.as_deref(), s.db), (None, Some("pw"), 0));
        assert!(!config("redis+sentinel://a:1,b:2/m").is_cluster());
        for bad in ["redis+sentinel://a:1", "redis+sentinel://a:1/", "redis+sentinel:///m", "redis+sentinel://a/m/x"] {
            assert!(matches!(config(bad).topology(), Err(RedisError::BadUrl(_))), "{bad}");
        }
    }

    #[test]
    fn certificate_files_are_read_at_start_and_named_when_missing() {
        let mut c = config("rediss://a:1");
        assert!(c.certificates().unwrap().is_none());
        c.tls.ca_file = Some("/nonexistent/ca.pem".into());
        let e = c.certificates().unwrap_err().to_string();
        assert!(e.starts_with("invalid setting CRYPT_REDIS_CA_FILE: /nonexistent/ca.pem"), "{e}");
        c.tls = RedisTls { client_cert_file: Some("/x".into()), ..RedisTls::default() };
        let e = c.certificates().unwrap_err().to_string();
        assert!(e.contains("set both or neither"), "{e}");
    }
}
