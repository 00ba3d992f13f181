use crate::CachePadded;
use async_trait::async_trait;
use crypt_domain::{RateDecision, RateLimit, RateLimiter, StoreError, UnixMillis, WindowLog};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The domain's sliding window, per client, in this process only.
///
/// Several processes each keep their own count, so behind a load balancer a client gets the
/// budget once per process; use the Redis limiter for one global limit.
///
/// Its memory follows the clients seen within the last window ([`MemoryLimiter::sweep`] drops
/// the rest), and can be capped ([`MemoryLimiter::bounded`]): a new client past the cap is let
/// through uncounted rather than refused, so a flood of addresses cannot lock out everyone
/// else, nor grow the map without bound.
///
/// A client is known by a 64-bit hash of its key, keyed at random per process (so no one can
/// aim two keys at one slot): no string is stored, and two of a million clients share a log
/// with odds of about 1 in 3 × 10^7. Most clients have one request in a window, so a client
/// with one is kept as that instant alone (16 bytes in its map), and only a client with more
/// gets a whole [`WindowLog`]; both go through the domain's rule, unchanged. Each shard keeps
/// its allowed hits in time order, so a sweep looks only at the hits that have left the window,
/// never at every client.
#[derive(Debug)]
pub struct MemoryLimiter {
    /// One lock per shard, held only while one client's log is updated (or its expired hits
    /// are swept).
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    /// Clients with a log, across shards: kept only when the limiter is bounded. An atomic
    /// that both server threads change for every new client moves its cache line from core to
    /// core each time; unbounded, each shard's own count is enough.
    tracked: AtomicUsize,
    /// The most clients tracked at once (`usize::MAX`: unbounded).
    max_clients: usize,
    hasher: std::collections::hash_map::RandomState,
}

/// More shards than the store: a shard's map grows by doubling, which moves every entry while
/// its lock is held, so smaller maps keep that pause short when many new clients arrive.
const SHARDS: usize = 256;

#[derive(Debug, Default)]
struct Shard {
    /// Clients with one allowed request in the window, and its instant.
    single: HashMap<u64, UnixMillis, BuildHasherDefault<AlreadyHashed>>,
    /// Clients with more (or that had more, until a sweep finds them idle).
    logs: HashMap<u64, WindowLog, BuildHasherDefault<AlreadyHashed>>,
    /// `(instant, client)` of every allowed hit, oldest first.
    hits: VecDeque<(UnixMillis, u64)>,
}

/// The map's keys are hashes already: use them as they are.
#[derive(Debug, Default)]
struct AlreadyHashed(u64);

impl Hasher for AlreadyHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in rather than lose it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self::bounded(usize::MAX)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryLimiter {
    /// A limiter that tracks at most `max_clients` clients at once.
    pub fn bounded(max_clients: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| CachePadded::default()).collect(),
            tracked: AtomicUsize::new(0),
            max_clients,
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Drops the logs of clients with no request left in the window, so memory follows the
    /// number of active clients; returns how many were dropped. Its work is the hits that
    /// left the window since the last sweep, not the clients held.
    pub fn sweep(&self, now: UnixMillis, limit: RateLimit) -> usize {
        let mut dropped = 0;
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let Shard { single, logs, hits } = &mut *shard;
            while let Some(&(at, client)) = hits.front() {
                if at.saturating_add(limit.window_ms()) > now {
                    break;
                }
                hits.pop_front();
                if let Some(&only) = single.get(&client) {
                    if WindowLog::one(only).is_idle(now, limit) {
                        single.remove(&client);
                        dropped += 1;
                    }
                } else if logs.get(&client).is_some_and(|log| log.is_idle(now, limit)) {
                    logs.remove(&client);
                    dropped += 1;
                }
            }
            // Memory follows the clients: what a burst of them grew is given back once they
            // have gone (the maps do not shrink by themselves).
            if hits.capacity() > 64 && hits.len() < hits.capacity() / 4 {
                hits.shrink_to(hits.len() * 2);
            }
            if single.capacity() > 64 && single.len() < single.capacity() / 4 {
                single.shrink_to(single.len() * 2);
            }
            if logs.capacity() > 64 && logs.len() < logs.capacity() / 4 {
                logs.shrink_to(logs.len() * 2);
            }
        }
        if self.is_bounded() {
            self.tracked.fetch_sub(dropped, Ordering::Relaxed);
        }
        dropped
    }

    fn is_bounded(&self) -> bool {
        self.max_clients != usize::MAX
    }

    /// Clients with a log. Takes each shard's lock in turn: for reports and tests, not for the
    /// request path.
    pub fn clients(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = lock(shard);
                shard.single.len() + shard.logs.len()
            })
            .sum()
    }

    /// The decision without the async wrapper, for callers with no executor at hand.
    pub fn hit_now(&self, client: &str, now: UnixMillis, limit: RateLimit) -> RateDecision {
        let key = self.hasher.hash_one(client);
        let mut shard = lock(&self.shards[(key >> 56) as usize % SHARDS]);
        let Shard { single, logs, hits } = &mut *shard;
        let decision = if let Some(only) = single.get_mut(&key) {
            let mut log = WindowLog::one(*only);
            let decision = log.hit(now, limit);
            match log.only() {
                Some(at) => *only = at,
                None => {
                    single.remove(&key);
                    logs.insert(key, log);
                }
            }
            decision
        } else if let Some(log) = logs.get_mut(&key) {
            log.hit(now, limit)
        } else if self.is_bounded() && self.tracked.fetch_add(1, Ordering::Relaxed) >= self.max_clients {
            // Past the cap: let it through uncounted (see the type's docs).
            self.tracked.fetch_sub(1, Ordering::Relaxed);
            return RateDecision::Allowed;
        } else {
            let mut log = WindowLog::default();
            let decision = log.hit(now, limit);
            match log.only() {
                Some(at) => {
                    single.insert(key, at);
                }
                None => {
                    logs.insert(key, log);
                }
            }
            decision
        };
        if decision == RateDecision::Allowed {
            hits.push_back((now, key));
        }
        decision
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl RateLimiter for MemoryLimiter {
    async fn hit(&self, client: &str, now: UnixMillis, limit: RateLimit) -> Result<RateDecision, StoreError> {
        Ok(self.hit_now(client, now, limit))
    }

    fn hit_at_once(&self, client: &str, now: UnixMillis, limit: RateLimit) -> Option<Result<RateDecision, StoreError>> {
        Some(Ok(self.hit_now(client, now, limit)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fresh() -> Box<MemoryLimiter> {
        Box::default()
    }

    crypt_domain::limiter_contract!(fresh(), 1_700_000_000_000);

    #[test]
    fn sweep_forgets_idle_clients() {
        let l = MemoryLimiter::default();
        let limit = RateLimit::of(5, 10).unwrap();
        l.hit_now("a", 0, limit);
        l.hit_now("b", 5_000, limit);
        assert_eq!(l.sweep(10_000, limit), 1);
        assert_eq!(l.clients(), 1);
    }

    #[test]
    fn a_bounded_limiter_tracks_no_more_clients_than_its_cap() {
        let l = MemoryLimiter::bounded(100);
        let limit = RateLimit::of(1, 10).unwrap();
        for i in 0..1000 {
            l.hit_now(&format!("client-{i}"), 0, limit);
        }
        assert_eq!(l.clients(), 100);
        // A tracked client is still limited; an untracked one past the cap is let through.
        assert!(matches!(l.hit_now("client-0", 1, limit), RateDecision::Limited { .. }));
        assert_eq!(l.hit_now("client-999", 1, limit), RateDecision::Allowed);
        assert_eq!(l.hit_now("client-999", 2, limit), RateDecision::Allowed);
        // Once the window has passed, a sweep makes room again.
        assert_eq!(l.sweep(10_000, limit), 100);
        assert_eq!(l.clients(), 0);
        l.hit_now("late", 10_000, limit);
        assert!(matches!(l.hit_now("late", 10_001, limit), RateDecision::Limited { .. }));
    }

    #[test]
    fn many_threads_at_once_never_take_a_bounded_limiter_past_its_cap() {
        let l = std::sync::Arc::new(MemoryLimiter::bounded(100));
        let limit = RateLimit::of(1, 10).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let l = l.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        l.hit_now(&format!("client-{t}-{i}"), 0, limit);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(l.clients(), 100);
        assert_eq!(l.sweep(10_000, limit), 100);
        assert_eq!(l.clients(), 0);
    }

    /// Clients kept as one instant, moved to a whole log and swept, decide exactly as a plain
    /// log per client would, on a pseudo-random stream over a few clients and budgets on both
    /// sides of one; a sweep keeps exactly the clients with a request still in the window.
    #[test]
    fn agrees_with_a_plain_log_per_client() {
        for max in 1..=4 {
            let limit = RateLimit::of(max, 1).unwrap();
            let l = MemoryLimiter::default();
            let mut plain: HashMap<String, WindowLog> = HashMap::new();
            let (mut now, mut seed) = (1_000u64, 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(max));
            for step in 0..20_000 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                now += seed % 150;
                let client = format!("c{}", (seed >> 32) % 7);
                let expected = plain.entry(client.clone()).or_default().hit(now, limit);
                assert_eq!(l.hit_now(&client, now, limit), expected, "max {max}, step {step}, {client} at {now}");
                if step % 97 == 0 {
                    l.sweep(now, limit);
                    plain.retain(|_, log| !log.is_idle(now, limit));
                    assert_eq!(l.clients(), plain.len(), "max {max}, step {step}");
                }
            }
        }
    }
}
