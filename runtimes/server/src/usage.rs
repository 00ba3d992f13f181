//! What `crypt-server --help` prints. Every setting is named here with its default; a test
//! checks the list against the settings themselves, so a new one cannot be left out.

/// The help text: how to run it, its commands and every setting.
pub const HELP: &str = "\
crypt-server: a self-destructing message service (the first read returns a secret and destroys it)

Usage:
  crypt-server               serve until SIGTERM or Ctrl-C (the API on CRYPT_LISTEN)
  crypt-server healthcheck   exit 0 when the server on CRYPT_LISTEN answers /healthz (for images)
  crypt-server backup FILE   SQLite store: copy the live database to FILE (VACUUM INTO), while
                             the server runs; the copy holds every live secret
  crypt-server --help        this text
  crypt-server --version     the version

Settings come from environment variables, over an optional TOML file (crypt.toml in the working
directory, or the file CRYPT_CONFIG names; keys are the names lower-cased without CRYPT_). An
invalid value stops start-up with one line naming it (exit code 2). Defaults in brackets:

  CRYPT_LISTEN                      address to bind; port 0 picks a free one [127.0.0.1:8787]
  CRYPT_STORE                       memory (lost on restart), sqlite (one machine, on disk)
                                    or redis [memory]
  CRYPT_SQLITE_PATH                 sqlite: the database file; its folder must exist [crypt.db]
  CRYPT_SQLITE_MAX_BYTES            sqlite: most the database may hold, then 507; 0: the
                                    disk's room [0]
  CRYPT_REDIS_URL                   a node, several for Cluster, redis+sentinel://, or
                                    unix:///path/to/redis.sock [redis://127.0.0.1:6379]
  CRYPT_REDIS_PREFIX                before every Redis key [crypt:]
  CRYPT_REDIS_CA_FILE               rediss://: a PEM CA to trust [unset]
  CRYPT_REDIS_CLIENT_CERT_FILE      rediss://: a PEM client certificate [unset]
  CRYPT_REDIS_CLIENT_KEY_FILE       rediss://: its PEM key [unset]
  CRYPT_REDIS_TIMEOUT_MS            longest one Redis command may take, then 503 [2000]
  CRYPT_ID_LENGTH                   5 to 64 [5]
  CRYPT_ID_ALPHABET                 a-z0-9 or A-Za-z0-9 [a-z0-9]
  CRYPT_ID_ATTEMPTS                 ids tried before answering 500 [5]
  CRYPT_MAX_MESSAGE_BYTES           larger message: 413 [102400]
  CRYPT_MAX_BODY_BYTES              larger body: 413, reading stops [1048576]
  CRYPT_MAX_FILE_BYTES              larger file (octet-stream create): 413 [10485760]
  CRYPT_MAX_INFLIGHT_BODY_BYTES     what all bodies may hold at once; past it, an
                                    upload waits, then 503 [268435456]
  CRYPT_DEFAULT_TTL_SECS            when a request names no ttl [86400]
  CRYPT_MIN_TTL_SECS                shortest ttl a request may ask [60]
  CRYPT_MAX_TTL_SECS                longest ttl a request may ask [86400]
  CRYPT_MAX_VIEWS                   most views a create may ask, 1 to 10000 [100]
  CRYPT_RATE_LIMIT_MAX              requests per window per client; 0: off [60]
  CRYPT_RATE_LIMIT_WINDOW_SECS      the sliding window [60]
  RATE_LIMIT_PER_SECOND             the reference's setting: N per 1-second window [unset]
  CRYPT_CORS_ORIGINS                * or a comma-separated list of origins [*]
  CRYPT_CREATE_TOKEN_HASHES         SHA-256 hashes (hex) of tokens that may create [unset]
  CRYPT_IPV6_PREFIX                 an IPv6 client counts by its first N bits [64]
  CRYPT_TRUSTED_PROXIES             addresses or CIDRs whose X-Forwarded-For is believed [none]
  CRYPT_MEMORY_CAPACITY_BYTES       memory store: beyond it, 507 [268435456]
  CRYPT_MAX_CONNECTIONS             connections open at once [16384]
  CRYPT_MAX_CONNECTIONS_PER_CLIENT  connections one client may hold; 0: no cap [256]
  CRYPT_HEADER_TIMEOUT_MS           to deliver a request's headers [10000]
  CRYPT_BODY_TIMEOUT_MS             to deliver a request's body, else 408 [30000]
  CRYPT_SHUTDOWN_GRACE_MS           in-flight requests' time on SIGTERM [10000]
  CRYPT_METRICS_LISTEN              serve /metrics only on this address [unset: the API's]
  CRYPT_EDGE_STORE                  the Cloudflare Worker's store: kv or durable-object [kv]
  CRYPT_CONFIG                      the TOML file to read (it must exist) [crypt.toml if present]
  CRYPT_LOG                         log filter; debug adds a line per request [info]
  CRYPT_LOG_FORMAT                  text or json [text]

Each in full: the Settings section of the project's README.md.
";

#[cfg(test)]
mod tests {
    use super::HELP;

    #[test]
    fn every_setting_is_in_the_help() {
        let listed: Vec<&str> = HELP.lines().filter_map(|l| l.split_whitespace().next()).collect();
        for name in crate::Settings::names().iter().chain(&["CRYPT_CONFIG", "CRYPT_LOG", "CRYPT_LOG_FORMAT"]) {
            assert!(listed.contains(name), "{name} is not in crypt-server --help");
        }
    }

    /// The settings block: each entry's name and its text, continuation lines joined.
    fn entries() -> Vec<(&'static str, String)> {
        let mut entries: Vec<(&str, String)> = Vec::new();
        for line in HELP.lines().skip_while(|l| !l.starts_with("  CRYPT_LISTEN")) {
            if line.starts_with("  ") && !line.starts_with("   ") {
                let (name, text) = line.trim_start().split_once(' ').unwrap_or((line.trim(), ""));
                entries.push((name, text.trim().to_owned()));
            } else if line.starts_with("   ") {
                let last = entries.last_mut().expect("a continuation follows an entry");
                last.1 = format!("{} {}", last.1, line.trim());
            }
        }
        entries
    }

    /// A default given as a value reads back as the setting's default.
    #[test]
    fn the_defaults_shown_are_the_defaults() {
        let default = format!("{:?}", crate::Settings::default());
        let mut checked = 0;
        for (name, text) in entries() {
            let shown = &text[text.rfind('[').expect("a default in brackets") + 1..text.len() - 1];
            // Unset, or a default that is the absence of a value (the rate limit's 60 per 60 s
            // is the policy's when neither is set).
            let literal = !(shown.starts_with("unset") || shown.starts_with("none") || shown.contains(' '));
            if !literal || name.starts_with("CRYPT_RATE_LIMIT") || !crate::Settings::names().contains(&name) {
                continue;
            }
            let read = crate::Settings::from_vars([(name, shown)]).unwrap_or_else(|e| panic!("{name}={shown}: {e}"));
            assert_eq!(format!("{read:?}"), default, "{name}: [{shown}] is not its default");
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} defaults checked");
    }

    #[test]
    fn the_help_fits_a_terminal() {
        for line in HELP.lines() {
            assert!(line.chars().count() <= 100, "too wide for a terminal: {line:?}");
        }
    }
}
