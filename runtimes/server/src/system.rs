//! The operating system's clock and random source, as domain ports.

use crypt_domain::{Clock, IdAlphabet, IdSource, UnixMillis};
use rand::RngCore;

/// Wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        unix_millis()
    }
}

// A request reads the wall clock about three times and the monotonic clock up to six (its
// metrics): read here as the C library's `clock_gettime` answers, which `SystemTime` and
// `Instant` also call, without their checked arithmetic (`sub_timespec` cost about 90
// instructions a reading). Through libc, not rustix's own vDSO reader: that one crashed the
// server under valgrind, which `scripts/bench-instructions` runs it in.

/// Milliseconds since the Unix epoch; 0 for a clock set before it.
#[cfg(unix)]
fn unix_millis() -> UnixMillis {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    let millis = i128::from(ts.tv_sec) * 1_000 + i128::from(ts.tv_nsec) / 1_000_000;
    UnixMillis::try_from(millis.max(0)).unwrap_or(UnixMillis::MAX)
}

#[cfg(not(unix))]
fn unix_millis() -> UnixMillis {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as UnixMillis).unwrap_or(0)
}

/// Nanoseconds on the monotonic clock (its origin is unspecified: only differences mean
/// anything).
#[cfg(unix)]
pub(crate) fn monotonic_nanos() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

#[cfg(not(unix))]
pub(crate) fn monotonic_nanos() -> u64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
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

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn the_clocks_agree_with_the_standard_library() {
        let std_millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        let ours = u128::from(SystemClock.now());
        assert!(ours.abs_diff(std_millis) < 1_000, "{ours} against {std_millis}");
        let (a, started) = (monotonic_nanos(), std::time::Instant::now());
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (ours, std_nanos) = (monotonic_nanos() - a, started.elapsed().as_nanos());
        assert!(ours >= 20_000_000 && u128::from(ours).abs_diff(std_nanos) < 5_000_000, "{ours} against {std_nanos}");
    }
}
