//! Turning random bytes into ids.

/// Paths the service answers itself. No generated id may ever equal one of them, whatever the
/// configured id length, or a message could become unreadable behind an operations route.
pub const RESERVED_NAMES: [&str; 3] = ["healthz", "readyz", "metrics"];

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// True when `candidate` is one of [`RESERVED_NAMES`].
pub fn is_reserved(candidate: &str) -> bool {
    RESERVED_NAMES.contains(&candidate)
}

/// Builds an id of `len` characters from `[A-Za-z0-9]`, drawing bytes from `fill` (which must
/// be a cryptographically secure source).
///
/// Each byte is used only when it is below 248 (= 4 × 62), so every character is exactly
/// equally likely: a plain `byte % 62` would favour the first 8 characters.
pub fn alphanumeric_id(len: usize, mut fill: impl FnMut(&mut [u8])) -> String {
    let mut id = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while id.len() < len {
        let want = (len - id.len() + 8).min(buf.len());
        fill(&mut buf[..want]);
        for &b in &buf[..want] {
            if b < 248 && id.len() < len {
                id.push(ALPHABET[usize::from(b % 62)] as char);
            }
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_requested_length_and_alphabet() {
        let mut n = 0u8;
        let id = alphanumeric_id(40, |buf| {
            for b in buf {
                *b = n;
                n = n.wrapping_add(1);
            }
        });
        assert_eq!(id.len(), 40);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(id.starts_with("ABCDEFG"));
    }

    #[test]
    fn bytes_at_or_above_248_are_discarded() {
        let mut calls = 0;
        let id = alphanumeric_id(5, |buf| {
            calls += 1;
            let v = if calls == 1 { 255 } else { 61 };
            buf.fill(v);
        });
        assert_eq!(id, "99999");
        assert_eq!(calls, 2);
    }

    #[test]
    fn reserved_names_are_recognised() {
        assert!(is_reserved("healthz"));
        assert!(is_reserved("metrics"));
        assert!(!is_reserved("Healthz"));
    }
}
