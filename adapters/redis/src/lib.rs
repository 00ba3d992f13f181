//! # crypt-redis: the self-hosted production store
//!
//! A driven adapter: [`RedisStore`] implements both `MessageStore` and `RateLimiter` on one
//! multiplexed, automatically reconnecting connection per process (a redis-rs
//! `ConnectionManager`, or a cluster connection), so every `crypt-server` behind a load
//! balancer shares one store and one rate limit.
//!
//! - **create** is one `SET key value NX PX ttl`: the `NX` answer is how a taken id is found,
//!   so two creates can never both own an id;
//! - **burn** is one `GETDEL` (Redis 6.2+), so two readers can never both get a message, across
//!   any number of processes;
//! - the stored value carries the expiry instant ([`crypt_domain::StoredMessage::encode`]), so
//!   the domain's expiry rule holds even where Redis's own expiry lags;
//! - the rate limit is the domain's sliding window run server-side as a Lua script over a short
//!   string per client, its key passed in `KEYS` so it runs on Cluster; on one node a create or
//!   a read runs in the same script as its count (`CountingStore`), one round trip.
//!
//! Every command is bounded by a timeout; a store that does not answer in time is reported as
//! unavailable (503), never waited on. This crate depends on the domain, redis and tokio; never
//! on HTTP.

mod config;
mod store;

pub use config::{RedisConfig, RedisError, RedisTls};
pub use store::RedisStore;
