//! # crypt-envelope: end-to-end encryption for crypt's clients
//!
//! A client seals a secret before it sends it, and keeps the key in the share link's fragment
//! (`https://host/s/{id}#{key}`), which browsers never send to a server. The service stores the
//! sealed text like any message and never sees the key. `docs/ENVELOPE.md` specifies the format
//! byte by byte, with test vectors that this crate's tests and the web page's tests both check.
//!
//! - **Cipher**: AES-256-GCM, a fresh 256-bit key from the OS CSPRNG per secret, a random
//!   96-bit nonce, the version prefix as associated data (so a prefix cannot be swapped).
//! - **Passphrase** (optional): `PBKDF2-HMAC-SHA256(NFC(passphrase), salt, 600,000, 32 bytes)`
//!   with a random 16-byte salt carried in the envelope, mixed into the link's key with
//!   `HMAC-SHA256(key = link key, message = derived)`: a leaked link alone does not open it.
//! - **Text**: `crypt1:` + base64url(nonce ‖ ciphertext ‖ tag), or with a passphrase
//!   `crypt1p:` + base64url(salt ‖ nonce ‖ ciphertext ‖ tag), unpadded.
//!
//! - **Files** ([`file`], version 2): binary, `crypt2f` ‖ mode ‖ salt ‖ file nonce, then 64 KiB
//!   pieces under a key of the file's own (HKDF), each nonce a counter and a last-piece flag
//!   (age's STREAM): the name, type and note are encrypted with the bytes, memory stays at one
//!   piece, and a file cut short, reordered or spliced is refused.
//!
//! No cryptography is written here: RustCrypto's `aes-gcm`, `pbkdf2`, `hmac` and `sha2` do it.
//! This crate depends on no HTTP or async code; the `crypt` command uses it, and so can anyone.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;
use zeroize::{Zeroize, Zeroizing};

/// PBKDF2 iterations for a passphrase (OWASP's 2023 figure for PBKDF2-HMAC-SHA256).
pub const ITERATIONS: u32 = 600_000;
/// Bytes of the random salt of a passphrase.
pub const SALT_LEN: usize = 16;
/// Bytes of the random AES-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Bytes of the AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// The prefix of an envelope sealed without a passphrase.
pub const PREFIX: &str = "crypt1:";
/// The prefix of an envelope sealed with a passphrase.
pub const PREFIX_PASSPHRASE: &str = "crypt1p:";
/// The fragment's suffix that says the secret needs a passphrase too (`#{key}.p`).
pub const PASSPHRASE_FLAG: &str = ".p";

/// Why a secret could not be sealed or opened. Each `Display` is one plain sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The text is not an envelope: it was stored by a client that does not encrypt.
    #[error("the secret is not end-to-end encrypted (it was stored as plain text)")]
    NotAnEnvelope,
    /// An envelope of a version this client does not know.
    #[error("the secret was sealed with envelope version '{0}', which this client does not know; update it")]
    UnknownVersion(String),
    /// The envelope's base64url is broken, or it is too short to hold a nonce and a tag.
    #[error("the secret is damaged: {0}")]
    Damaged(&'static str),
    /// The link's key is missing or is not 32 bytes of base64url.
    #[error("the link's key is damaged: {0}")]
    BadKey(&'static str),
    /// The envelope needs a passphrase and none was given.
    #[error("this secret needs its passphrase")]
    PassphraseRequired,
    /// A passphrase was given for an envelope sealed without one.
    #[error("this secret was not sent with a passphrase")]
    NoPassphraseExpected,
    /// Authentication failed: a wrong key or passphrase, or an altered envelope.
    #[error("cannot decrypt: the passphrase or the link's key is wrong, or the secret was altered")]
    CannotDecrypt,
}

/// A 256-bit secret key. Wiped from memory when dropped; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self(random())
    }

    /// A key from its 32 bytes (test vectors).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key as it goes in a link's fragment: 43 characters of unpadded base64url.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Reads a key from its 43 characters of base64url.
    ///
    /// # Errors
    /// [`EnvelopeError::BadKey`] when it is not 32 bytes of base64url.
    pub fn decode(text: &str) -> Result<Self, EnvelopeError> {
        if text.is_empty() {
            return Err(EnvelopeError::BadKey("the link has no key after '#'"));
        }
        let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(text).map_err(|_| EnvelopeError::BadKey("not base64url"))?);
        let bytes: [u8; 32] =
            bytes.as_slice().try_into().map_err(|_| EnvelopeError::BadKey("not 32 bytes (cut short, or too long)"))?;
        Ok(Self(bytes))
    }
}

/// What a link's fragment holds: the key, and whether a passphrase is needed too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The key.
    pub key: Key,
    /// True when the secret was sealed with a passphrase (`.p` after the key).
    pub passphrase: bool,
}

impl Fragment {
    /// `{key}` or `{key}.p`, without the `#`.
    pub fn encode(&self) -> String {
        let flag = if self.passphrase { PASSPHRASE_FLAG } else { "" };
        format!("{}{flag}", self.key.encode())
    }

    /// Reads a fragment (with or without its leading `#`).
    ///
    /// # Errors
    /// [`EnvelopeError::BadKey`] when the key is missing or damaged.
    pub fn decode(text: &str) -> Result<Self, EnvelopeError> {
        let text = text.strip_prefix('#').unwrap_or(text);
        let (key, passphrase) = match text.strip_suffix(PASSPHRASE_FLAG) {
            Some(key) => (key, true),
            None => (text, false),
        };
        Ok(Self { key: Key::decode(key)?, passphrase })
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source is available");
    bytes
}

/// The AES key for an envelope: the link's key itself, or with a passphrase the link's key
/// mixed with what PBKDF2 derives from the passphrase.
fn cipher_key(key: &Key, passphrase: Option<(&str, &[u8])>) -> Zeroizing<[u8; 32]> {
    let Some((passphrase, salt)) = passphrase else {
        return Zeroizing::new(key.0);
    };
    let normalized = Zeroizing::new(passphrase.nfc().collect::<String>());
    let mut derived = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(normalized.as_bytes(), salt, ITERATIONS, &mut *derived);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.0).expect("HMAC takes a key of any length");
    mac.update(&*derived);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// Seals `plaintext` under `key` (and `passphrase`, if any) with a fresh nonce and salt.
pub fn seal(plaintext: &[u8], key: &Key, passphrase: Option<&str>) -> String {
    seal_with(plaintext, key, passphrase, random(), random())
}

/// [`seal`] with a given salt and nonce: for test vectors only. A nonce must never be used
/// twice under one key.
pub fn seal_with(
    plaintext: &[u8],
    key: &Key,
    passphrase: Option<&str>,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
) -> String {
    let (prefix, header) = match passphrase {
        Some(_) => (PREFIX_PASSPHRASE, [&salt[..], &nonce[..]].concat()),
        None => (PREFIX, nonce.to_vec()),
    };
    let k = cipher_key(key, passphrase.map(|p| (p, &salt[..])));
    let cipher = Aes256Gcm::new_from_slice(&*k).expect("a 32-byte key");
    let aad = prefix.trim_end_matches(':').as_bytes();
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        .expect("AES-GCM encrypts any message under 64 GiB");
    let mut bytes = header;
    bytes.extend_from_slice(&sealed);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The prefix of an envelope, and whether it needs a passphrase.
///
/// # Errors
/// [`EnvelopeError::NotAnEnvelope`] for plain text, [`EnvelopeError::UnknownVersion`] for an
/// envelope of another version.
pub fn needs_passphrase(envelope: &str) -> Result<bool, EnvelopeError> {
    if envelope.starts_with(PREFIX) {
        return Ok(false);
    }
    if envelope.starts_with(PREFIX_PASSPHRASE) {
        return Ok(true);
    }
    // `crypt` + a version number (+ flags) + `:` is an envelope of some other version.
    let version = envelope.split_once(':').map(|(v, _)| v).filter(|v| {
        v.strip_prefix("crypt").is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()) && rest.len() <= 8)
    });
    match version {
        Some(v) => Err(EnvelopeError::UnknownVersion(v.to_owned())),
        None => Err(EnvelopeError::NotAnEnvelope),
    }
}

/// Opens an envelope with the link's `key` and, when it was sealed with one, `passphrase`.
/// Nothing is returned unless authentication succeeded: never a half-decrypted secret.
///
/// # Errors
/// An [`EnvelopeError`] saying what is wrong.
pub fn open(envelope: &str, key: &Key, passphrase: Option<&str>) -> Result<Vec<u8>, EnvelopeError> {
    let with_passphrase = needs_passphrase(envelope)?;
    let (prefix, header_len) =
        if with_passphrase { (PREFIX_PASSPHRASE, SALT_LEN + NONCE_LEN) } else { (PREFIX, NONCE_LEN) };
    match (with_passphrase, passphrase) {
        (true, None) => return Err(EnvelopeError::PassphraseRequired),
        (false, Some(_)) => return Err(EnvelopeError::NoPassphraseExpected),
        _ => {}
    }
    let bytes =
        URL_SAFE_NO_PAD.decode(&envelope[prefix.len()..]).map_err(|_| EnvelopeError::Damaged("not base64url"))?;
    if bytes.len() < header_len + TAG_LEN {
        return Err(EnvelopeError::Damaged("too short to hold a nonce and a tag"));
    }
    let (header, sealed) = bytes.split_at(header_len);
    let (salt, nonce) = header.split_at(header_len - NONCE_LEN);
    let k = cipher_key(key, passphrase.map(|p| (p, salt)));
    let cipher = Aes256Gcm::new_from_slice(&*k).expect("a 32-byte key");
    let aad = prefix.trim_end_matches(':').as_bytes();
    cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad }).map_err(|_| EnvelopeError::CannotDecrypt)
}

/// The largest plaintext whose envelope fits in a message of `max_message_bytes` (102,400
/// by default, which gives 76,750 bytes), with or without a passphrase.
pub const fn max_plaintext(max_message_bytes: usize) -> usize {
    // The longer prefix, then base64 without padding: 4 characters per 3 bytes.
    let room = max_message_bytes.saturating_sub(PREFIX_PASSPHRASE.len());
    let bytes = room / 4 * 3
        + match room % 4 {
            2 => 1,
            3 => 2,
            _ => 0,
        };
    bytes.saturating_sub(SALT_LEN + NONCE_LEN + TAG_LEN)
}

pub mod file;
pub use file::{is_file_envelope, open_file, seal_file_with, sealed_len, FileMeta, FileOpener, FileSealer};

#[cfg(test)]
mod tests;
