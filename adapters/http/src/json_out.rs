//! The two bodies written on every create and read, written by hand.
//!
//! Both are one or two strings in a fixed frame, and serde_json escapes byte by byte; a message
//! is copied here eight bytes at a time until a byte that needs escaping turns up (which in
//! most messages is never, or only at line breaks). The output is byte for byte what serde_json
//! writes; the tests hold it to that.

use bytes::Bytes;

/// `{"id":"…","expires_at":"…","receipt":"…"}`. No value is escaped: an id and a receipt are
/// ASCII letters and digits by construction, and a timestamp is digits and separators.
pub(crate) fn created(id: &str, expires_at: &str, receipt: &str) -> Bytes {
    debug_assert!(id
        .bytes()
        .chain(expires_at.bytes())
        .chain(receipt.bytes())
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'));
    let mut out = Vec::with_capacity(40 + id.len() + expires_at.len() + receipt.len());
    out.extend_from_slice(br#"{"id":""#);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(br#"","expires_at":""#);
    out.extend_from_slice(expires_at.as_bytes());
    out.extend_from_slice(br#"","receipt":""#);
    out.extend_from_slice(receipt.as_bytes());
    out.extend_from_slice(br#""}"#);
    Bytes::from(out)
}

/// `{"message":"…","views_left":k}` with the text escaped as JSON requires.
pub(crate) fn message(text: &str, views_left: u32) -> Bytes {
    // Room for the frame and a few escapes; a text full of them grows the buffer once or twice.
    let mut out = Vec::with_capacity(text.len() + text.len() / 16 + 32);
    out.extend_from_slice(br#"{"message":"#);
    push_string(&mut out, text);
    out.extend_from_slice(br#","views_left":"#);
    out.extend_from_slice(views_left.to_string().as_bytes());
    out.push(b'}');
    Bytes::from(out)
}

/// A receipt (SPEC Part 2 item 10): `{"state":…,"views_left":…,"read_at":[…],"expires_at":…}`.
/// Never the message. Rare enough for serde.
pub(crate) fn receipt(receipt: &crypt_domain::Receipt) -> Bytes {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        state: &'a str,
        views_left: u32,
        read_at: Vec<String>,
        expires_at: String,
    }
    let body = Body {
        state: receipt.state.as_str(),
        views_left: receipt.views_left,
        read_at: receipt.read_at.iter().map(|&at| crate::format_rfc3339(at)).collect(),
        expires_at: crate::format_rfc3339(receipt.expires_at),
    };
    // Serializing strings and a number cannot fail.
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// True when any byte of `word` is a control character, `"` or `\`: the bytes JSON escapes.
/// (The classic bit tricks: a byte below n, a byte equal to n; exact, with no false answers.)
#[inline]
fn needs_escape(word: u64) -> bool {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = (word ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES) & !(word ^ (ONES * u64::from(b'"')));
    let backslash = (word ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES) & !(word ^ (ONES * u64::from(b'\\')));
    (below_space | quote | backslash) & HIGHS != 0
}

/// Appends `text` as a JSON string, quotes included, escaped exactly as serde_json does.
fn push_string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.push(b'"');
    let mut clean_from = 0; // start of the run not yet copied
    let mut at = 0;
    while at < bytes.len() {
        if let Some(chunk) = bytes.get(at..at + 8) {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            if !needs_escape(word) {
                at += 8;
                continue;
            }
        }
        // A word with something to escape (or the tail): byte by byte until the word's end.
        let end = (at + 8).min(bytes.len());
        while at < end {
            if let Some(escape) = escape_for(bytes[at]) {
                out.extend_from_slice(&bytes[clean_from..at]);
                push_escape(out, escape, bytes[at]);
                clean_from = at + 1;
            }
            at += 1;
        }
    }
    out.extend_from_slice(&bytes[clean_from..]);
    out.push(b'"');
}

/// What a byte becomes: a one-letter escape, `u` for `\u00XX`, or `None` to copy it as is.
#[inline]
fn escape_for(b: u8) -> Option<u8> {
    match b {
        b'"' => Some(b'"'),
        b'\\' => Some(b'\\'),
        b'\n' => Some(b'n'),
        b'\r' => Some(b'r'),
        b'\t' => Some(b't'),
        0x08 => Some(b'b'),
        0x0c => Some(b'f'),
        0x00..=0x1f => Some(b'u'),
        _ => None,
    }
}

fn push_escape(out: &mut Vec<u8>, escape: u8, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if escape == b'u' {
        out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xf)]]);
    } else {
        out.extend_from_slice(&[b'\\', escape]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_message(text: &str) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct MessageBody<'a> {
            message: &'a str,
            views_left: u32,
        }
        serde_json::to_vec(&MessageBody { message: text, views_left: 0 }).unwrap()
    }

    #[test]
    fn every_single_character_is_escaped_as_serde_json_escapes_it() {
        for c in (0u32..0x300).chain([0x2028, 0x2029, 0xfeff, 0x1f600]).filter_map(char::from_u32) {
            let text = c.to_string();
            assert_eq!(message(&text, 0), serde_message(&text), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn escapes_at_every_position_of_a_word_and_in_the_tail() {
        // Each special byte at each offset, in texts long enough to cross several words.
        for special in ['"', '\\', '\n', '\u{1}', '\u{1f}', '\t'] {
            for len in [1, 7, 8, 9, 15, 16, 17, 31, 64] {
                for pos in 0..len {
                    let text: String =
                        (0..len).map(|i| if i == pos { special } else { (b'a' + (i % 26) as u8) as char }).collect();
                    assert_eq!(message(&text, 0), serde_message(&text), "{special:?} at {pos} of {len}");
                }
            }
        }
    }

    #[test]
    fn mixed_texts_match_serde_json() {
        let texts = [
            "",
            "plain ascii that runs past a few eight-byte words",
            "line one\nline two\r\n\ttabbed \"quoted\" back\\slash",
            "ünïcödé, 日本語, emoji 🎉 and a NUL \0 in the middle",
            "\u{7f}\u{80}\u{ff} edges of ASCII",
            &"x".repeat(102_400),
            &"\"\\\n".repeat(1000),
        ];
        for text in texts {
            assert_eq!(message(text, 0), serde_message(text), "{:?}", &text[..text.len().min(40)]);
        }
    }

    #[test]
    fn the_word_test_finds_exactly_the_escaped_bytes() {
        for b in 0u8..=255 {
            for pos in 0..8 {
                let mut word = [b'a'; 8];
                word[pos] = b;
                let expected = b < 0x20 || b == b'"' || b == b'\\';
                assert_eq!(needs_escape(u64::from_le_bytes(word)), expected, "byte {b:#x} at {pos}");
            }
        }
    }

    #[test]
    fn the_word_test_agrees_with_a_byte_by_byte_test_on_random_words() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Bias bytes towards the interesting range so hits and misses both occur often.
            let word = state & 0x7f7f_7f7f_7f7f_7f7f | (state >> 3) & HIGHS;
            let expected = word.to_le_bytes().iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
            assert_eq!(needs_escape(word), expected, "{word:#018x}");
        }
    }

    #[test]
    fn created_matches_serde_json() {
        #[derive(serde::Serialize)]
        struct CreatedBody<'a> {
            id: &'a str,
            expires_at: &'a str,
            receipt: &'a str,
        }
        let (id, at, receipt) = ("aB3xZ", "2026-11-23T01:02:03Z", "Q2x9ZkP0aLm3Nq7Rt5Vw8Yb1Cd4Ef6Gh");
        assert_eq!(created(id, at, receipt), serde_json::to_vec(&CreatedBody { id, expires_at: at, receipt }).unwrap());
    }

    #[test]
    fn views_left_is_written_as_a_number() {
        assert_eq!(&message("x", 42)[..], br#"{"message":"x","views_left":42}"#);
        assert_eq!(&message("x", u32::MAX)[..], br#"{"message":"x","views_left":4294967295}"#);
    }
}
