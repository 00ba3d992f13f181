//! # crypt-durable: messages in Cloudflare Durable Objects
//!
//! A driven adapter, in two halves that run in the same Worker bundle:
//! - [`DurableMessageStore`] implements `MessageStore` for the Worker: it names one Durable
//!   Object per message after the message's id and asks it, over the object's `fetch`, to
//!   insert, spend a view, show the record, delete, or answer a ping;
//! - [`MessageObject`] is the Durable Object class (SQLite-backed): it keeps the id's one
//!   [`Record`](crypt_domain::Record) (the message while a view is left, and the receipt) in a
//!   one-row table, and an alarm at the message's expiry.
//!
//! ## Why one object per message
//! A Durable Object runs one request at a time on one thread, with its own SQLite database, so
//! everything a message needs is local to its object and nothing is shared between messages:
//! - a view is one synchronous step, with no `await` inside it: read the row, apply
//!   [`Record::spend_view`](crypt_domain::Record::spend_view), write the row back. Of any number
//!   of concurrent readers of a message with N views, wherever in the world they are, exactly N
//!   get it;
//! - the sender's delete is the same kind of step ([`Record::owned_by`](crypt_domain::Record::owned_by),
//!   then [`Record::delete`](crypt_domain::Record::delete)), so a delete racing the last view's
//!   read has exactly one winner, and the receipt says which;
//! - `insert_new` checks for a live record and writes in one synchronous step: two creates that
//!   draw the same id cannot both be stored;
//! - objects are created on demand and cost nothing while they hold nothing, so there is no
//!   hot spot (a sharded design would put many messages behind one single-threaded object and
//!   cap the throughput of each shard at one object's, about 1,000 requests a second);
//! - an object is placed near the Worker that first asks for it, i.e. near the creator.
//!
//! ## Expiry and freed storage
//! The expiry instant is kept in the record (the domain decides expiry on every operation, as
//! with every store). The view that spends the last view, and the sender's delete, overwrite
//! the row with the record without its message, so the message's bytes leave the row at once;
//! the receipt stays, and keeps the id taken, until the original expiry. The alarm at that
//! instant deletes the object's storage (`deleteAll`, receipt included), so every message
//! leaves nothing behind. A read, a receipt lookup or a delete of an id that was never stored
//! writes nothing.
//!
//! Compiles for `wasm32` only (elsewhere only the protocol constants below exist).

#[cfg(target_arch = "wasm32")]
mod object;
#[cfg(target_arch = "wasm32")]
mod store;

#[cfg(target_arch = "wasm32")]
pub use object::MessageObject;
#[cfg(target_arch = "wasm32")]
pub use store::DurableMessageStore;

/// The Durable Object namespace binding, as wrangler.toml names it.
pub const BINDING: &str = "MESSAGE_OBJECTS";
/// The Durable Object class the binding must point at (exported by the Worker bundle).
pub const CLASS: &str = "MessageObject";

/// The requests the store sends to an object. Only the path matters; the host is a placeholder
/// (a stub's `fetch` needs an absolute URL and never leaves the runtime).
pub mod route {
    /// `POST`, body: the new record (`Record::encode`). 201 stored, 409 taken.
    pub const INSERT: &str = "https://message.crypt/insert";
    /// `POST`, body: the reader's instant, 8 bytes big-endian (milliseconds). 200 with the
    /// record after the view, its message included (also on the last view, when the stored row
    /// no longer holds it); 404 when no view can be spent.
    pub const VIEW: &str = "https://message.crypt/view";
    /// `GET`. 200 with the record, without its message (expired or not: the store decides);
    /// 404 when there is none.
    pub const RECORD: &str = "https://message.crypt/record";
    /// `POST`, body: the receipt token's 32-byte digest, then the instant as 8 bytes
    /// big-endian. 200 with the record after the delete, without its message; 404 when there
    /// is no live record of that receipt.
    pub const DELETE: &str = "https://message.crypt/delete";
    /// `GET`. 204.
    pub const PING: &str = "https://message.crypt/ping";
    /// `GET`, test bundles only (feature `inspect`): what the object holds, as
    /// `rows=<n> alarm=<ms or none> tables=<n> bytes=<database size> message=<bytes or none>`
    /// (`message`: the length of the message text the row holds).
    pub const INSPECT: &str = "https://message.crypt/inspect";
}

/// The object asked for by [`DurableMessageStore::ping`]: it answers without touching storage.
pub const PING_OBJECT: &str = "crypt:ping";
