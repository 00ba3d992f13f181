//! The operating system's clock and random source, as domain ports.

use crypt_domain::{Clock, IdAlphabet, IdSource, UnixMillis};
use rand::RngCore;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as UnixMillis).unwrap_or(0)
    }
}

/// Ids from the thread-local CSPRNG (ChaCha12, seeded and periodically reseeded from the OS).
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn next_id(&self, len: usize, alphabet: IdAlphabet) -> String {
        let mut rng = rand::rng();
        alphabet.random_id(len, |buf| rng.fill_bytes(buf))
    }
}
