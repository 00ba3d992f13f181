//! # crypt-memory: the in-memory store and per-process rate limiter
//!
//! A driven adapter: [`MemoryStore`] implements `MessageStore` and [`MemoryLimiter`] implements
//! `RateLimiter`, both inside one process. It is the default store, so `cargo run` serves with
//! nothing else installed, and what developers embed in their own integration tests.
//!
//! Both are sharded maps behind short, synchronous locks that are never held across an await,
//! so a `take` is atomic (two concurrent takes cannot both win) and the crate needs no async
//! runtime: it depends on the domain only (not on tokio), which also lets the Worker reuse the
//! limiter. Expired entries are removed by [`MemoryStore::sweep`] and [`MemoryLimiter::sweep`],
//! which the runtime calls on a timer.

mod limiter;
mod store;

pub use limiter::MemoryLimiter;
pub use store::MemoryStore;

/// Number of independently locked shards. A power of two well above the core count keeps lock
/// contention negligible without making a sweep walk many tiny maps.
const SHARDS: usize = 32;

/// A value on a cache line of its own: the limiter's shards. Both server threads take shard
/// locks all the time; two shards on one line make each thread's lock take the line from the
/// other's core. (The store's 32 shards measured no different padded, so they are not.)
#[derive(Debug, Default)]
#[repr(align(64))]
struct CachePadded<T>(T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Picks a shard from a key's bytes (FNV-1a). Ids are random already; client keys are not.
fn shard_of(key: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for &b in key {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h as usize % SHARDS
}
