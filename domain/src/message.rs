//! Values that can only be built valid.

use crate::{Policy, UnixMillis};
use bytes::Bytes;
use std::fmt;

/// What a sender gives, before it is checked: a text (a JSON create, SPEC Part 1) or a file's
/// bytes (an `application/octet-stream` create, Part 2 item 11). Its `Debug` output shows only
/// the kind and the size.
#[derive(Clone, PartialEq, Eq)]
pub enum Content {
    /// UTF-8 text, kept exactly as sent.
    Text(String),
    /// Bytes of any kind: the project's clients send an encrypted file envelope here. Held as
    /// [`Bytes`] so a runtime's body, a store's copy and a read's answer can share one buffer.
    File(Bytes),
}

impl From<String> for Content {
    fn from(text: String) -> Self {
        Content::Text(text)
    }
}

impl From<&str> for Content {
    fn from(text: &str) -> Self {
        Content::Text(text.to_owned())
    }
}

impl Content {
    /// Size in bytes.
    pub fn len(&self) -> usize {
        match self {
            Content::Text(text) => text.len(),
            Content::File(bytes) => bytes.len(),
        }
    }

    /// True when there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::Text(text) => write!(f, "Text({} bytes)", text.len()),
            Content::File(bytes) => write!(f, "File({} bytes)", bytes.len()),
        }
    }
}

/// A secret, valid: a text that is never empty, never only whitespace and never over the
/// policy's size; or a file that is never empty and never over the policy's file size.
///
/// It is kept exactly as sent: no trimming, no normalisation. Its `Debug` output never shows the
/// content, so a stray `{:?}` in a log line cannot leak a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Message(Content);

/// Why a content is not a valid [`Message`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The text is empty or only whitespace, or the file has no bytes.
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
    /// The file is larger than the policy allows.
    #[error("file is {actual} bytes, the limit is {max}")]
    FileTooLarge {
        /// The limit in bytes.
        max: usize,
        /// The size of the file in bytes.
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
        Ok(Self(Content::Text(text)))
    }

    /// Validates a file's `bytes` against `policy`.
    ///
    /// # Errors
    /// [`MessageError::FileTooLarge`] when there are more than `policy.max_file_bytes`,
    /// [`MessageError::Empty`] when there are none.
    pub fn file(bytes: Bytes, policy: &Policy) -> Result<Self, MessageError> {
        if bytes.len() > policy.max_file_bytes() {
            return Err(MessageError::FileTooLarge { max: policy.max_file_bytes(), actual: bytes.len() });
        }
        if bytes.is_empty() {
            return Err(MessageError::Empty);
        }
        Ok(Self(Content::File(bytes)))
    }

    /// Validates `content` against `policy`, as [`Message::new`] or [`Message::file`].
    ///
    /// # Errors
    /// As theirs.
    pub fn of(content: Content, policy: &Policy) -> Result<Self, MessageError> {
        match content {
            Content::Text(text) => Self::new(text, policy),
            Content::File(bytes) => Self::file(bytes, policy),
        }
    }

    /// The text, exactly as it was sent; `None` for a file.
    pub fn as_text(&self) -> Option<&str> {
        match &self.0 {
            Content::Text(text) => Some(text),
            Content::File(_) => None,
        }
    }

    /// The bytes: a text's UTF-8, or a file's.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Content::Text(text) => text.as_bytes(),
            Content::File(bytes) => bytes,
        }
    }

    /// True for a file (an `application/octet-stream` create).
    pub fn is_file(&self) -> bool {
        matches!(self.0, Content::File(_))
    }

    /// The content, exactly as it was sent.
    pub fn content(&self) -> &Content {
        &self.0
    }

    /// The content, exactly as it was sent.
    pub fn into_content(self) -> Content {
        self.0
    }

    /// Size in bytes (of UTF-8, for a text).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// A message read back from a store, for a store that keeps the content apart from
    /// [`crate::Record::encode`]'s layout (Redis, memory): it was validated when it was
    /// stored, and the policy may have changed since (a stored secret must stay readable), so
    /// it is not validated again. Nothing else should build a `Message` this way.
    pub fn from_store(content: Content) -> Self {
        Self(content)
    }

    /// Always false: a valid message is never empty. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Content::Text(text) => write!(f, "Message({} bytes)", text.len()),
            Content::File(bytes) => write!(f, "Message(file, {} bytes)", bytes.len()),
        }
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
    ///
    /// Only tests of old data write it; a file cannot be written in it (its bytes would read
    /// back as text, or not at all).
    pub fn encode(&self) -> Vec<u8> {
        let text = self.message.as_bytes();
        let mut out = Vec::with_capacity(9 + text.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(text);
        out
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
        Ok(Self::new(Message(Content::Text(text)), expires_at))
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
        assert_eq!(Message::new(" x ".into(), &p).unwrap().as_text(), Some(" x "));
    }

    #[test]
    fn a_file_is_checked_against_its_own_limit_and_never_as_text() {
        let p = policy();
        let max = p.max_file_bytes();
        assert_eq!(max, 10_485_760);
        let at_limit = Message::file(vec![0xff; max].into(), &p).unwrap();
        assert!(at_limit.is_file() && at_limit.as_text().is_none());
        assert_eq!(
            Message::file(vec![1; max + 1].into(), &p),
            Err(MessageError::FileTooLarge { max, actual: max + 1 })
        );
        assert_eq!(Message::file(Bytes::new(), &p), Err(MessageError::Empty));
        // Whitespace is a file's business: only a text must hold more than whitespace.
        assert_eq!(Message::file(Bytes::from_static(b" "), &p).unwrap().as_bytes(), b" ");
        assert_eq!(format!("{:?}", Message::file(Bytes::from_static(b"key"), &p).unwrap()), "Message(file, 3 bytes)");
        assert_eq!(format!("{:?}", Content::File(Bytes::from_static(b"key"))), "File(3 bytes)");
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
        assert_eq!(back.message.as_text(), Some(text.as_str()));
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
