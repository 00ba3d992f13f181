//! The limits an operator sets.

use crate::MessageId;

/// Every limit of the service. Runtimes build it from their settings and call
/// [`Policy::validate`]; the domain never reads the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Largest message, in bytes of UTF-8 (`CRYPT_MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
    /// Time to live when a request names none (`CRYPT_DEFAULT_TTL_SECS`).
    pub default_ttl_secs: u64,
    /// Smallest `ttl` a request may ask for (`CRYPT_MIN_TTL_SECS`).
    pub min_ttl_secs: u64,
    /// Largest `ttl` a request may ask for (`CRYPT_MAX_TTL_SECS`).
    pub max_ttl_secs: u64,
    /// Length of generated ids (`CRYPT_ID_LENGTH`).
    pub id_length: usize,
    /// Ids tried before giving up (`CRYPT_ID_ATTEMPTS`).
    pub id_attempts: u32,
    /// The sliding-window rate limit per client.
    pub rate_limit: RateLimit,
}

/// A sliding-window rate limit: at most `max` requests in any `window_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window (`CRYPT_RATE_LIMIT_MAX`); 0 turns limiting off.
    pub max: u32,
    /// Length of the window in seconds (`CRYPT_RATE_LIMIT_WINDOW_SECS`).
    pub window_secs: u64,
}

impl RateLimit {
    /// True when limiting is turned off.
    pub fn is_off(&self) -> bool {
        self.max == 0
    }

    /// The window in milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.window_secs.saturating_mul(1000)
    }
}

/// A limit that makes no sense, naming the setting it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {why}")]
pub struct PolicyError {
    /// The setting's name, as an operator writes it (e.g. `CRYPT_ID_LENGTH`).
    pub setting: &'static str,
    /// What is wrong with it.
    pub why: String,
}

impl Default for Policy {
    /// The reference contract's limits: 100 KiB messages, 24 h default and ceiling, 1 minute
    /// floor, 5-character ids with 5 attempts, 60 requests per 60 seconds.
    fn default() -> Self {
        Self {
            max_message_bytes: 102_400,
            default_ttl_secs: 86_400,
            min_ttl_secs: 60,
            max_ttl_secs: 86_400,
            id_length: 5,
            id_attempts: 5,
            rate_limit: RateLimit { max: 60, window_secs: 60 },
        }
    }
}

impl Policy {
    /// Builds a policy from settings by their names (`CRYPT_ID_LENGTH`, ...), as every runtime
    /// reads them (the server from its environment and file, the Worker from `[vars]`), so the
    /// names, defaults and checks are written once. `get` answers `None` for a setting that is
    /// not set; the default then applies. The result is validated.
    ///
    /// # Errors
    /// The first setting that is not a number of the right kind, or does not fit the others.
    pub fn from_settings(get: impl Fn(&'static str) -> Option<String>) -> Result<Self, PolicyError> {
        fn num<T: std::str::FromStr>(
            get: &impl Fn(&'static str) -> Option<String>,
            setting: &'static str,
            default: T,
        ) -> Result<T, PolicyError>
        where
            T::Err: std::fmt::Display,
        {
            match get(setting) {
                None => Ok(default),
                Some(raw) => raw.trim().parse().map_err(|e| PolicyError { setting, why: format!("'{raw}': {e}") }),
            }
        }
        let d = Policy::default();
        let policy = Policy {
            max_message_bytes: num(&get, "CRYPT_MAX_MESSAGE_BYTES", d.max_message_bytes)?,
            default_ttl_secs: num(&get, "CRYPT_DEFAULT_TTL_SECS", d.default_ttl_secs)?,
            min_ttl_secs: num(&get, "CRYPT_MIN_TTL_SECS", d.min_ttl_secs)?,
            max_ttl_secs: num(&get, "CRYPT_MAX_TTL_SECS", d.max_ttl_secs)?,
            id_length: num(&get, "CRYPT_ID_LENGTH", d.id_length)?,
            id_attempts: num(&get, "CRYPT_ID_ATTEMPTS", d.id_attempts)?,
            rate_limit: RateLimit {
                max: num(&get, "CRYPT_RATE_LIMIT_MAX", d.rate_limit.max)?,
                window_secs: num(&get, "CRYPT_RATE_LIMIT_WINDOW_SECS", d.rate_limit.window_secs)?,
            },
        };
        policy.validate()?;
        Ok(policy)
    }

    /// Checks that the limits fit together.
    ///
    /// # Errors
    /// The first [`PolicyError`] found, naming its setting.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let fail = |setting, why: String| Err(PolicyError { setting, why });
        if !(MessageId::MIN_LEN..=MessageId::MAX_LEN).contains(&self.id_length) {
            return fail(
                "CRYPT_ID_LENGTH",
                format!("must be from {} to {}, not {}", MessageId::MIN_LEN, MessageId::MAX_LEN, self.id_length),
            );
        }
        if self.id_attempts == 0 {
            return fail("CRYPT_ID_ATTEMPTS", "must be at least 1".into());
        }
        if self.max_message_bytes == 0 {
            return fail("CRYPT_MAX_MESSAGE_BYTES", "must be at least 1".into());
        }
        if self.min_ttl_secs == 0 {
            return fail("CRYPT_MIN_TTL_SECS", "must be at least 1".into());
        }
        if self.max_ttl_secs < self.min_ttl_secs {
            return fail(
                "CRYPT_MAX_TTL_SECS",
                format!("({}) is below CRYPT_MIN_TTL_SECS ({})", self.max_ttl_secs, self.min_ttl_secs),
            );
        }
        if !(self.min_ttl_secs..=self.max_ttl_secs).contains(&self.default_ttl_secs) {
            return fail(
                "CRYPT_DEFAULT_TTL_SECS",
                format!(
                    "({}) must lie between CRYPT_MIN_TTL_SECS ({}) and CRYPT_MAX_TTL_SECS ({})",
                    self.default_ttl_secs, self.min_ttl_secs, self.max_ttl_secs
                ),
            );
        }
        if !self.rate_limit.is_off() && self.rate_limit.window_secs == 0 {
            return fail(
                "CRYPT_RATE_LIMIT_WINDOW_SECS",
                "must be at least 1 while CRYPT_RATE_LIMIT_MAX is above 0".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_reference_contract_and_valid() {
        let p = Policy::default();
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.max_message_bytes, 102_400);
        assert_eq!(p.id_length, 5);
    }

    #[test]
    fn from_settings_reads_names_and_applies_defaults() {
        let p = Policy::from_settings(|name| (name == "CRYPT_ID_LENGTH").then(|| " 9 ".to_string())).unwrap();
        assert_eq!(p, Policy { id_length: 9, ..Policy::default() });
        let e = Policy::from_settings(|name| (name == "CRYPT_RATE_LIMIT_MAX").then(|| "lots".to_string())).unwrap_err();
        assert_eq!(e.setting, "CRYPT_RATE_LIMIT_MAX");
        let e = Policy::from_settings(|name| (name == "CRYPT_MIN_TTL_SECS").then(|| "-1".to_string())).unwrap_err();
        assert_eq!(e.setting, "CRYPT_MIN_TTL_SECS");
    }

    #[test]
    fn each_bad_limit_names_its_setting() {
        type Breaker = fn(&mut Policy);
        let cases: [(Breaker, &str); 7] = [
            (|p| p.id_length = 4, "CRYPT_ID_LENGTH"),
            (|p| p.id_length = 65, "CRYPT_ID_LENGTH"),
            (|p| p.id_attempts = 0, "CRYPT_ID_ATTEMPTS"),
            (|p| p.max_message_bytes = 0, "CRYPT_MAX_MESSAGE_BYTES"),
            (|p| p.max_ttl_secs = 30, "CRYPT_MAX_TTL_SECS"),
            (|p| p.default_ttl_secs = 10, "CRYPT_DEFAULT_TTL_SECS"),
            (|p| p.rate_limit.window_secs = 0, "CRYPT_RATE_LIMIT_WINDOW_SECS"),
        ];
        for (break_it, setting) in cases {
            let mut p = Policy::default();
            break_it(&mut p);
            assert_eq!(p.validate().unwrap_err().setting, setting);
        }
    }
}
