//! The file envelope (`docs/ENVELOPE.md`, version 2): a file's name, type, an optional note and
//! its bytes, sealed piece by piece so that both ends hold one 64 KiB piece at a time, and a
//! truncated, reordered or spliced file is refused.
//!
//! The anchor is age's STREAM: a key of its own per file (HKDF-SHA256 of the link's key, or of
//! the passphrase-mixed key, with a random 16-byte file nonce), then AES-256-GCM over 64 KiB
//! pieces, each under the nonce `counter (11 bytes, big-endian) ‖ last (1 byte)`, with the
//! header as associated data. A piece cut off, moved or taken from another file fails its tag.

use crate::{cipher_key, random, EnvelopeError, Key, SALT_LEN, TAG_LEN};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::{self, Read, Write};
use zeroize::Zeroizing;

/// The first bytes of every file envelope.
pub const FILE_MAGIC: &[u8; 7] = b"crypt2f";
/// Bytes of plaintext in every piece but the last (which holds 1 to this many).
pub const CHUNK: usize = 64 * 1024;
/// Bytes of the random file nonce that makes each file's key its own.
pub const FILE_NONCE_LEN: usize = 16;
/// The most bytes the name, type and note may take together (so that an opener bounds what it
/// holds before the file's bytes begin).
pub const MAX_META: usize = 65_536;
/// HKDF's `info` for the file's key.
const INFO: &[u8] = b"crypt2f payload";

/// What travels with the file's bytes, encrypted: the service never learns it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileMeta {
    /// The file's name as the sender had it (an opener must make it safe before using it).
    pub name: String,
    /// Its media type (`application/pdf`), or empty when unknown.
    pub media_type: String,
    /// A note from the sender, or empty.
    pub note: String,
}

impl FileMeta {
    /// `u16 name length ‖ name ‖ u16 type length ‖ type ‖ u32 note length ‖ note`, big-endian,
    /// UTF-8.
    fn encode(&self) -> Result<Vec<u8>, EnvelopeError> {
        let (name, kind, note) = (self.name.as_bytes(), self.media_type.as_bytes(), self.note.as_bytes());
        if name.len() > usize::from(u16::MAX) || kind.len() > usize::from(u16::MAX) {
            return Err(EnvelopeError::Damaged("the file's name or type is too long"));
        }
        let mut out = Vec::with_capacity(8 + name.len() + kind.len() + note.len());
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&(kind.len() as u16).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(&(note.len() as u32).to_be_bytes());
        out.extend_from_slice(note);
        if out.len() > MAX_META {
            return Err(EnvelopeError::Damaged("the file's name, type and note are longer than 64 KiB"));
        }
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let bad = EnvelopeError::Damaged("the file's name, type or note is malformed");
        let mut at = 0;
        let mut take = |n: usize| -> Result<&[u8], EnvelopeError> {
            let piece = bytes.get(at..at + n).ok_or(bad.clone())?;
            at += n;
            Ok(piece)
        };
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| bad.clone());
        let n = u16::from_be_bytes(take(2)?.try_into().map_err(|_| bad.clone())?) as usize;
        let name = text(take(n)?)?;
        let n = u16::from_be_bytes(take(2)?.try_into().map_err(|_| bad.clone())?) as usize;
        let media_type = text(take(n)?)?;
        let n = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad.clone())?) as usize;
        let note = text(take(n)?)?;
        if at != bytes.len() {
            return Err(bad);
        }
        Ok(Self { name, media_type, note })
    }
}

/// The header: the magic, the mode (0: the link's key alone, 1: a passphrase too), the salt
/// (mode 1 only) and the file nonce.
fn header(salt: Option<&[u8; SALT_LEN]>, file_nonce: &[u8; FILE_NONCE_LEN]) -> Vec<u8> {
    let mut h = FILE_MAGIC.to_vec();
    h.push(u8::from(salt.is_some()));
    if let Some(salt) = salt {
        h.extend_from_slice(salt);
    }
    h.extend_from_slice(file_nonce);
    h
}

/// HKDF-SHA256 (RFC 5869) of `ikm` with `salt` and [`INFO`], 32 bytes: one block of expand.
fn file_key(ikm: &[u8; 32], salt: &[u8; FILE_NONCE_LEN]) -> Zeroizing<[u8; 32]> {
    let mut extract = <Hmac<Sha256> as Mac>::new_from_slice(salt).expect("HMAC takes a key of any length");
    extract.update(ikm);
    let prk = Zeroizing::new(<[u8; 32]>::from(extract.finalize().into_bytes()));
    let mut expand = <Hmac<Sha256> as Mac>::new_from_slice(&*prk).expect("HMAC takes a key of any length");
    expand.update(INFO);
    expand.update(&[1]);
    Zeroizing::new(expand.finalize().into_bytes().into())
}

fn piece_nonce(counter: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Seals a file as it is written: the header at once, then one piece each time 64 KiB more than
/// a piece is buffered, and the last piece at [`FileSealer::finish`]. Holds at most one piece.
pub struct FileSealer<W: Write> {
    out: W,
    cipher: Aes256Gcm,
    aad: Vec<u8>,
    counter: u64,
    pending: Zeroizing<Vec<u8>>,
    /// Set when a write failed: the output is then incomplete, and every later call fails.
    failed: bool,
}

impl<W: Write> std::fmt::Debug for FileSealer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSealer").field("counter", &self.counter).finish_non_exhaustive()
    }
}

impl<W: Write> FileSealer<W> {
    /// Starts sealing a file described by `meta` into `out`, under `key` (and `passphrase`),
    /// with a fresh salt and file nonce.
    ///
    /// # Errors
    /// The metadata is too long, or `out` fails.
    pub fn new(out: W, key: &Key, passphrase: Option<&str>, meta: &FileMeta) -> io::Result<Self> {
        Self::new_with(out, key, passphrase, meta, random(), random())
    }

    /// [`FileSealer::new`] with a given salt and file nonce: for test vectors only.
    ///
    /// # Errors
    /// As [`FileSealer::new`].
    pub fn new_with(
        mut out: W,
        key: &Key,
        passphrase: Option<&str>,
        meta: &FileMeta,
        salt: [u8; SALT_LEN],
        file_nonce: [u8; FILE_NONCE_LEN],
    ) -> io::Result<Self> {
        let meta = meta.encode().map_err(io::Error::other)?;
        let aad = header(passphrase.map(|_| &salt), &file_nonce);
        let ikm = cipher_key(key, passphrase.map(|p| (p, &salt[..])));
        let cipher = Aes256Gcm::new_from_slice(&*file_key(&ikm, &file_nonce)).expect("a 32-byte key");
        out.write_all(&aad)?;
        let mut sealer = Self {
            out,
            cipher,
            aad,
            counter: 0,
            pending: Zeroizing::new(Vec::with_capacity(CHUNK + 1)),
            failed: false,
        };
        sealer.write_all(&(meta.len() as u32).to_be_bytes())?;
        sealer.write_all(&meta)?;
        Ok(sealer)
    }

    fn seal_piece(&mut self, last: bool) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("an earlier write failed: the sealed file is incomplete"));
        }
        self.failed = true;
        let take = self.pending.len().min(CHUNK);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&piece_nonce(self.counter, last)),
                Payload { msg: &self.pending[..take], aad: &self.aad },
            )
            .map_err(|_| io::Error::other("AES-GCM failed"))?;
        self.pending.drain(..take);
        self.counter += 1;
        self.out.write_all(&sealed)?;
        self.failed = false;
        Ok(())
    }

    /// The writer, for a caller that drains what was sealed so far (a reader that streams the
    /// envelope out as it is made).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Seals the last piece and gives back the writer.
    ///
    /// # Errors
    /// The writer fails.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_piece(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for FileSealer<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("an earlier write failed: the sealed file is incomplete"));
        }
        // A piece is sealed only once more follows it: the last piece is sealed at `finish`,
        // whatever its size.
        let room = CHUNK + 1 - self.pending.len();
        let n = bytes.len().min(room);
        self.pending.extend_from_slice(&bytes[..n]);
        if self.pending.len() > CHUNK {
            self.seal_piece(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The sealed size of a file of `file_bytes` with `meta`: what the service is sent and counts
/// against its limit.
///
/// # Errors
/// The metadata is too long.
pub fn sealed_len(file_bytes: u64, meta: &FileMeta, passphrase: bool) -> Result<u64, EnvelopeError> {
    let stream = 4 + meta.encode()?.len() as u64 + file_bytes;
    let pieces = stream.div_ceil(CHUNK as u64).max(1);
    let head = (FILE_MAGIC.len() + 1 + FILE_NONCE_LEN + if passphrase { SALT_LEN } else { 0 }) as u64;
    Ok(head + stream + pieces * TAG_LEN as u64)
}

/// True when `bytes` begin like a file envelope.
pub fn is_file_envelope(bytes: &[u8]) -> bool {
    bytes.starts_with(FILE_MAGIC)
}

/// Opens a file envelope as it is read: [`FileOpener::new`] reads the header and the pieces
/// holding the name, type and note; reading it then gives the file's bytes, one piece at a time.
/// A read fails (`InvalidData`, with an [`EnvelopeError`] inside) at the first piece that does
/// not authenticate, including a file cut short: whatever was read before it must then be
/// thrown away, so write to a temporary file and keep it only when reading ends without error.
pub struct FileOpener<R: Read> {
    input: R,
    cipher: Aes256Gcm,
    aad: Vec<u8>,
    counter: u64,
    /// Ciphertext read ahead: up to one piece and one byte, to tell the last piece.
    ahead: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
    at: usize,
    done: bool,
    meta: FileMeta,
}

impl<R: Read> std::fmt::Debug for FileOpener<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileOpener").field("counter", &self.counter).field("done", &self.done).finish_non_exhaustive()
    }
}

fn read_up_to(input: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    while buf.len() < want {
        let start = buf.len();
        buf.resize(want, 0);
        match input.read(&mut buf[start..]) {
            Ok(0) => {
                buf.truncate(start);
                return Ok(());
            }
            Ok(n) => buf.truncate(start + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(start),
            Err(e) => {
                buf.truncate(start);
                return Err(e);
            }
        }
    }
    Ok(())
}

fn invalid(e: EnvelopeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<R: Read> FileOpener<R> {
    /// Reads the header and the name, type and note.
    ///
    /// # Errors
    /// [`EnvelopeError::NotAnEnvelope`] when `input` is not a file envelope; the passphrase
    /// errors as for text; [`EnvelopeError::CannotDecrypt`] for a wrong key or passphrase;
    /// [`EnvelopeError::Damaged`] when it is cut short or altered.
    pub fn new(mut input: R, key: &Key, passphrase: Option<&str>) -> Result<Self, EnvelopeError> {
        let mut head = Vec::new();
        read_up_to(&mut input, &mut head, FILE_MAGIC.len() + 1).map_err(|_| EnvelopeError::Damaged("unreadable"))?;
        if !head.starts_with(FILE_MAGIC) || head.len() < FILE_MAGIC.len() + 1 {
            return Err(EnvelopeError::NotAnEnvelope);
        }
        let with_passphrase = match head[FILE_MAGIC.len()] {
            0 => false,
            1 => true,
            _ => return Err(EnvelopeError::UnknownVersion("crypt2f with an unknown mode".into())),
        };
        match (with_passphrase, passphrase) {
            (true, None) => return Err(EnvelopeError::PassphraseRequired),
            (false, Some(_)) => return Err(EnvelopeError::NoPassphraseExpected),
            _ => {}
        }
        let head_len = FILE_MAGIC.len() + 1 + FILE_NONCE_LEN + if with_passphrase { SALT_LEN } else { 0 };
        read_up_to(&mut input, &mut head, head_len).map_err(|_| EnvelopeError::Damaged("unreadable"))?;
        if head.len() < head_len {
            return Err(EnvelopeError::Damaged("cut short in its header"));
        }
        let salt = &head[FILE_MAGIC.len() + 1..head_len - FILE_NONCE_LEN];
        let file_nonce: [u8; FILE_NONCE_LEN] = head[head_len - FILE_NONCE_LEN..].try_into().expect("16 bytes");
        let ikm = cipher_key(key, passphrase.map(|p| (p, salt)));
        let cipher = Aes256Gcm::new_from_slice(&*file_key(&ikm, &file_nonce)).expect("a 32-byte key");
        let mut opener = Self {
            input,
            cipher,
            aad: head,
            counter: 0,
            ahead: Vec::with_capacity(CHUNK + TAG_LEN + 1),
            plain: Zeroizing::new(Vec::with_capacity(CHUNK)),
            at: 0,
            done: false,
            meta: FileMeta::default(),
        };
        let unwrap = |e: io::Error| match e.into_inner().and_then(|inner| inner.downcast::<EnvelopeError>().ok()) {
            Some(e) => *e,
            None => EnvelopeError::Damaged("unreadable"),
        };
        let mut len = [0u8; 4];
        opener.read_exact(&mut len).map_err(unwrap)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_META {
            return Err(EnvelopeError::Damaged("the file's name, type and note are longer than 64 KiB"));
        }
        let mut meta = vec![0u8; len];
        opener.read_exact(&mut meta).map_err(unwrap)?;
        opener.meta = FileMeta::decode(&meta)?;
        Ok(opener)
    }

    /// The file's name, type and note.
    pub fn meta(&self) -> &FileMeta {
        &self.meta
    }

    /// Opens the next piece into `plain`.
    fn next_piece(&mut self) -> io::Result<()> {
        read_up_to(&mut self.input, &mut self.ahead, CHUNK + TAG_LEN + 1)?;
        let last = self.ahead.len() <= CHUNK + TAG_LEN;
        let take = self.ahead.len().min(CHUNK + TAG_LEN);
        if take <= TAG_LEN {
            // Every envelope ends with a piece of at least one byte: this one was cut short.
            return Err(invalid(EnvelopeError::Damaged("the file was cut short")));
        }
        let opened = self
            .cipher
            .decrypt(
                Nonce::from_slice(&piece_nonce(self.counter, last)),
                Payload { msg: &self.ahead[..take], aad: &self.aad },
            )
            .map_err(|_| {
                invalid(if self.counter == 0 {
                    EnvelopeError::CannotDecrypt
                } else {
                    EnvelopeError::Damaged("a piece of the file is missing, out of order or altered")
                })
            })?;
        self.ahead.drain(..take);
        self.counter += 1;
        self.plain = Zeroizing::new(opened);
        self.at = 0;
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for FileOpener<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.plain.len() {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            self.next_piece()?;
        }
        let n = out.len().min(self.plain.len() - self.at);
        out[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Seals a whole file held in memory (tests, small files): header and pieces.
///
/// # Errors
/// The metadata is too long.
pub fn seal_file_with(
    file: &[u8],
    meta: &FileMeta,
    key: &Key,
    passphrase: Option<&str>,
    salt: [u8; SALT_LEN],
    file_nonce: [u8; FILE_NONCE_LEN],
) -> Result<Vec<u8>, EnvelopeError> {
    let sealed = (|| {
        let mut sealer = FileSealer::new_with(Vec::new(), key, passphrase, meta, salt, file_nonce)?;
        sealer.write_all(file)?;
        sealer.finish()
    })();
    sealed.map_err(|_| EnvelopeError::Damaged("the file's name, type and note are longer than 64 KiB"))
}

/// Opens a whole file envelope held in memory: its metadata and bytes, or an error and nothing.
///
/// # Errors
/// As [`FileOpener::new`] and its reads.
pub fn open_file(envelope: &[u8], key: &Key, passphrase: Option<&str>) -> Result<(FileMeta, Vec<u8>), EnvelopeError> {
    let mut opener = FileOpener::new(envelope, key, passphrase)?;
    let mut file = Vec::new();
    opener.read_to_end(&mut file).map_err(|e| {
        match e.into_inner().and_then(|i| i.downcast::<EnvelopeError>().ok()) {
            Some(e) => *e,
            None => EnvelopeError::Damaged("unreadable"),
        }
    })?;
    Ok((opener.meta().clone(), file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::from_bytes(std::array::from_fn(|i| i as u8))
    }

    fn meta() -> FileMeta {
        FileMeta { name: "report.pdf".into(), media_type: "application/pdf".into(), note: "the Q3 one".into() }
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// Sizes around the piece boundaries (the stream is 4 + metadata + file bytes).
    #[test]
    fn files_of_every_size_round_trip_in_pieces() {
        let m = meta();
        let stream_extra = 4 + m.encode().unwrap().len();
        for size in [0, 1, CHUNK - stream_extra - 1, CHUNK - stream_extra, CHUNK - stream_extra + 1, 3 * CHUNK + 5] {
            for pass in [None, Some("pässwörd")] {
                let file = pattern(size);
                let sealed = seal_file_with(&file, &m, &key(), pass, [7; 16], [9; 16]).unwrap();
                assert_eq!(sealed.len() as u64, sealed_len(size as u64, &m, pass.is_some()).unwrap(), "size {size}");
                let (got_meta, got) = open_file(&sealed, &key(), pass).unwrap();
                assert_eq!((got_meta, got.len()), (m.clone(), size));
                assert!(got == file, "size {size}");
            }
        }
    }

    #[test]
    fn a_file_cut_short_reordered_spliced_or_altered_is_refused() {
        let m = meta();
        let file = pattern(3 * CHUNK);
        let sealed = seal_file_with(&file, &m, &key(), None, [0; 16], [1; 16]).unwrap();
        let head = FILE_MAGIC.len() + 1 + FILE_NONCE_LEN;
        let piece = CHUNK + TAG_LEN;
        let damaged = |bytes: &[u8]| open_file(bytes, &key(), None).unwrap_err();
        // Cut at a piece boundary: the piece before the cut was not sealed as the last.
        assert!(matches!(damaged(&sealed[..head + 2 * piece]), EnvelopeError::Damaged(_)));
        // Cut inside a piece, and to the header alone.
        assert!(matches!(damaged(&sealed[..sealed.len() - 1]), EnvelopeError::Damaged(_)));
        assert!(matches!(damaged(&sealed[..head]), EnvelopeError::Damaged(_)));
        // Two pieces swapped.
        let mut swapped = sealed.clone();
        let (a, b) = (head + piece, head + 2 * piece);
        let second = sealed[a..b].to_vec();
        swapped[a..b].copy_from_slice(&sealed[b..b + piece]);
        swapped[b..b + piece].copy_from_slice(&second);
        assert!(matches!(damaged(&swapped), EnvelopeError::Damaged(_)));
        // A piece from another file under the same key (another file nonce).
        let other = seal_file_with(&file, &m, &key(), None, [0; 16], [2; 16]).unwrap();
        let mut spliced = sealed.clone();
        spliced[a..b].copy_from_slice(&other[a..b]);
        assert!(matches!(damaged(&spliced), EnvelopeError::Damaged(_)));
        // One bit of the last piece, and of the header (its mode, then its nonce).
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(damaged(&flipped), EnvelopeError::Damaged(_)));
        let mut nonce = sealed.clone();
        nonce[head - 1] ^= 1;
        assert_eq!(damaged(&nonce), EnvelopeError::CannotDecrypt);
        let mut mode = sealed.clone();
        mode[FILE_MAGIC.len()] = 1;
        assert_eq!(
            open_file(&mode, &key(), Some("x")).unwrap_err(),
            EnvelopeError::CannotDecrypt,
            "the mode is authenticated"
        );
    }

    #[test]
    fn a_wrong_key_or_passphrase_opens_nothing() {
        let sealed = seal_file_with(b"secret bytes", &meta(), &key(), Some("right"), [3; 16], [4; 16]).unwrap();
        assert_eq!(open_file(&sealed, &key(), Some("wrong")).unwrap_err(), EnvelopeError::CannotDecrypt);
        assert_eq!(open_file(&sealed, &key(), None).unwrap_err(), EnvelopeError::PassphraseRequired);
        assert_eq!(
            open_file(&sealed, &Key::from_bytes([0; 32]), Some("right")).unwrap_err(),
            EnvelopeError::CannotDecrypt
        );
        let plain = seal_file_with(b"x", &meta(), &key(), None, [3; 16], [4; 16]).unwrap();
        assert_eq!(open_file(&plain, &key(), Some("p")).unwrap_err(), EnvelopeError::NoPassphraseExpected);
        assert_eq!(open_file(b"crypt1:abc", &key(), None).unwrap_err(), EnvelopeError::NotAnEnvelope);
    }

    #[test]
    fn the_opener_holds_one_piece_at_a_time() {
        let file = pattern(10 * CHUNK);
        let sealed = seal_file_with(&file, &meta(), &key(), None, [0; 16], [5; 16]).unwrap();
        let mut opener = FileOpener::new(&sealed[..], &key(), None).unwrap();
        assert_eq!(opener.meta().name, "report.pdf");
        let mut buf = [0u8; 1000];
        let n = opener.read(&mut buf).unwrap();
        assert!(n > 0);
        assert!(opener.plain.capacity() <= CHUNK + TAG_LEN, "{}", opener.plain.capacity());
        assert!(opener.ahead.capacity() <= 2 * (CHUNK + TAG_LEN + 1), "{}", opener.ahead.capacity());
    }
}
