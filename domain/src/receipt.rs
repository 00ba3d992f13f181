//! The sender's control over a message (SPEC Part 2 items 9 and 10): how many views it has, the
//! receipt that says which were spent and when, and the sender's delete.
//!
//! A store keeps one [`Record`] per id. Every transition a store makes is one of this module's
//! pure functions ([`Record::spend_view`], [`Record::delete`]), applied inside whatever makes
//! the store atomic (a lock, a Durable Object's single thread, a SQLite transaction), so the
//! stores cannot disagree about what a view, a delete or a receipt is. Redis runs the same rules
//! in its scripts (`crypt-redis`), checked by the same contract suite.

use crate::{Content, Message, StoredMessage, UnixMillis};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 of a receipt token: all a store ever keeps of it. Its `Debug` shows nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ReceiptDigest([u8; 32]);

impl std::fmt::Debug for ReceiptDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiptDigest(..)")
    }
}

impl ReceiptDigest {
    /// The longest token hashed; a longer one cannot be a receipt and matches nothing.
    pub const MAX_TOKEN_LEN: usize = 256;

    /// The digest of `token`.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// A digest as a store returns it.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes, for a store to keep.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// True when `other` is the same digest, compared in constant time.
    pub fn matches(&self, other: &ReceiptDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// What a receipt says of its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptState {
    /// No view has been spent and the sender has not deleted it.
    Unread,
    /// At least one view was spent (`views_left` says whether any remain).
    Read,
    /// The sender deleted it before its last view was spent.
    Deleted,
}

impl ReceiptState {
    /// The word the API answers (`unread`, `read`, `deleted`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptState::Unread => "unread",
            ReceiptState::Read => "read",
            ReceiptState::Deleted => "deleted",
        }
    }
}

/// A receipt as the sender is shown it: never the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The state.
    pub state: ReceiptState,
    /// Views that can still be spent (0 once read to the end or deleted).
    pub views_left: u32,
    /// When each view was spent, oldest first.
    pub read_at: Vec<UnixMillis>,
    /// The message's original expiry, which is also the receipt's.
    pub expires_at: UnixMillis,
}

/// One view spent: the message and how many views remain after it.
#[derive(Clone, PartialEq, Eq)]
pub struct Viewed {
    /// The secret.
    pub message: Message,
    /// Views left after this one; 0 when this was the last (the message is now destroyed).
    pub views_left: u32,
    /// The message's expiry.
    pub expires_at: UnixMillis,
}

impl std::fmt::Debug for Viewed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewed").field("message", &self.message).field("views_left", &self.views_left).finish()
    }
}

/// What [`Record::delete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// The message was readable and is destroyed now.
    Deleted,
    /// Nothing to destroy: deleted before, or every view already spent.
    AlreadyGone,
}

/// What the sender's delete did, and the receipt after it ([`crate::MessageStore::delete`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Whether this delete destroyed the message (`Deleted`), or found nothing left to destroy.
    pub deletion: Deletion,
    /// The receipt afterwards.
    pub receipt: Receipt,
}

/// Everything a store keeps under one id: the message while a view is left, and the receipt
/// until the original expiry.
///
/// Once the last view is spent or the sender deletes it, `message` is `None` (its bytes are
/// dropped at once) and the rest stays as the receipt until `expires_at`.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The secret, while a view is left.
    pub message: Option<Message>,
    /// After this instant the id holds nothing, receipt included.
    pub expires_at: UnixMillis,
    /// Views the sender asked for.
    pub views: u32,
    /// When each spent view was spent, oldest first; never longer than `views`.
    pub read_at: Vec<UnixMillis>,
    /// The sender deleted it.
    pub deleted: bool,
    /// The receipt token's digest; `None` for a message stored before receipts existed.
    pub receipt: Option<ReceiptDigest>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("message", &self.message)
            .field("expires_at", &self.expires_at)
            .field("views", &self.views)
            .field("read_at", &self.read_at)
            .field("deleted", &self.deleted)
            .finish_non_exhaustive()
    }
}

impl Record {
    /// A new message's record: nothing spent.
    pub fn new(stored: &StoredMessage) -> Self {
        Self {
            message: Some(stored.message.clone()),
            expires_at: stored.expires_at,
            views: stored.views,
            read_at: Vec::new(),
            deleted: false,
            receipt: stored.receipt,
        }
    }

    /// True when nothing under the id counts any more at `now` (receipt included): the id may
    /// be used again, and the record dropped.
    pub fn is_expired(&self, now: UnixMillis) -> bool {
        now >= self.expires_at
    }

    /// Views that can still be spent. (The message is held exactly while this is above 0;
    /// it is not looked at here, since [`crate::MessageStore::record`] may leave it out.)
    pub fn views_left(&self) -> u32 {
        if self.deleted {
            0
        } else {
            self.views.saturating_sub(self.read_at.len() as u32)
        }
    }

    /// Spends one view at `now`: the message and the views left after it, and on the last view
    /// the message leaves the record. `None` (and nothing changes) when it has expired, was
    /// deleted, or has no view left.
    pub fn spend_view(&mut self, now: UnixMillis) -> Option<Viewed> {
        if self.is_expired(now) || self.views_left() == 0 || self.message.is_none() {
            return None;
        }
        self.read_at.push(now);
        let views_left = self.views_left();
        let message = if views_left == 0 { self.message.take()? } else { self.message.clone()? };
        Some(Viewed { message, views_left, expires_at: self.expires_at })
    }

    /// The sender's delete: the message leaves the record, the receipt stays.
    pub fn delete(&mut self) -> Deletion {
        if self.views_left() == 0 {
            return Deletion::AlreadyGone;
        }
        self.message = None;
        self.deleted = true;
        Deletion::Deleted
    }

    /// The receipt, as the sender is shown it.
    pub fn receipt(&self) -> Receipt {
        let state = if self.deleted {
            ReceiptState::Deleted
        } else if self.read_at.is_empty() {
            ReceiptState::Unread
        } else {
            ReceiptState::Read
        };
        Receipt { state, views_left: self.views_left(), read_at: self.read_at.clone(), expires_at: self.expires_at }
    }

    /// The receipt when `digest` is this record's and it has not expired at `now`; `None`
    /// otherwise (compared in constant time).
    pub fn receipt_for(&self, digest: &ReceiptDigest, now: UnixMillis) -> Option<Receipt> {
        self.owned_by(digest, now).then(|| self.receipt())
    }

    /// True when `digest` is this record's receipt and the record is live at `now`.
    pub fn owned_by(&self, digest: &ReceiptDigest, now: UnixMillis) -> bool {
        let Some(own) = &self.receipt else { return false };
        // Compared first, whatever the expiry, so the time taken says nothing about it.
        own.matches(digest) & !self.is_expired(now)
    }

    /// The one byte layout every byte-oriented store keeps (KV, Durable Objects, SQLite):
    /// format 2, the expiry (8 bytes), views (4), flags (1: bit 0 deleted, bit 1 a receipt,
    /// bit 2 the message is held, bit 3 it is a file), the receipt digest (32, when bit 1), the
    /// number of views spent (4) and their instants (8 each), then the message's bytes (a
    /// text's UTF-8, or a file's), all integers
    /// big-endian. [`Record::decode`] also reads format 1 ([`StoredMessage::encode`]), a
    /// message stored before views and receipts.
    pub fn encode(&self) -> Vec<u8> {
        let text = self.message.as_ref().map_or(&[][..], Message::as_bytes);
        let mut out = Vec::with_capacity(RECORD_HEADER + 32 + 8 * self.read_at.len() + text.len());
        out.push(FORMAT_V2);
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(&self.views.to_be_bytes());
        let flags = u8::from(self.deleted)
            | u8::from(self.receipt.is_some()) << 1
            | u8::from(self.message.is_some()) << 2
            | u8::from(self.message.as_ref().is_some_and(Message::is_file)) << 3;
        out.push(flags);
        if let Some(digest) = &self.receipt {
            out.extend_from_slice(digest.as_bytes());
        }
        out.extend_from_slice(&(self.read_at.len() as u32).to_be_bytes());
        for at in &self.read_at {
            out.extend_from_slice(&at.to_be_bytes());
        }
        out.extend_from_slice(text);
        out
    }

    /// Reads what [`Record::encode`] (or, for older messages, [`StoredMessage::encode`]) wrote.
    ///
    /// # Errors
    /// [`crate::DecodeError`] when the bytes were written by neither.
    pub fn decode(bytes: Vec<u8>) -> Result<Self, crate::DecodeError> {
        use crate::DecodeError;
        match bytes.first() {
            Some(&FORMAT_V2) => {}
            Some(_) => return StoredMessage::decode(bytes).map(|m| Record::new(&m)),
            None => return Err(DecodeError::Truncated),
        }
        let mut at = 1;
        let mut take = |n: usize| -> Result<&[u8], DecodeError> {
            let piece = bytes.get(at..at + n).ok_or(DecodeError::Truncated)?;
            at += n;
            Ok(piece)
        };
        let expires_at = u64::from_be_bytes(take(8)?.try_into().map_err(|_| DecodeError::Truncated)?);
        let views = u32::from_be_bytes(take(4)?.try_into().map_err(|_| DecodeError::Truncated)?);
        let flags = take(1)?[0];
        let receipt = if flags & 2 != 0 {
            Some(ReceiptDigest(take(32)?.try_into().map_err(|_| DecodeError::Truncated)?))
        } else {
            None
        };
        let spent = u32::from_be_bytes(take(4)?.try_into().map_err(|_| DecodeError::Truncated)?) as usize;
        // Checked against the bytes there before anything is sized by it: a damaged value must
        // be refused, never reserve gigabytes.
        if spent > views as usize || spent > bytes.len() / 8 {
            return Err(DecodeError::Truncated);
        }
        let mut read_at = Vec::with_capacity(spent);
        for _ in 0..spent {
            read_at.push(u64::from_be_bytes(take(8)?.try_into().map_err(|_| DecodeError::Truncated)?));
        }
        let message = match (flags & 4 != 0, flags & 8 != 0) {
            (false, _) => None,
            // A file's bytes are shared with the value read, not copied.
            (true, true) => Some(Message::from_store(Content::File(bytes::Bytes::from(bytes).slice(at..)))),
            (true, false) => {
                let mut bytes = bytes;
                bytes.drain(..at);
                Some(Message::from_store(Content::Text(String::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8)?)))
            }
        };
        Ok(Self { message, expires_at, views, read_at, deleted: flags & 1 != 0, receipt })
    }
}

const FORMAT_V2: u8 = 2;
/// Format, expiry, views, flags and the count of views spent.
const RECORD_HEADER: usize = 1 + 8 + 4 + 1 + 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    fn record(views: u32) -> Record {
        let message = Message::new("secret".into(), &Policy::default()).unwrap();
        Record::new(&StoredMessage { message, expires_at: 10_000, views, receipt: Some(ReceiptDigest::of("r")) })
    }

    #[test]
    fn views_are_spent_one_by_one_and_the_last_drops_the_message() {
        let mut r = record(3);
        assert_eq!(r.spend_view(1).unwrap().views_left, 2);
        assert_eq!(r.spend_view(2).unwrap().views_left, 1);
        let last = r.spend_view(3).unwrap();
        assert_eq!((last.views_left, last.message.as_text().unwrap()), (0, "secret"));
        assert_eq!(r.message, None);
        assert_eq!(r.spend_view(4), None);
        let receipt = r.receipt();
        assert_eq!((receipt.state, receipt.views_left, receipt.read_at), (ReceiptState::Read, 0, vec![1, 2, 3]));
    }

    #[test]
    fn a_delete_stops_the_views_and_the_receipt_says_so() {
        let mut r = record(3);
        r.spend_view(5).unwrap();
        assert_eq!(r.delete(), Deletion::Deleted);
        assert_eq!(r.message, None);
        assert_eq!(r.spend_view(6), None);
        assert_eq!(r.delete(), Deletion::AlreadyGone);
        let receipt = r.receipt();
        assert_eq!((receipt.state, receipt.views_left, receipt.read_at), (ReceiptState::Deleted, 0, vec![5]));
    }

    #[test]
    fn a_delete_after_the_last_view_changes_nothing() {
        let mut r = record(1);
        r.spend_view(5).unwrap();
        assert_eq!(r.delete(), Deletion::AlreadyGone);
        assert_eq!(r.receipt().state, ReceiptState::Read);
    }

    #[test]
    fn an_expired_record_spends_nothing_and_shows_no_receipt() {
        let mut r = record(2);
        assert_eq!(r.spend_view(10_000), None);
        assert!(r.read_at.is_empty());
        assert_eq!(r.receipt_for(&ReceiptDigest::of("r"), 10_000), None);
        assert!(r.receipt_for(&ReceiptDigest::of("r"), 9_999).is_some());
        assert_eq!(r.receipt_for(&ReceiptDigest::of("another"), 9_999), None);
    }

    #[test]
    fn records_round_trip_in_every_state_and_old_messages_still_read() {
        let mut r = record(3);
        let back = |r: &Record| Record::decode(r.encode()).unwrap();
        assert_eq!(back(&r), r);
        r.spend_view(7).unwrap();
        assert_eq!(back(&r), r);
        r.delete();
        assert_eq!(back(&r), r);
        let mut no_receipt = record(1);
        no_receipt.receipt = None;
        assert_eq!(back(&no_receipt), no_receipt);
        let old = StoredMessage::new(Message::new("old".into(), &Policy::default()).unwrap(), 99);
        let read = Record::decode(old.encode()).unwrap();
        assert_eq!((read.views, read.receipt, read.message.unwrap().as_text().unwrap()), (1, None, "old"));
    }

    #[test]
    fn a_file_record_round_trips_as_a_file_even_when_its_bytes_are_text() {
        let policy = Policy::default();
        for bytes in [&b"looks like text"[..], &[0xff, 0xfe, 0, 1][..]] {
            let message = Message::file(bytes::Bytes::copy_from_slice(bytes), &policy).unwrap();
            let mut r = Record::new(&StoredMessage { message, expires_at: 10, views: 2, receipt: None });
            let back = Record::decode(r.encode()).unwrap();
            assert_eq!(back, r);
            assert!(back.message.as_ref().unwrap().is_file());
            r.spend_view(1).unwrap();
            assert_eq!(Record::decode(r.encode()).unwrap(), r);
        }
        // A text record whose bytes are not UTF-8 is damaged, and refused; the same bytes as a
        // file are fine.
        let mut damaged = record(1).encode();
        damaged.push(0xff);
        assert_eq!(Record::decode(damaged.clone()), Err(crate::DecodeError::NotUtf8));
        damaged[13] |= 8;
        assert!(Record::decode(damaged).unwrap().message.unwrap().is_file());
    }

    #[test]
    fn damaged_records_are_refused() {
        let full = record(2).encode();
        for cut in [1, 9, 13, 14, 40, 49] {
            assert!(Record::decode(full[..cut].to_vec()).is_err(), "cut at {cut}");
        }
        let mut lying = record(1);
        lying.read_at = vec![1, 2];
        assert!(Record::decode(lying.encode()).is_err(), "more views spent than there were");
        // A value that claims four billion views spent, in 22 bytes: refused, nothing reserved.
        let mut huge = vec![2u8];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        huge.push(0);
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(Record::decode(huge), Err(crate::DecodeError::Truncated));
    }

    #[test]
    fn a_record_missing_its_message_spends_no_view() {
        let mut broken = record(3);
        broken.message = None;
        assert_eq!(broken.spend_view(0), None);
        assert!(broken.read_at.is_empty(), "a view was recorded without a message");
    }

    #[test]
    fn digests_compare_by_value_and_never_show() {
        assert!(ReceiptDigest::of("a").matches(&ReceiptDigest::of("a")));
        assert!(!ReceiptDigest::of("a").matches(&ReceiptDigest::of("b")));
        assert_eq!(format!("{:?}", ReceiptDigest::of("a")), "ReceiptDigest(..)");
    }
}
