//! Values that can only be built valid.

use crate::{Policy, UnixMillis};
use std::fmt;

/// The text of a secret: never empty, never only whitespace, never over the policy's size.
///
/// It is kept exactly as sent: no trimming, no normalisation. Its `Debug` output never shows the
/// text, so a stray `{:?}` in a log line cannot leak a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Message(String);

/// Why a text is not a valid [`Message`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The text is empty or only whitespace.
    #[error("message is empty")]
    Empty,
    /// The text is longer than the policy allows, in bytes of UTF-8.
    #[error("message is {actual} bytes, the limit is {max}")]
    TooLarge {
        /// The limit in bytes.
        max: usize,
        /// The size of the text in bytes.
        actual: usize,
    },
}

impl Message {
    /// Validates `text` against `policy`.
    ///
    /// # Errors
    /// [`MessageError::TooLarge`] when it has more than `policy.max_message_bytes` bytes,
    /// [`MessageError::Empty`] when it is empty or whitespace only.
    pub fn new(text: String, policy: &Policy) -> Result<Self, MessageError> {
        if text.len() > policy.max_message_bytes() {
            return Err(MessageError::TooLarge { max: policy.max_message_bytes(), actual: text.len() });
        }
        if text.trim().is_empty() {
            return Err(MessageError::Empty);
        }
        Ok(Self(text))
    }

    /// The text, exactly as it was sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, exactly as it was sent.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Size in bytes of UTF-8.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// A message read back from a store, for a store that keeps the text apart from
    /// [`crate::Record::encode`]'s layout (Redis): it was validated when it was stored, and the
    /// policy may have changed since (a stored secret must stay readable), so it is not
    /// validated again. Nothing else should build a `Message` this way.
    pub fn from_store(text: String) -> Self {
        Self(text)
    }

    /// Always false: a valid message is never empty. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Message({} bytes)", self.0.len())
    }
}

/// The id of a stored message: 5 to 64 characters from `[A-Za-z0-9]`.
///
/// Parsing accepts every length the settings allow, not only the configured one, so that a
/// change of `CRYPT_ID_LENGTH` never strands messages created under the old length. Its
/// `Debug` and `Display` show only the first two characters: ids are capabilities, and logs
/// must not hold them.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    /// Shortest id the service ever makes or accepts.
    pub const MIN_LEN: usize = 5;
    /// Longest id the service ever makes or accepts.
    pub const MAX_LEN: usize = 64;

    /// Accepts `candidate` when it has the shape of an id; `None` otherwise (wrong length, a
    /// character outside `[A-Za-z0-9]`, such as `/`, `%`, `.` or anything non-ASCII).
    pub fn parse(candidate: &str) -> Option<Self> {
        let ok = (Self::MIN_LEN..=Self::MAX_LEN).contains(&candidate.len())
            && candidate.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| Self(candidate.to_owned()))
    }

    /// The whole id. Callers must not log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short, log-safe form: the first two characters and the length.
    pub fn redacted(&self) -> String {
        format!("{}…({})", &self.0[..2], self.0.len())
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.redacted())
    }
}

/// A time to live in whole seconds, within the policy's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ttl(u64);

/// Why a number of seconds is not a valid [`Ttl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ttl must be between {min} and {max} seconds")]
pub struct TtlError {
    /// Smallest allowed value.
    pub min: u64,
    /// Largest allowed value.
    pub max: u64,
}

impl Ttl {
    /// Validates `secs` against the policy's range.
    ///
    /// # Errors
    /// [`TtlError`] when `secs` is outside `policy.min_ttl_secs..=policy.max_ttl_secs`.
    pub fn new(secs: u64, policy: &Policy) -> Result<Self, TtlError> {
        if (policy.min_ttl_secs()..=policy.max_ttl_secs()).contains(&secs) {
            Ok(Self(secs))
        } else {
            Err(TtlError { min: policy.min_ttl_secs(), max: policy.max_ttl_secs() })
        }
    }

    /// The policy's default time to live.
    pub fn default_for(policy: &Policy) -> Self {
        Self(policy.default_ttl_secs())
    }

    /// Whole seconds.
    pub fn secs(self) -> u64 {
        self.0
    }
}

/// What a create asks a store to keep under a new id: the message, the instant it stops being
/// readable, how many views it has and its receipt's digest. A store keeps it as a
/// [`crate::Record`], which also says which views were spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The secret.
    pub message: Message,
    /// After this instant the message counts as gone, whatever the store still holds.
    pub expires_at: UnixMillis,
    /// Views it can be read for (SPEC Part 2 item 9): at least 1.
    pub views: u32,
    /// The digest of the sender's receipt token (item 10); `None` only for a message stored
    /// before receipts existed.
    pub receipt: Option<crate::ReceiptDigest>,
}

/// Why stored bytes are not a [`StoredMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes do not start with a known format version.
    #[error("unknown stored format")]
    UnknownFormat,
    /// The bytes end before the header does.
    #[error("stored value is truncated")]
    Truncated,
    /// The text is not UTF-8.
    #[error("stored text is not UTF-8")]
    NotUtf8,
}

const FORMAT_V1: u8 = 1;

impl StoredMessage {
    /// A message of one view and no receipt, as Part 1 stores it.
    pub fn new(message: Message, expires_at: UnixMillis) -> Self {
        Self { message, expires_at, views: 1, receipt: None }
    }

    /// The format-1 byte layout, of a message stored before views and receipts, which every
    /// store still reads ([`crate::Record::decode`]; new records are written by
    /// [`crate::Record::encode`]):
    /// a format byte (1), the expiry instant as 8 bytes big-endian, then the UTF-8 text.
    pub fn encode(&self) -> Vec<u8> {
        let (header, text) = self.encoded_parts();
        let mut out = Vec::with_capacity(header.len() + text.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(text.as_bytes());
        out
    }

    /// [`StoredMessage::encode`] in its two pieces, the 9-byte header and the text, for a
    /// store that writes them straight into its request instead of joining them first.
    pub fn encoded_parts(&self) -> ([u8; 9], &str) {
        let mut header = [FORMAT_V1; 9];
        header[1..].copy_from_slice(&self.expires_at.to_be_bytes());
        (header, self.message.as_str())
    }

    /// Reads what [`StoredMessage::encode`] wrote.
    ///
    /// # Errors
    /// [`DecodeError`] when the bytes were not written by `encode`.
    pub fn decode(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        match bytes.first() {
            Some(&FORMAT_V1) => {}
            Some(_) => return Err(DecodeError::UnknownFormat),
            None => return Err(DecodeError::Truncated),
        }
        let header: [u8; 8] =
            bytes.get(1..9).ok_or(DecodeError::Truncated)?.try_into().map_err(|_| DecodeError::Truncated)?;
        let expires_at = u64::from_be_bytes(header);
        let mut bytes = bytes;
        bytes.drain(..9);
        let text = String::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8)?;
        // It was validated when it was stored; the policy may have changed since, and a stored
        // secret must stay readable, so it is not validated again.
        Ok(Self::new(Message(text), expires_at))
    }

    /// True when the message may no longer be read at `now`.
    pub fn is_expired(&self, now: UnixMillis) -> bool {
        now >= self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::default()
    }

    #[test]
    fn message_at_the_limit_is_accepted_and_one_byte_over_is_not() {
        let p = policy();
        assert!(Message::new("a".repeat(102_400), &p).is_ok());
        assert_eq!(
            Message::new("a".repeat(102_401), &p),
            Err(MessageError::TooLarge { max: 102_400, actual: 102_401 })
        );
    }

    #[test]
    fn message_size_counts_bytes_not_characters() {
        let p = policy();
        // "é" is two bytes: 51,200 of them are exactly the limit.
        assert!(Message::new("é".repeat(51_200), &p).is_ok());
        assert!(matches!(Message::new("é".repeat(51_201), &p), Err(MessageError::TooLarge { .. })));
    }

    #[test]
    fn empty_and_whitespace_messages_are_rejected() {
        let p = policy();
        assert_eq!(Message::new(String::new(), &p), Err(MessageError::Empty));
        assert_eq!(Message::new(" \n\t\u{3000}".into(), &p), Err(MessageError::Empty));
        assert_eq!(Message::new(" x ".into(), &p).unwrap().as_str(), " x ");
    }

    #[test]
    fn debug_never_shows_the_text_or_the_whole_id() {
        let p = policy();
        let m = Message::new("hunter2".into(), &p).unwrap();
        assert_eq!(format!("{m:?}"), "Message(7 bytes)");
        let id = MessageId::parse("AbCdEfG").unwrap();
        assert!(!format!("{id:?}").contains("AbCdEfG"));
    }

    #[test]
    fn ids_of_the_wrong_shape_are_rejected() {
        for bad in ["", "abcd", "ab/cd", "ab%00", "..abc", "abcdé", "héllo", &"a".repeat(65), "abc d"] {
            assert!(MessageId::parse(bad).is_none(), "{bad:?} should be rejected");
        }
        assert!(MessageId::parse("abcde").is_some());
        assert!(MessageId::parse(&"Z9".repeat(32)).is_some());
    }

    #[test]
    fn ttl_range_is_inclusive() {
        let p = policy();
        assert!(Ttl::new(60, &p).is_ok());
        assert!(Ttl::new(86_400, &p).is_ok());
        assert_eq!(Ttl::new(59, &p), Err(TtlError { min: 60, max: 86_400 }));
        assert!(Ttl::new(86_401, &p).is_err());
        assert_eq!(Ttl::default_for(&p).secs(), 86_400);
    }

    #[test]
    fn stored_message_round_trips_every_character() {
        let p = policy();
        let text = "line1\nline2\0\"quoted\" 🔥 日本語".to_string();
        let stored = StoredMessage::new(Message::new(text.clone(), &p).unwrap(), 1_700_000_000_123);
        let back = StoredMessage::decode(stored.encode()).unwrap();
        assert_eq!(back, stored);
        assert_eq!(back.message.as_str(), text);
    }

    #[test]
    fn corrupt_stored_bytes_are_refused() {
        assert_eq!(StoredMessage::decode(vec![]), Err(DecodeError::Truncated));
        assert_eq!(StoredMessage::decode(vec![9, 0, 0]), Err(DecodeError::UnknownFormat));
        assert_eq!(StoredMessage::decode(vec![1, 0, 0]), Err(DecodeError::Truncated));
        assert_eq!(StoredMessage::decode(vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff]), Err(DecodeError::NotUtf8));
    }

    #[test]
    fn expiry_is_exclusive_of_the_instant() {
        let p = policy();
        let s = StoredMessage::new(Message::new("x".into(), &p).unwrap(), 1000);
        assert!(!s.is_expired(999));
        assert!(s.is_expired(1000));
    }
}
