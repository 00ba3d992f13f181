//! Prints the test vectors of docs/ENVELOPE.md as JSON (docs/envelope-vectors.json):
//! `cargo run -p crypt-envelope --example vectors > docs/envelope-vectors.json`.
//! They are made by this crate; the web page's tests check them with WebCrypto, independently.

use crypt_envelope::{seal_file_with, seal_with, FileMeta, Key};
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn seq<const N: usize>(start: u8, step: i16) -> [u8; N] {
    std::array::from_fn(|i| (i16::from(start) + step * i as i16) as u8)
}

/// name, key, passphrase, salt, nonce, plaintext
type Case = (&'static str, [u8; 32], Option<&'static str>, [u8; 16], [u8; 12], &'static str);

/// name, key, passphrase, salt, file nonce, (name, type, note), file bytes (text, or a pattern's length)
type FileCase =
    (&'static str, [u8; 32], Option<&'static str>, [u8; 16], [u8; 16], [&'static str; 3], Result<&'static str, usize>);

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn file_vectors() -> Vec<serde_json::Value> {
    let cases: [FileCase; 4] = [
        ("empty file", seq(0x00, 1), None, [0; 16], seq(0x40, 1), ["empty.txt", "text/plain", ""], Ok("")),
        (
            "a small file with a note",
            seq(0xff, -1),
            None,
            [0; 16],
            seq(0x80, 3),
            [".env", "", "for staging \u{1f510}"],
            Ok("API_KEY=abc123\nDB=postgres://x\n"),
        ),
        (
            "one whole piece, passphrase",
            seq(0x11, 2),
            Some("correct horse battery staple"),
            seq(0xb0, 1),
            seq(0x20, 5),
            ["key.pem", "application/x-pem-file", ""],
            Err(65_536 - 4 - (2 + 7 + 2 + 22 + 4)),
        ),
        (
            "three pieces, passphrase",
            seq(0x00, 1),
            Some("p\u{e4}ssw\u{f6}rd"),
            seq(0x10, 7),
            seq(0x50, 5),
            ["contract.pdf", "application/pdf", "signed copy"],
            Err(150_000),
        ),
    ];
    cases
        .iter()
        .map(|(name, key, passphrase, salt, nonce, [file_name, media_type, note], file)| {
            let key = Key::from_bytes(*key);
            let meta = FileMeta { name: (*file_name).into(), media_type: (*media_type).into(), note: (*note).into() };
            let bytes = match file {
                Ok(text) => text.as_bytes().to_vec(),
                Err(n) => pattern(*n),
            };
            let sealed = seal_file_with(&bytes, &meta, &key, *passphrase, *salt, *nonce).expect("seals");
            let mut v = serde_json::json!({
                "name": name,
                "key": key.encode(),
                "passphrase": passphrase,
                "salt_hex": hex(salt),
                "file_nonce_hex": hex(nonce),
                "meta": {"name": file_name, "type": media_type, "note": note},
                "envelope_length": sealed.len(),
            });
            match file {
                Ok(text) => {
                    v["file"] = serde_json::json!(text);
                    v["envelope_hex"] = serde_json::json!(hex(&sealed));
                }
                Err(n) => {
                    v["pattern_length"] = serde_json::json!(n);
                    v["envelope_sha256"] = serde_json::json!(hex(&Sha256::digest(&sealed)));
                }
            }
            v
        })
        .collect()
}

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
        "about": "Test vectors for docs/ENVELOPE.md. salt_hex is unused (zeros) without a passphrase. \
                  file_vectors: the file envelope (version 2); a file given by `pattern_length` is the bytes \
                  (i * 7) % 251 for i = 0..length, and a long envelope is given by its length and SHA-256.",
        "vectors": vectors,
        "file_vectors": file_vectors(),
    });
    println!("{}", serde_json::to_string_pretty(&doc).expect("JSON"));
}
