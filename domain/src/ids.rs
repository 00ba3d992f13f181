//! Turning random bytes into ids.

/// Paths the service answers itself (SPEC Part 2 item 5). No generated id may ever equal one
/// of them, whatever the configured id length, or a message could become unreadable behind an
/// operations or page route. (`s`, `r` and `openapi.json` cannot be drawn from an alphabet of 5 or
/// more letters and digits anyway; they are listed so the rule reads as the SPEC states it.)
pub const RESERVED_NAMES: [&str; 7] = ["healthz", "readyz", "metrics", "openapi.json", "s", "r", "assets"];

/// True when `candidate` is one of [`RESERVED_NAMES`].
pub fn is_reserved(candidate: &str) -> bool {
    RESERVED_NAMES.contains(&candidate)
}

/// The symbols generated ids are drawn from (`CRYPT_ID_ALPHABET`). Reading accepts ids of
/// either alphabet, so changing the setting never strands a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdAlphabet {
    /// `[a-z0-9]`, 36 symbols: the reference service's alphabet, and the default.
    #[default]
    Lowercase,
    /// `[A-Za-z0-9]`, 62 symbols: more ids at the same length.
    Mixed,
}

impl IdAlphabet {
    /// The setting's value for this alphabet, as an operator writes it.
    pub const fn setting(self) -> &'static str {
        match self {
            IdAlphabet::Lowercase => "a-z0-9",
            IdAlphabet::Mixed => "A-Za-z0-9",
        }
    }

    /// Reads the setting: `a-z0-9` or `A-Za-z0-9` (square brackets allowed around either).
    pub fn parse(setting: &str) -> Option<Self> {
        let s = setting.trim();
        let s = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(s);
        [IdAlphabet::Lowercase, IdAlphabet::Mixed].into_iter().find(|a| a.setting() == s)
    }

    /// The symbols, in order.
    pub const fn symbols(self) -> &'static [u8] {
        match self {
            IdAlphabet::Lowercase => b"abcdefghijklmnopqrstuvwxyz0123456789",
            IdAlphabet::Mixed => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        }
    }

    /// Builds an id of `len` symbols, drawing bytes from `fill` (which must be a
    /// cryptographically secure source).
    ///
    /// A byte is used only when it is below the largest multiple of the alphabet's size that
    /// fits in a byte (252 = 7 × 36, or 248 = 4 × 62), so every symbol is exactly equally
    /// likely: a plain `byte % 36` would favour the first 4 symbols.
    pub fn random_id(self, len: usize, mut fill: impl FnMut(&mut [u8])) -> String {
        let symbols = self.symbols();
        let n = symbols.len();
        let cutoff = (256 / n * n) as u16;
        let mut id = String::with_capacity(len);
        let mut buf = [0u8; 64];
        while id.len() < len {
            let want = (len - id.len() + 8).min(buf.len());
            fill(&mut buf[..want]);
            for &b in &buf[..want] {
                if u16::from(b) < cutoff && id.len() < len {
                    id.push(symbols[usize::from(b) % n] as char);
                }
            }
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting() -> impl FnMut(&mut [u8]) {
        let mut n = 0u8;
        move |buf| {
            for b in buf {
                *b = n;
                n = n.wrapping_add(1);
            }
        }
    }

    #[test]
    fn lowercase_ids_have_the_requested_length_and_alphabet() {
        let id = IdAlphabet::Lowercase.random_id(40, counting());
        assert_eq!(id.len(), 40);
        assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{id}");
        assert!(id.starts_with("abcdefg"));
    }

    #[test]
    fn mixed_ids_use_upper_case_too() {
        let id = IdAlphabet::Mixed.random_id(40, counting());
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(id.starts_with("ABCDEFG"));
    }

    #[test]
    fn bytes_past_the_last_whole_multiple_are_discarded() {
        for (alphabet, cutoff, last) in [(IdAlphabet::Lowercase, 252, "99999"), (IdAlphabet::Mixed, 248, "99999")] {
            let mut calls = 0;
            let id = alphabet.random_id(5, |buf| {
                calls += 1;
                // First a buffer of bytes that must all be refused, then the last symbol.
                buf.fill(if calls == 1 { cutoff } else { (alphabet.symbols().len() - 1) as u8 });
            });
            assert_eq!((id.as_str(), calls), (last, 2), "{alphabet:?}");
        }
    }

    #[test]
    fn every_symbol_is_equally_likely() {
        // Every byte value once: each symbol must come out the same number of times.
        for alphabet in [IdAlphabet::Lowercase, IdAlphabet::Mixed] {
            let mut next = 0u16;
            let id = alphabet.random_id(alphabet.symbols().len() * (256 / alphabet.symbols().len()), |buf| {
                for b in buf {
                    *b = (next % 256) as u8;
                    next += 1;
                }
            });
            for s in alphabet.symbols() {
                assert_eq!(id.bytes().filter(|b| b == s).count(), 256 / alphabet.symbols().len(), "{alphabet:?}");
            }
        }
    }

    #[test]
    fn the_setting_is_read_in_both_spellings_and_nothing_else() {
        assert_eq!(IdAlphabet::parse("a-z0-9"), Some(IdAlphabet::Lowercase));
        assert_eq!(IdAlphabet::parse(" [A-Za-z0-9] "), Some(IdAlphabet::Mixed));
        for bad in ["", "base62", "A-Z0-9", "a-z", "[a-z0-9"] {
            assert_eq!(IdAlphabet::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn reserved_names_are_recognised() {
        for name in ["healthz", "metrics", "assets", "openapi.json", "s", "r"] {
            assert!(is_reserved(name), "{name}");
        }
        assert!(!is_reserved("Healthz"));
    }
}
