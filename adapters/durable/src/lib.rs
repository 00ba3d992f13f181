//! # crypt-durable: messages in Cloudflare Durable Objects
//!
//! A driven adapter, in two halves that run in the same Worker bundle:
//! - [`DurableMessageStore`] implements `MessageStore` for the Worker: it names one Durable
//!   Object per message after the message's id and asks it, over the object's `fetch`, to
//!   insert, take or answer a ping;
//! - [`MessageObject`] is the Durable Object class (SQLite-backed): it keeps at most one message
//!   in a one-row table and an alarm at the message's expiry.
//!
//! ## Why one object per message
//! A Durable Object runs one request at a time on one thread, with its own SQLite database, so
//! everything a message needs is local to its object and nothing is shared between messages:
//! - `take` is a single `DELETE … RETURNING` (a synchronous SQLite call, with no `await` inside
//!   the step): two readers cannot both get the message, wherever in the world they are;
//! - `insert_new` checks for a live message and writes in one synchronous step: two creates that
//!   draw the same id cannot both be stored;
//! - objects are created on demand and cost nothing while they hold nothing, so there is no
//!   hot spot (a sharded design would put many messages behind one single-threaded object and
//!   cap the throughput of each shard at one object's, about 1,000 requests a second);
//! - an object is placed near the Worker that first asks for it, i.e. near the creator.
//!
//! ## Expiry and freed storage
//! The expiry instant is stored with the message (the domain decides expiry on every read, as
//! with every store). An alarm at that instant deletes the object's storage (`deleteAll`), so an
//! unread message leaves nothing behind; a read deletes the storage and the alarm at once. A
//! read of an id that was never stored writes nothing.
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
    /// `POST`, body: the encoded `StoredMessage`. 201 stored, 409 taken.
    pub const INSERT: &str = "https://message.crypt/insert";
    /// `POST`. 200 with the encoded `StoredMessage`, 404 when there is none.
    pub const TAKE: &str = "https://message.crypt/take";
    /// `GET`. 204.
    pub const PING: &str = "https://message.crypt/ping";
    /// `GET`, test bundles only (feature `inspect`): what the object holds, as
    /// `rows=<n> alarm=<ms or none> tables=<n> bytes=<database size>`.
    pub const INSPECT: &str = "https://message.crypt/inspect";
}

/// The object asked for by [`DurableMessageStore::ping`]: it answers without touching storage.
pub const PING_OBJECT: &str = "crypt:ping";
