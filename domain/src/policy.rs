//! The limits an operator sets.

use crate::{IdAlphabet, MessageId};
use std::num::{NonZeroU32, NonZeroU64};

/// The limits as an operator writes them, before they are checked against each other. Its
/// [`Default`] is the reference contract, and the one place each limit's default is written;
/// [`Policy::new`] turns it into a [`Policy`] or says which setting is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, in bytes of UTF-8 (`CRYPT_MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
    /// Largest file, in bytes (`CRYPT_MAX_FILE_BYTES`, SPEC Part 2 item 11).
    pub max_file_bytes: usize,
    /// Time to live when a request names none (`CRYPT_DEFAULT_TTL_SECS`).
    pub default_ttl_secs: u64,
    /// Smallest `ttl` a request may ask for (`CRYPT_MIN_TTL_SECS`).
    pub min_ttl_secs: u64,
    /// Largest `ttl` a request may ask for (`CRYPT_MAX_TTL_SECS`).
    pub max_ttl_secs: u64,
    /// Length of generated ids (`CRYPT_ID_LENGTH`).
    pub id_length: usize,
    /// The symbols of generated ids (`CRYPT_ID_ALPHABET`).
    pub id_alphabet: IdAlphabet,
    /// Ids tried before giving up (`CRYPT_ID_ATTEMPTS`).
    pub id_attempts: u32,
    /// Requests allowed per window per client (`CRYPT_RATE_LIMIT_MAX`); 0 turns limiting off.
    pub rate_limit_max: u32,
    /// The sliding window in seconds (`CRYPT_RATE_LIMIT_WINDOW_SECS`).
    pub rate_limit_window_secs: u64,
    /// The most views a create may ask for (`CRYPT_MAX_VIEWS`).
    pub max_views: u32,
}

impl Default for Limits {
    /// The reference contract's limits: 100 KiB messages, 24 h default and ceiling, 1 minute
    /// floor, 5-character ids from `[a-z0-9]` with 5 attempts, 60 requests per 60 seconds;
    /// and up to 100 views a message.
    fn default() -> Self {
        Self {
            max_message_bytes: 102_400,
            max_file_bytes: 10_485_760,
            default_ttl_secs: 86_400,
            min_ttl_secs: 60,
            max_ttl_secs: 86_400,
            id_length: 5,
            id_alphabet: IdAlphabet::Lowercase,
            id_attempts: 5,
            rate_limit_max: 60,
            rate_limit_window_secs: 60,
            max_views: 100,
        }
    }
}

/// Every limit of the service, checked against the others. It can only be built by
/// [`Policy::new`], so a `Policy` in hand is always valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The limits as given, once checked.
    limits: Limits,
    /// `None` when `limits.rate_limit_max` is 0.
    rate_limit: Option<RateLimit>,
}

/// A sliding-window rate limit: at most `max` requests in any `window` seconds. Both are at
/// least 1; "no limit" is the absence of a `RateLimit` ([`Policy::rate_limit`] is `None`), so no
/// limiter ever has to ask whether limiting is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    max: NonZeroU32,
    window_secs: NonZeroU64,
}

impl RateLimit {
    /// `max` requests per `window_secs` seconds.
    pub const fn new(max: NonZeroU32, window_secs: NonZeroU64) -> Self {
        Self { max, window_secs }
    }

    /// `max` requests per `window_secs` seconds; `None` when either is 0.
    pub const fn of(max: u32, window_secs: u64) -> Option<Self> {
        match (NonZeroU32::new(max), NonZeroU64::new(window_secs)) {
            (Some(max), Some(window_secs)) => Some(Self::new(max, window_secs)),
            _ => None,
        }
    }

    /// Requests allowed per window.
    pub fn max(&self) -> u32 {
        self.max.get()
    }

    /// The window in seconds.
    pub fn window_secs(&self) -> u64 {
        self.window_secs.get()
    }

    /// The window in milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.window_secs.get().saturating_mul(1000)
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
    /// [`Limits::default`], the reference contract.
    fn default() -> Self {
        Self::new(Limits::default()).expect("the default limits are valid")
    }
}

impl Policy {
    /// The highest `CRYPT_MAX_VIEWS` allowed: each view spent leaves its instant in the
    /// receipt, so a receipt stays small (8 bytes a view).
    pub const MAX_VIEWS_CEILING: u32 = 10_000;

    /// Checks that the limits fit together and builds the policy.
    ///
    /// # Errors
    /// The first [`PolicyError`] found, naming its setting.
    pub fn new(l: Limits) -> Result<Self, PolicyError> {
        let fail = |setting, why: String| Err(PolicyError { setting, why });
        if !(MessageId::MIN_LEN..=MessageId::MAX_LEN).contains(&l.id_length) {
            return fail(
                "CRYPT_ID_LENGTH",
                format!("must be from {} to {}, not {}", MessageId::MIN_LEN, MessageId::MAX_LEN, l.id_length),
            );
        }
        if l.id_attempts == 0 {
            return fail("CRYPT_ID_ATTEMPTS", "must be at least 1".into());
        }
        if l.max_message_bytes == 0 {
            return fail("CRYPT_MAX_MESSAGE_BYTES", "must be at least 1".into());
        }
        if l.max_file_bytes == 0 {
            return fail("CRYPT_MAX_FILE_BYTES", "must be at least 1".into());
        }
        if !(1..=Self::MAX_VIEWS_CEILING).contains(&l.max_views) {
            return fail(
                "CRYPT_MAX_VIEWS",
                format!("must be from 1 to {}, not {}", Self::MAX_VIEWS_CEILING, l.max_views),
            );
        }
        if l.min_ttl_secs == 0 {
            return fail("CRYPT_MIN_TTL_SECS", "must be at least 1".into());
        }
        if l.max_ttl_secs < l.min_ttl_secs {
            return fail(
                "CRYPT_MAX_TTL_SECS",
                format!("({}) is below CRYPT_MIN_TTL_SECS ({})", l.max_ttl_secs, l.min_ttl_secs),
            );
        }
        if !(l.min_ttl_secs..=l.max_ttl_secs).contains(&l.default_ttl_secs) {
            return fail(
                "CRYPT_DEFAULT_TTL_SECS",
                format!(
                    "({}) must lie between CRYPT_MIN_TTL_SECS ({}) and CRYPT_MAX_TTL_SECS ({})",
                    l.default_ttl_secs, l.min_ttl_secs, l.max_ttl_secs
                ),
            );
        }
        let rate_limit = match NonZeroU32::new(l.rate_limit_max) {
            None => None,
            Some(max) => match NonZeroU64::new(l.rate_limit_window_secs) {
                Some(window) => Some(RateLimit::new(max, window)),
                None => {
                    return fail(
                        "CRYPT_RATE_LIMIT_WINDOW_SECS",
                        "must be at least 1 while CRYPT_RATE_LIMIT_MAX is above 0".into(),
                    )
                }
            },
        };
        Ok(Self { limits: l, rate_limit })
    }

    /// The limits this policy was built from, to change one and build again.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Largest message, in bytes of UTF-8.
    pub fn max_message_bytes(&self) -> usize {
        self.limits.max_message_bytes
    }

    /// Largest file, in bytes (SPEC Part 2 item 11).
    pub fn max_file_bytes(&self) -> usize {
        self.limits.max_file_bytes
    }

    /// Time to live when a request names none, in seconds.
    pub fn default_ttl_secs(&self) -> u64 {
        self.limits.default_ttl_secs
    }

    /// Smallest `ttl` a request may ask for, in seconds.
    pub fn min_ttl_secs(&self) -> u64 {
        self.limits.min_ttl_secs
    }

    /// Largest `ttl` a request may ask for, in seconds.
    pub fn max_ttl_secs(&self) -> u64 {
        self.limits.max_ttl_secs
    }

    /// Length of generated ids.
    pub fn id_length(&self) -> usize {
        self.limits.id_length
    }

    /// The symbols of generated ids.
    pub fn id_alphabet(&self) -> IdAlphabet {
        self.limits.id_alphabet
    }

    /// Ids tried before giving up.
    pub fn id_attempts(&self) -> u32 {
        self.limits.id_attempts
    }

    /// The most views a create may ask for.
    pub fn max_views(&self) -> u32 {
        self.limits.max_views
    }

    /// The rate limit per client; `None` when limiting is off.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_reference_contract() {
        let p = Policy::default();
        assert_eq!(p.max_message_bytes(), 102_400);
        assert_eq!(p.id_length(), 5);
        assert_eq!(p.id_alphabet(), IdAlphabet::Lowercase);
        assert_eq!(p.rate_limit(), RateLimit::of(60, 60));
        assert_eq!(p.limits(), &Limits::default());
    }

    #[test]
    fn zero_max_turns_limiting_off_whatever_the_window() {
        let p = Policy::new(Limits { rate_limit_max: 0, rate_limit_window_secs: 0, ..Limits::default() }).unwrap();
        assert_eq!(p.rate_limit(), None);
        assert_eq!(Policy::new(p.limits().clone()).unwrap(), p);
    }

    #[test]
    fn each_bad_limit_names_its_setting() {
        type Breaker = fn(&mut Limits);
        let cases: [(Breaker, &str); 11] = [
            (|l| l.max_views = 0, "CRYPT_MAX_VIEWS"),
            (|l| l.max_views = 10_001, "CRYPT_MAX_VIEWS"),
            (|l| l.id_length = 4, "CRYPT_ID_LENGTH"),
            (|l| l.id_length = 65, "CRYPT_ID_LENGTH"),
            (|l| l.id_attempts = 0, "CRYPT_ID_ATTEMPTS"),
            (|l| l.max_message_bytes = 0, "CRYPT_MAX_MESSAGE_BYTES"),
            (|l| l.max_file_bytes = 0, "CRYPT_MAX_FILE_BYTES"),
            (|l| l.min_ttl_secs = 0, "CRYPT_MIN_TTL_SECS"),
            (|l| l.max_ttl_secs = 30, "CRYPT_MAX_TTL_SECS"),
            (|l| l.default_ttl_secs = 10, "CRYPT_DEFAULT_TTL_SECS"),
            (|l| l.rate_limit_window_secs = 0, "CRYPT_RATE_LIMIT_WINDOW_SECS"),
        ];
        for (break_it, setting) in cases {
            let mut l = Limits::default();
            break_it(&mut l);
            assert_eq!(Policy::new(l).unwrap_err().setting, setting);
        }
    }
}
