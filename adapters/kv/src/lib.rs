//! # crypt-kv: messages in Cloudflare Workers KV
//!
//! A driven adapter: [`KvMessageStore`] implements `MessageStore` on the KV namespace bound as
//! `MESSAGES`. It compiles only for `wasm32` (on other targets only the expiry arithmetic below
//! exists), and depends on the domain and `worker` alone.
//!
//! Each id is one key, `m:<id>`, holding the id's [`Record`](crypt_domain::Record) as
//! `Record::encode` writes it (a value written before views and receipts, in the format-1
//! layout of `StoredMessage::encode`, still reads). Every change is the domain's own rule on the
//! decoded record: a view is a `get`, [`Record::spend_view`](crypt_domain::Record::spend_view)
//! and a `put` of the updated record; the sender's delete is a `get`, the receipt check
//! (`Record::owned_by`, constant time), `Record::delete` and a `put`. After the last view or a
//! delete the key holds the record without its message (the message's bytes are overwritten),
//! which answers the receipt and keeps the id taken until the message's original expiry.
//!
//! ## What KV cannot promise
//! Workers KV is **eventually consistent** and has no atomic read-modify-write or
//! insert-if-absent. A view or a delete is a `get` and then a `put`, with other requests free to
//! run in between, so:
//! - two readers of a one-view message (or of the last view of any message) can **both** get it;
//! - of many concurrent readers of a message with N views, **more than N** can get it, and the
//!   receipt can then list fewer views than were served (two readers that read the same record
//!   both write back "one more view spent");
//! - a sender's delete racing a read can **both succeed**: the reader gets the message and the
//!   sender is told it was deleted (or a view written back after the delete brings the message
//!   back for the views it had left);
//! - a write reaches other Cloudflare locations only after a while: a message read to its last
//!   view or deleted at one location can **still be served from another for about a minute**
//!   (KV's cache), and a message just created may not be visible yet at another location;
//! - `insert_new` checks for a held id with a `get` before its `put`, so two creates racing on
//!   one id could both "win" (with 36⁵ ids and a few attempts this is vanishingly rare, but it is
//!   not excluded as it is on Redis or Durable Objects).
//!
//! Where exactly-once matters (one reader, exactly N views, a delete that always wins or always
//! loses), choose the Durable Object store (`CRYPT_EDGE_STORE = "durable-object"`), or run crypt
//! self-hosted on Redis.
//!
//! ## Expiry
//! The expiry instant kept in the record, checked by the domain on every operation, decides:
//! an expired record spends no view and shows no receipt whatever KV still holds. KV's own
//! expiry only collects the garbage: every `put` sets KV's absolute `expiration` at the
//! record's original expiry (a view or a delete does not extend it), but never less than
//! [`KV_MIN_TTL_SECS`] (plus a margin) ahead, since KV refuses an earlier one.

#[cfg(target_arch = "wasm32")]
mod store;

#[cfg(target_arch = "wasm32")]
pub use store::KvMessageStore;

/// KV's smallest expiry, in seconds from now (`expiration_ttl`, or an absolute `expiration`).
pub const KV_MIN_TTL_SECS: u64 = 60;

/// Seconds added to KV's floor: the clock of the KV service that receives the `put` may be
/// ahead of the Worker's `Date.now()` (which stands still while the Worker computes).
pub const KV_CLOCK_MARGIN_SECS: u64 = 5;

/// KV's absolute `expiration` (seconds since the Unix epoch) for a record that must be kept
/// until `expires_at` (milliseconds), written at `now` (milliseconds): the expiry rounded up to
/// the second, but never earlier than KV accepts.
pub fn kv_expiration(expires_at: u64, now: u64) -> u64 {
    let floor = now / 1000 + KV_MIN_TTL_SECS + KV_CLOCK_MARGIN_SECS;
    expires_at.div_ceil(1000).max(floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiration_is_the_record_s_own_rounded_up() {
        let now = 1_700_000_000_000;
        assert_eq!(kv_expiration(now + 86_400_000, now), 1_700_086_400);
        assert_eq!(kv_expiration(now + 3_600_001, now), 1_700_003_601);
    }

    #[test]
    fn the_expiration_respects_the_kv_floor() {
        let now = 1_700_000_000_500;
        let floor = 1_700_000_000 + KV_MIN_TTL_SECS + KV_CLOCK_MARGIN_SECS;
        // A message of the shortest TTL, and a record read to its end a second before expiry.
        assert_eq!(kv_expiration(now + 1_000, now), floor);
        assert_eq!(kv_expiration(now - 5_000, now), floor);
        assert!(kv_expiration(now + 61_000, now) * 1000 >= now + 60_000);
    }
}
