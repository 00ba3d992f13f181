//! # crypt-domain: the centre of the hexagon
//!
//! The rules of a self-destructing message service, and nothing else: validated values
//! ([`Message`], [`MessageId`], [`Ttl`]), the limits an operator sets ([`Policy`]), the ports the
//! rules need from the outside world ([`MessageStore`], [`RateLimiter`], [`Clock`], [`IdSource`]),
//! and the use cases over them ([`Vault`]).
//!
//! The key design decision: **the expiry instant travels with the message**, and the [`Vault`]
//! compares it with the [`Clock`] when a message is taken. A store's own time to live (Redis
//! `EX`, KV `expiration_ttl`, the memory sweeper) only collects garbage; it is never the rule.
//! So a lagging backend can never hand out an expired secret.
//!
//! This crate must never depend on an async runtime, an HTTP stack or a store client (tokio,
//! hyper, redis, worker): it builds for `wasm32-unknown-unknown` and native targets alike, and
//! never reads the environment, the system clock or the OS random source.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ids;
mod message;
mod policy;
mod ports;
mod rate;
mod receipt;
mod vault;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use bytes::Bytes;
pub use ids::{is_reserved, IdAlphabet, RESERVED_NAMES};
pub use message::{Content, DecodeError, Message, MessageError, MessageId, StoredMessage, Ttl, TtlError};
pub use policy::{Limits, Policy, PolicyError, RateLimit};
pub use ports::{
    Clock, Counted, CountingStore, IdSource, Inserted, MaybeSendSync, MessageStore, RateDecision, RateLimiter,
    StoreError,
};
pub use rate::WindowLog;
pub use receipt::{DeleteOutcome, Deletion, Receipt, ReceiptDigest, ReceiptState, Record, Viewed};
pub use vault::{AdmitError, CreateError, Created, Draft, OpenError, Vault};

/// Milliseconds since the Unix epoch, UTC. The one unit of time the domain speaks.
pub type UnixMillis = u64;
