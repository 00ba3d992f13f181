//! # crypt-kv: messages in Cloudflare Workers KV
//!
//! A driven adapter: [`KvMessageStore`] implements `MessageStore` on the KV namespace bound as
//! `MESSAGES`. It compiles only for `wasm32` (on other targets the crate is empty), and depends
//! on the domain and `worker` alone.
//!
//! ## What KV cannot promise
//! Workers KV is **eventually consistent** and has no atomic read-and-delete:
//! - a burn is a `get` then a `delete`; two readers at the same moment can both get the message;
//! - a delete (or a write) reaches other Cloudflare locations only after a while: a message read
//!   at one location can stay readable elsewhere **for up to about a minute**, and a message
//!   just created may not be visible yet at another location;
//! - `insert_new` checks for a held id with a `get` before its `put`, so two creates racing on
//!   one id could both "win" (with 62⁵ ids and a few attempts this is vanishingly rare, but it is
//!   not excluded as it is on Redis).
//!
//! Where exactly-once matters, run crypt self-hosted on Redis (`GETDEL`), or put the messages in
//! a strongly consistent edge store (a Durable Object) instead of KV.
//!
//! KV refuses an `expiration_ttl` under 60 seconds, so at least 60 is sent; the expiry instant
//! stored with the message (checked by the domain on every read) decides exact expiry.

#[cfg(target_arch = "wasm32")]
mod store;

#[cfg(target_arch = "wasm32")]
pub use store::KvMessageStore;

/// KV's smallest `expiration_ttl`, in seconds.
pub const KV_MIN_TTL_SECS: u64 = 60;

/// The `expiration_ttl` to send for a message that must live `ttl_secs`: never below KV's floor.
pub fn kv_expiration_ttl(ttl_secs: u64) -> u64 {
    ttl_secs.max(KV_MIN_TTL_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_ttl_respects_the_kv_floor() {
        assert_eq!(kv_expiration_ttl(1), 60);
        assert_eq!(kv_expiration_ttl(60), 60);
        assert_eq!(kv_expiration_ttl(86_400), 86_400);
    }
}
