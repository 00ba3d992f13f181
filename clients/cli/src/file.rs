//! Sending and receiving files (SPEC Part 2 item 11, docs/ENVELOPE.md version 2): the file is
//! sealed as it is read and sent as it is sealed, and opened as it arrives into a temporary file
//! that becomes the file only once its last piece has authenticated. Memory holds a piece or two
//! whatever the file's size.

use crypt_envelope::{FileMeta, FileSealer, Key};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The file envelope of a file, produced as it is read: what `crypt send --file` uploads.
pub struct SealingReader<R: Read> {
    input: io::Take<R>,
    sealer: Option<FileSealer<Vec<u8>>>,
    /// What the last piece left after the sealer finished.
    tail: Vec<u8>,
    at: usize,
    expected: u64,
    seen: u64,
    piece: Vec<u8>,
}

impl<R: Read> SealingReader<R> {
    /// Seals the `len` bytes `input` holds, described by `meta`.
    ///
    /// # Errors
    /// The metadata is too long.
    pub fn new(input: R, len: u64, key: &Key, passphrase: Option<&str>, meta: &FileMeta) -> io::Result<Self> {
        let sealer = FileSealer::new(Vec::with_capacity(2 * crypt_envelope::file::CHUNK), key, passphrase, meta)?;
        let piece = vec![0u8; crypt_envelope::file::CHUNK];
        Ok(Self {
            input: input.take(len),
            sealer: Some(sealer),
            tail: Vec::new(),
            at: 0,
            expected: len,
            seen: 0,
            piece,
        })
    }
}

impl<R: Read> Read for SealingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let ready = match &mut self.sealer {
                Some(sealer) => sealer.get_mut(),
                None => &mut self.tail,
            };
            if self.at < ready.len() {
                let n = out.len().min(ready.len() - self.at);
                out[..n].copy_from_slice(&ready[self.at..self.at + n]);
                self.at += n;
                if self.at == ready.len() {
                    ready.clear();
                    self.at = 0;
                }
                return Ok(n);
            }
            let Some(sealer) = &mut self.sealer else { return Ok(0) };
            let n = self.input.read(&mut self.piece)?;
            if n == 0 {
                if self.seen != self.expected {
                    return Err(io::Error::other("the file became shorter while it was being sent"));
                }
                self.tail = self.sealer.take().map(FileSealer::finish).transpose()?.unwrap_or_default();
                self.at = 0;
                continue;
            }
            self.seen += n as u64;
            sealer.write_all(&self.piece[..n])?;
        }
    }
}

/// A name that is safe to create in a folder, from the name the sender gave: its last path
/// component (so `../x` and `/etc/passwd` stay in the folder), without control characters,
/// at most 200 bytes; an empty name, `.` or `..` become `crypt-file`.
pub fn safe_name(given: &str) -> String {
    let last = given.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name: String = last.chars().filter(|c| !c.is_control()).collect();
    name = name.trim().to_owned();
    while name.len() > 200 {
        name.pop();
    }
    if name.is_empty() || name == "." || name == ".." {
        return "crypt-file".to_owned();
    }
    name
}

/// The media type a file's name suggests, for the reveal page's "Save" (the service never sees
/// it); empty when unknown.
pub fn media_type_of(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "txt" | "env" | "md" | "log" => "text/plain",
        "json" => "application/json",
        "pem" | "crt" | "key" => "application/x-pem-file",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        _ => "",
    }
}

/// What became of a received file.
pub enum Received {
    /// The file is in place at this path.
    Written(PathBuf),
    /// The envelope did not open: nothing was written.
    Refused(crypt_envelope::EnvelopeError),
    /// Writing failed: nothing was left behind.
    Io(String),
}

/// `name` in `dir`, or when that is taken (and not `force`), `name (1).ext`, `name (2).ext`…
pub fn free_name(dir: &Path, name: &str, force: bool) -> PathBuf {
    let first = dir.join(name);
    if force || !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    (1..10_000).map(|i| dir.join(format!("{stem} ({i}){ext}"))).find(|p| !p.exists()).unwrap_or(first)
}

/// Writes what `opener` gives (a file envelope's opener, or a text already opened) to `target`
/// (never over an existing file unless `force`),
/// through a temporary file beside it that is renamed into place only once the whole file has
/// authenticated, and removed otherwise.
pub fn receive(mut opener: impl Read, target: &Path, force: bool) -> Received {
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !force && target.exists() {
        return Received::Io(format!(
            "{} already exists; give --force to replace it, or -o another path",
            target.display()
        ));
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let temp = dir.join(format!(".crypt-partial-{}-{stamp}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(&temp) {
        Ok(f) => f,
        Err(e) => return Received::Io(format!("cannot create a file in {}: {e}", dir.display())),
    };
    let copied = io::copy(&mut opener, &mut file).and_then(|_| file.sync_all());
    drop(file);
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&temp);
        return match e.into_inner().and_then(|inner| inner.downcast::<crypt_envelope::EnvelopeError>().ok()) {
            Some(envelope) => Received::Refused(*envelope),
            None => Received::Io("the file could not be written or the download broke off".to_owned()),
        };
    }
    // No clobbering: a hard link fails when the name exists, atomically; a rename replaces.
    let placed = if force { std::fs::rename(&temp, target) } else { std::fs::hard_link(&temp, target) };
    let _ = std::fs::remove_file(&temp);
    match placed {
        Ok(()) => Received::Written(target.to_owned()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Received::Io(format!("{} already exists; give --force to replace it, or -o another path", target.display()))
        }
        Err(e) => Received::Io(format!("cannot write {}: {e}", target.display())),
    }
}

/// Writes what `opener` gives to stdout, piece by piece (each piece authenticated before it is
/// written). A file cut short or altered fails at that piece, after the pieces before it were
/// written: the caller says so, and exits with an error.
pub fn to_stdout(mut opener: impl Read) -> Result<u64, Received> {
    let mut out = io::stdout().lock();
    match io::copy(&mut opener, &mut out).and_then(|n| out.flush().map(|()| n)) {
        Ok(n) => Ok(n),
        Err(e) => Err(match e.into_inner().and_then(|inner| inner.downcast::<crypt_envelope::EnvelopeError>().ok()) {
            Some(envelope) => Received::Refused(*envelope),
            None => Received::Io("cannot write the file to stdout".to_owned()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_reduced_to_a_name_in_the_folder() {
        for (given, safe) in [
            ("report.pdf", "report.pdf"),
            ("../x", "x"),
            ("/etc/passwd", "passwd"),
            ("..\\..\\windows\\win.ini", "win.ini"),
            ("a\u{7}b\nc\u{1b}[31m.txt", "abc[31m.txt"),
            ("", "crypt-file"),
            ("..", "crypt-file"),
            ("dir/", "crypt-file"),
            (" \t", "crypt-file"),
            (".env", ".env"),
        ] {
            assert_eq!(safe_name(given), safe, "{given:?}");
        }
        assert!(safe_name(&"é".repeat(300)).len() <= 200);
    }

    #[test]
    fn the_sealing_reader_makes_exactly_the_envelope_that_opens() {
        let key = Key::generate();
        let meta = FileMeta { name: "a.bin".into(), media_type: String::new(), note: "n".into() };
        for len in [0usize, 1, 65_535, 65_536, 65_537, 200_000] {
            let file: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut sealed = Vec::new();
            SealingReader::new(&file[..], len as u64, &key, None, &meta).unwrap().read_to_end(&mut sealed).unwrap();
            assert_eq!(sealed.len() as u64, crypt_envelope::sealed_len(len as u64, &meta, false).unwrap(), "{len}");
            let (back_meta, back) = crypt_envelope::open_file(&sealed, &key, None).unwrap();
            assert_eq!((back_meta, back), (meta.clone(), file), "{len}");
        }
        // A file shorter than it said is refused rather than sent short.
        let mut sealed = Vec::new();
        let short = SealingReader::new(&b"abc"[..], 10, &key, None, &meta).unwrap().read_to_end(&mut sealed);
        assert!(short.is_err());
    }
}
