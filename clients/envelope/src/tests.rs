use super::*;

/// The test vectors of docs/ENVELOPE.md, which the web page's tests check too.
const VECTORS: &str = include_str!("../../../docs/envelope-vectors.json");

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn vectors() -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(VECTORS).unwrap()["vectors"].as_array().unwrap().clone()
}

#[test]
fn the_documented_vectors_seal_and_open_exactly() {
    let all = vectors();
    assert!(all.len() >= 4);
    for v in all {
        let name = v["name"].as_str().unwrap();
        let key = Key::decode(v["key"].as_str().unwrap()).unwrap();
        let passphrase = v["passphrase"].as_str();
        let salt: [u8; 16] = hex(v["salt_hex"].as_str().unwrap()).try_into().unwrap();
        let nonce: [u8; 12] = hex(v["nonce_hex"].as_str().unwrap()).try_into().unwrap();
        let plaintext = v["plaintext"].as_str().unwrap();
        let envelope = v["envelope"].as_str().unwrap();
        assert_eq!(seal_with(plaintext.as_bytes(), &key, passphrase, salt, nonce), envelope, "{name}");
        assert_eq!(open(envelope, &key, passphrase).unwrap(), plaintext.as_bytes(), "{name}");
    }
}

#[test]
fn a_passphrase_is_normalized_so_composed_and_decomposed_accents_match() {
    let key = Key::generate();
    let composed = "p\u{e4}ssw\u{f6}rd";
    let decomposed = "pa\u{308}sswo\u{308}rd";
    let sealed = seal(b"x", &key, Some(composed));
    assert_eq!(open(&sealed, &key, Some(decomposed)).unwrap(), b"x");
}

#[test]
fn round_trips_with_fresh_keys_nonces_and_salts() {
    let key = Key::generate();
    let a = seal("emoji 🔥 and\nnewlines".as_bytes(), &key, None);
    let b = seal("emoji 🔥 and\nnewlines".as_bytes(), &key, None);
    assert_ne!(a, b, "a fresh nonce each time");
    assert_eq!(open(&a, &key, None).unwrap(), "emoji 🔥 and\nnewlines".as_bytes());
    assert_ne!(Key::generate(), Key::generate());
}

#[test]
fn every_kind_of_damage_is_refused_with_its_reason_and_nothing_half_decrypted() {
    let key = Key::from_bytes([7; 32]);
    let plain = seal(b"secret", &key, None);
    let locked = seal(b"secret", &key, Some("hunter2"));
    // A flipped bit anywhere in the body.
    let decoded = URL_SAFE_NO_PAD.decode(&plain[PREFIX.len()..]).unwrap();
    for i in 0..decoded.len() {
        let mut bytes = decoded.clone();
        bytes[i] ^= 0x01;
        let flipped = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(open(&flipped, &key, None), Err(EnvelopeError::CannotDecrypt));
    }
    assert_eq!(open(&plain, &Key::from_bytes([8; 32]), None), Err(EnvelopeError::CannotDecrypt));
    assert_eq!(open(&locked, &key, Some("hunter3")), Err(EnvelopeError::CannotDecrypt));
    assert_eq!(open(&locked, &key, None), Err(EnvelopeError::PassphraseRequired));
    assert_eq!(open(&plain, &key, Some("hunter2")), Err(EnvelopeError::NoPassphraseExpected));
    // A prefix swapped to claim no passphrase fails authentication, not just parsing.
    let swapped = locked.replacen(PREFIX_PASSPHRASE, PREFIX, 1);
    assert_eq!(open(&swapped, &key, None), Err(EnvelopeError::CannotDecrypt));
    assert_eq!(open("crypt2:AAAA", &key, None), Err(EnvelopeError::UnknownVersion("crypt2".into())));
    assert_eq!(open("crypt1:***", &key, None), Err(EnvelopeError::Damaged("not base64url")));
    assert_eq!(open("crypt1:AAAA", &key, None), Err(EnvelopeError::Damaged("too short to hold a nonce and a tag")));
    for text in ["just a plain secret", "", "crypto: not ours", "crypt:nope"] {
        assert_eq!(open(text, &key, None), Err(EnvelopeError::NotAnEnvelope), "{text:?}");
    }
}

#[test]
fn keys_and_fragments_are_read_strictly() {
    let key = Key::from_bytes([0xAB; 32]);
    let f = Fragment { key: key.clone(), passphrase: true };
    assert_eq!(f.encode().len(), 45);
    assert_eq!(Fragment::decode(&format!("#{}", f.encode())).unwrap(), f);
    assert_eq!(Fragment::decode(&key.encode()).unwrap(), Fragment { key: key.clone(), passphrase: false });
    let encoded = key.encode();
    assert_eq!(encoded.len(), 43);
    assert!(matches!(Key::decode(&encoded[..42]), Err(EnvelopeError::BadKey(_))), "truncated");
    assert!(matches!(Key::decode(&format!("{encoded}AA")), Err(EnvelopeError::BadKey(_))), "too long");
    assert!(matches!(Key::decode(""), Err(EnvelopeError::BadKey(_))), "missing");
    assert!(matches!(
        Key::decode(&encoded.replace(|c: char| c.is_ascii_alphabetic(), "+")),
        Err(EnvelopeError::BadKey(_))
    ));
    assert_eq!(format!("{key:?}"), "Key(..)");
}

#[test]
fn the_largest_plaintext_fits_the_message_limit_exactly() {
    let max = max_plaintext(102_400);
    assert_eq!(max, 76_750);
    let key = Key::generate();
    for passphrase in [None, Some("p")] {
        assert!(seal(&vec![b'a'; max], &key, passphrase).len() <= 102_400);
    }
    assert!(seal(&vec![b'a'; max + 1], &key, Some("p")).len() > 102_400);
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn the_documented_file_vectors_seal_and_open_exactly() {
    use sha2::Digest;
    let doc = serde_json::from_str::<serde_json::Value>(VECTORS).unwrap();
    let all = doc["file_vectors"].as_array().unwrap();
    assert!(all.len() >= 4);
    for v in all {
        let key = Key::decode(v["key"].as_str().unwrap()).unwrap();
        let passphrase = v["passphrase"].as_str();
        let meta = crate::FileMeta {
            name: v["meta"]["name"].as_str().unwrap().into(),
            media_type: v["meta"]["type"].as_str().unwrap().into(),
            note: v["meta"]["note"].as_str().unwrap().into(),
        };
        let file = match v["file"].as_str() {
            Some(text) => text.as_bytes().to_vec(),
            None => pattern(v["pattern_length"].as_u64().unwrap() as usize),
        };
        let salt: [u8; 16] = unhex(v["salt_hex"].as_str().unwrap()).try_into().unwrap();
        let nonce: [u8; 16] = unhex(v["file_nonce_hex"].as_str().unwrap()).try_into().unwrap();
        let sealed = crate::seal_file_with(&file, &meta, &key, passphrase, salt, nonce).unwrap();
        assert_eq!(sealed.len() as u64, v["envelope_length"].as_u64().unwrap(), "{}", v["name"]);
        match v["envelope_hex"].as_str() {
            Some(h) => assert_eq!(sealed, unhex(h), "{}", v["name"]),
            None => assert_eq!(
                sha2::Sha256::digest(&sealed).iter().map(|b| format!("{b:02x}")).collect::<String>(),
                v["envelope_sha256"].as_str().unwrap(),
                "{}",
                v["name"]
            ),
        }
        let (got_meta, got) = crate::open_file(&sealed, &key, passphrase).unwrap();
        assert_eq!(got_meta, meta);
        assert!(got == file, "{}", v["name"]);
    }
}
