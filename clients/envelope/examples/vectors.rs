//! Prints the test vectors of docs/ENVELOPE.md as JSON (docs/envelope-vectors.json):
//! `cargo run -p crypt-envelope --example vectors > docs/envelope-vectors.json`.
//! They are made by this crate; the web page's tests check them with WebCrypto, independently.

use crypt_envelope::{seal_with, Key};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn seq<const N: usize>(start: u8, step: i16) -> [u8; N] {
    std::array::from_fn(|i| (i16::from(start) + step * i as i16) as u8)
}

/// name, key, passphrase, salt, nonce, plaintext
type Case = (&'static str, [u8; 32], Option<&'static str>, [u8; 16], [u8; 12], &'static str);

fn main() {
    let cases: [Case; 4] = [
        ("no passphrase", seq(0x00, 1), None, [0; 16], seq(0xa0, 1), "the vault code is 7421"),
        (
            "no passphrase, Unicode text",
            seq(0xff, -1),
            None,
            [0; 16],
            seq(0x00, 1),
            "emoji \u{1f525}, a newline\nand \"quotes\" 'too'",
        ),
        (
            "passphrase",
            seq(0x00, 1),
            Some("correct horse battery staple"),
            seq(0xb0, 1),
            seq(0xc0, 1),
            "the vault code is 7421",
        ),
        (
            "passphrase with accents (NFC)",
            seq(0x20, 3),
            Some("p\u{e4}ssw\u{f6}rd"),
            seq(0x10, 7),
            seq(0x50, 5),
            "日本語",
        ),
    ];
    let vectors: Vec<serde_json::Value> = cases
        .iter()
        .map(|(name, key, passphrase, salt, nonce, plaintext)| {
            let key = Key::from_bytes(*key);
            serde_json::json!({
                "name": name,
                "key": key.encode(),
                "passphrase": passphrase,
                "salt_hex": hex(salt),
                "nonce_hex": hex(nonce),
                "plaintext": plaintext,
                "envelope": seal_with(plaintext.as_bytes(), &key, *passphrase, *salt, *nonce),
            })
        })
        .collect();
    let doc = serde_json::json!({
        "about": "Test vectors for docs/ENVELOPE.md. salt_hex is unused (zeros) without a passphrase.",
        "vectors": vectors,
    });
    println!("{}", serde_json::to_string_pretty(&doc).expect("JSON"));
}
