//! Optional create tokens (SPEC Part 2 item 8): when configured, `POST /` needs
//! `Authorization: Bearer <token>`. The configuration holds SHA-256 hashes, never the tokens;
//! a presented token is hashed and compared with each hash in constant time. Reads stay open:
//! the link is the capability.

use http::header::{HeaderMap, AUTHORIZATION};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The longest token looked at; anything longer is refused unhashed.
const MAX_TOKEN_LEN: usize = 1024;

/// The SHA-256 hashes of the accepted create tokens (`CRYPT_CREATE_TOKEN_HASHES`); empty means
/// creating needs no token. Its `Debug` shows only how many there are.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TokenHashes(Vec<[u8; 32]>);

impl std::fmt::Debug for TokenHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHashes({} configured)", self.0.len())
    }
}

impl TokenHashes {
    /// Reads the setting: SHA-256 hashes in hex (64 characters), comma-separated.
    ///
    /// # Errors
    /// A sentence naming the entry that is not such a hash.
    pub fn parse(setting: &str) -> Result<Self, String> {
        let mut hashes = Vec::new();
        for (i, entry) in setting.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let bad = || format!("entry {} is not a SHA-256 hash in hex (64 characters of 0-9a-f)", i + 1);
            // Hex digits only, checked first: slicing a 64-byte entry with a multibyte character
            // at an odd byte panicked, and `from_str_radix` takes "+b" for 11 (both found by
            // fuzzing).
            let digits = entry.as_bytes();
            if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
                return Err(bad());
            }
            let nibble = |d: u8| (d as char).to_digit(16).map_or(0, |v| v as u8);
            let mut hash = [0u8; 32];
            for (byte, pair) in hash.iter_mut().zip(digits.chunks_exact(2)) {
                *byte = nibble(pair[0]) << 4 | nibble(pair[1]);
            }
            hashes.push(hash);
        }
        Ok(Self(hashes))
    }

    /// True when tokens are configured.
    pub fn required(&self) -> bool {
        !self.0.is_empty()
    }

    /// True when the request carries `Authorization: Bearer <token>` (the scheme in any case)
    /// with a token whose hash is configured.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(token) = bearer(headers) else {
            return false;
        };
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return false;
        }
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every hash is compared, whichever matches, so the time taken says nothing.
        self.0.iter().fold(subtle::Choice::from(0), |found, hash| found | hash.ct_eq(&presented)).into()
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case, spaces
/// around either part ignored); `None` when there is no such header, or it names another
/// scheme or none. The token may be empty.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn hash_of(token: &str) -> String {
        Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn only_a_configured_token_in_a_bearer_header_is_admitted() {
        let hashes = TokenHashes::parse(&format!("{}, {}", hash_of("s3cret-token"), hash_of("other"))).unwrap();
        assert!(hashes.required());
        for ok in ["Bearer s3cret-token", "bearer s3cret-token", "BEARER other", " Bearer  s3cret-token "] {
            assert!(hashes.admits(&with(ok)), "{ok}");
        }
        let long = format!("Bearer {}", "a".repeat(10_000));
        for refused in
            ["", "Bearer", "Bearer ", "Basic s3cret-token", "s3cret-token", "Bearer s3cret-tokeN", long.as_str()]
        {
            assert!(!hashes.admits(&with(refused)), "{refused:?}");
        }
        assert!(!hashes.admits(&HeaderMap::new()));
    }

    #[test]
    fn the_setting_holds_hashes_and_says_which_entry_is_not_one() {
        assert!(!TokenHashes::parse("").unwrap().required());
        assert_eq!(TokenHashes::parse(&hash_of("x")).unwrap().0.len(), 1);
        assert_eq!(
            TokenHashes::parse("abc").unwrap_err(),
            "entry 1 is not a SHA-256 hash in hex (64 characters of 0-9a-f)"
        );
        assert!(TokenHashes::parse(&format!("{},{}", hash_of("x"), &hash_of("y")[..63]))
            .unwrap_err()
            .starts_with("entry 2"));
        assert!(TokenHashes::parse(&"zz".repeat(32)).is_err());
        // Found by fuzzing: a multibyte character at an odd byte, and a '+' sign.
        assert!(TokenHashes::parse(&format!("{}é{}", "a".repeat(17), "b".repeat(45))).is_err());
        assert!(TokenHashes::parse(&"+b".repeat(32)).is_err());
        assert_eq!(TokenHashes::parse(&"aB".repeat(32)).unwrap().0[0], [0xab; 32]);
        assert_eq!(format!("{:?}", TokenHashes::parse(&hash_of("x")).unwrap()), "TokenHashes(1 configured)");
    }
}
