//! `crypt`: send a secret end-to-end encrypted, open a link, and, as its sender, learn whether
//! it was read or delete it unread.
//!
//! ```text
//! $ printf 'the vault code is 7421' | crypt send --ttl 1h
//! https://crypt.example/s/k3p9x#6Jq...
//! $ crypt open 'https://crypt.example/s/k3p9x#6Jq...'
//! the vault code is 7421
//! $ crypt status 'https://crypt.example/r/k3p9x#Rk2...'
//! read at 2026-12-03T09:12:44Z; destroyed
//! ```
//!
//! The secret is sealed here (crypt-envelope: AES-256-GCM, optional passphrase) before it is
//! sent; the key travels only in the link's fragment, which is never sent to the service.

mod file;
mod link;
mod service;

use clap::{Parser, Subcommand};
use crypt_envelope::{EnvelopeError, Fragment, Key};
use link::Link;
use service::{Fetched, Service, ServiceError};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use zeroize::Zeroizing;

/// Exit codes, as documented in the README.
mod exit {
    /// The service refused, failed or could not be reached.
    pub const SERVICE: u8 = 1;
    /// Bad usage, a bad link or input: nothing was fetched or sent.
    pub const USAGE: u8 = 2;
    /// The secret was fetched (so it is destroyed) but could not be opened.
    pub const UNOPENABLE: u8 = 3;
    /// No such secret: already read, expired, or never there (for `status` and `delete`: no
    /// such receipt, or it expired with its secret).
    pub const NOT_FOUND: u8 = 4;
    /// `delete` came too late: every view was read first, so there was nothing to delete.
    pub const ALREADY_READ: u8 = 5;
}

#[derive(Parser)]
#[command(name = "crypt", version, about = "Share a secret that can be read once, end-to-end encrypted.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encrypt a secret (from stdin or --file), store it, and print its share link.
    Send {
        /// The crypt service to store it on.
        #[arg(long, env = "CRYPT_SERVER", default_value = "http://127.0.0.1:8787")]
        server: String,
        /// How long the secret lives unread: seconds, or with a unit (90s, 15m, 2h, 1d).
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<u64>,
        /// How many times it can be read before it is destroyed (default 1; the service sets
        /// the most, 100 unless its operator changed it).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        views: Option<u32>,
        /// Also protect it with a passphrase, asked for without echo (twice).
        #[arg(long, conflicts_with = "passphrase_file")]
        passphrase: bool,
        /// Also protect it with the passphrase on the first line of this file.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// Send this file (a key, a PDF, a `.env`): its name, type and bytes, all encrypted.
        /// Without it, the secret is the text on stdin.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// A note sent with the file, encrypted with it (only with --file).
        #[arg(long, value_name = "TEXT", requires = "file")]
        note: Option<String>,
        /// The largest file the service takes, sealed (its CRYPT_MAX_FILE_BYTES): a larger one is
        /// refused here, before anything is sent.
        #[arg(long, env = "CRYPT_MAX_FILE_BYTES", default_value_t = 10_485_760, value_name = "BYTES")]
        max_file_bytes: u64,
        /// Print {"link", "id", "expires_at", "receipt_link"} as JSON instead of the bare link.
        #[arg(long)]
        json: bool,
        /// A create token, for a service that requires one (sent as `Authorization: Bearer`).
        #[arg(long, env = "CRYPT_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Fetch a secret (spending a view; the last destroys it), decrypt it, and write it to stdout.
    Open {
        /// The share link, with its `#key` part.
        link: String,
        /// The passphrase, from the first line of this file (otherwise asked for when needed).
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// Where a file goes: a path, a folder (the file keeps its name there), or `-` for
        /// stdout. Without it, the file is saved under its own name in the current folder
        /// (`name (1).ext` if that is taken). A text secret goes to stdout unless this is given.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Replace the file at --output if there is one.
        #[arg(long)]
        force: bool,
    },
    /// As the sender, with the receipt link `send` gave: whether the secret was read, and when.
    Status {
        /// The receipt link (`.../r/{id}#...`), or `-` to read it from stdin (kept out of shell
        /// history and the process list).
        receipt_link: String,
        /// Print the service's receipt as JSON ({"state", "views_left", "read_at", "expires_at"}).
        #[arg(long)]
        json: bool,
    },
    /// As the sender, with the receipt link `send` gave: destroy the secret before it is read.
    Delete {
        /// The receipt link (`.../r/{id}#...`), or `-` to read it from stdin (kept out of shell
        /// history and the process list).
        receipt_link: String,
        /// Print the service's receipt after the delete as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A failure with its exit code and one line for stderr.
struct Failure {
    code: u8,
    message: String,
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure { code, message: message.into() }
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        let code = match &e {
            ServiceError::Answered { status: 404, .. } => exit::NOT_FOUND,
            // The service answered the read: the secret is gone, though it never arrived.
            ServiceError::CutOff { read: true, .. } => exit::UNOPENABLE,
            _ => exit::SERVICE,
        };
        fail(code, e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Send { server, ttl, views, passphrase, passphrase_file, file, note, max_file_bytes, json, token } => {
            let service = Service::new(&server, token.as_deref());
            let file = file.map(|path| FileSending { path, note: note.unwrap_or_default(), max: max_file_bytes });
            let sending = Sending { ttl, views, ask_passphrase: passphrase, passphrase_file, file, json };
            service.map_err(|e| fail(exit::USAGE, e)).and_then(|service| send(&service, sending))
        }
        Command::Open { link, passphrase_file, output, force } => open(&link, passphrase_file, output, force),
        Command::Status { receipt_link, json } => status(&receipt_link, json),
        Command::Delete { receipt_link, json } => delete(&receipt_link, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("crypt: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn parse_ttl(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{text}' is not a duration like 90, 90s, 15m, 2h or 1d")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("'{text}' is not a duration like 90, 90s, 15m, 2h or 1d"))
}

/// The first line of `path`, without its line ending.
fn passphrase_from_file(path: &PathBuf) -> Result<Zeroizing<String>, Failure> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| fail(exit::USAGE, format!("cannot read the passphrase file {}: {e}", path.display())))?,
    );
    let line = Zeroizing::new(text.lines().next().unwrap_or("").to_owned());
    if line.is_empty() {
        return Err(fail(exit::USAGE, format!("the passphrase file {} is empty", path.display())));
    }
    Ok(line)
}

fn prompt(question: &str) -> Result<Zeroizing<String>, Failure> {
    rpassword::prompt_password(question)
        .map(Zeroizing::new)
        .map_err(|e| fail(exit::USAGE, format!("cannot ask for the passphrase (no terminal?): {e}")))
}

/// What `crypt send` was asked to do.
struct Sending {
    ttl: Option<u64>,
    views: Option<u32>,
    ask_passphrase: bool,
    passphrase_file: Option<PathBuf>,
    file: Option<FileSending>,
    json: bool,
}

/// `crypt send --file`: the file, its note, and the most the service takes.
struct FileSending {
    path: PathBuf,
    note: String,
    max: u64,
}

/// Seals the file as it is read and uploads it as it is sealed, after checking that it fits.
fn send_file(
    service: &Service,
    sending: &FileSending,
    passphrase: Option<&str>,
    ttl: Option<u64>,
    views: Option<u32>,
) -> Result<(service::Created, Key), Failure> {
    let path = &sending.path;
    let cannot = |e: std::io::Error| fail(exit::USAGE, format!("cannot read {}: {e}", path.display()));
    let input = std::fs::File::open(path).map_err(cannot)?;
    let metadata = input.metadata().map_err(cannot)?;
    if !metadata.is_file() {
        return Err(fail(exit::USAGE, format!("{} is not a file; nothing was sent", path.display())));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let meta = crypt_envelope::FileMeta {
        media_type: file::media_type_of(&name).to_owned(),
        name,
        note: sending.note.clone(),
    };
    let sealed = crypt_envelope::sealed_len(metadata.len(), &meta, passphrase.is_some())
        .map_err(|e| fail(exit::USAGE, format!("{e}; nothing was sent")))?;
    if sealed > sending.max {
        return Err(fail(
            exit::USAGE,
            format!(
                "{} is {} bytes, {sealed} once encrypted: over the service's limit of {} bytes \
                 (CRYPT_MAX_FILE_BYTES); nothing was sent",
                path.display(),
                metadata.len(),
                sending.max
            ),
        ));
    }
    let key = Key::generate();
    let body = file::SealingReader::new(input, metadata.len(), &key, passphrase, &meta)
        .map_err(|e| fail(exit::USAGE, format!("{e}; nothing was sent")))?;
    Ok((service.create_file(body, sealed, ttl, views)?, key))
}

fn send(service: &Service, sending: Sending) -> Result<(), Failure> {
    let Sending { ttl, views, ask_passphrase, passphrase_file, file, json } = sending;
    let passphrase = match (ask_passphrase, &passphrase_file) {
        (_, Some(path)) => Some(passphrase_from_file(path)?),
        (true, None) => {
            let first = prompt("Passphrase: ")?;
            if first.is_empty() {
                return Err(fail(exit::USAGE, "the passphrase is empty"));
            }
            if *prompt("Passphrase again: ")? != *first {
                return Err(fail(exit::USAGE, "the two passphrases differ; nothing was sent"));
            }
            Some(first)
        }
        (false, None) => None,
    };
    let (created, key) = match &file {
        Some(sending) => send_file(service, sending, passphrase.as_deref().map(String::as_str), ttl, views)?,
        None => {
            let secret = read_text_secret()?;
            let key = Key::generate();
            let envelope = crypt_envelope::seal(&secret, &key, passphrase.as_deref().map(String::as_str));
            (service.create(&envelope, ttl, views)?, key)
        }
    };
    let fragment = Fragment { key, passphrase: passphrase.is_some() };
    let link = Link::share(service.base(), &created.id, &fragment);
    let receipt_link = created.receipt.as_deref().map(|r| Link::receipt(service.base(), &created.id, r));
    let mut out = std::io::stdout().lock();
    let written = if json {
        let body = serde_json::json!({
            "link": link,
            "id": created.id,
            "expires_at": created.expires_at,
            "receipt_link": receipt_link,
        });
        writeln!(out, "{body}")
    } else {
        writeln!(out, "{link}")
    };
    written.map_err(|e| fail(exit::SERVICE, format!("the secret is stored but its link could not be written: {e}")))?;
    // The receipt link is the sender's alone: said to the person at the terminal, never on
    // stdout (which a pipe passes on with the share link) nor into a redirected stderr (a log).
    if let (Some(receipt_link), false, true) = (receipt_link, json, std::io::stderr().is_terminal()) {
        eprintln!("Your receipt link (keep it to yourself; it never opens the secret):");
        eprintln!("  {receipt_link}");
        eprintln!("`crypt status` with it says whether the secret was read; `crypt delete` destroys it unread.");
    }
    Ok(())
}

/// The text secret on stdin.
fn read_text_secret() -> Result<Zeroizing<Vec<u8>>, Failure> {
    // Read at most one byte past what fits: an endless pipe is refused without being held in
    // memory, and the buffer never grows (a grown buffer leaves copies of the secret behind in
    // freed memory, which `Zeroizing` cannot wipe).
    let max = crypt_envelope::max_plaintext(102_400);
    let mut secret = Zeroizing::new(Vec::with_capacity(max + 1));
    if std::io::stdin().is_terminal() {
        eprintln!("Type the secret, then Ctrl-D:");
    }
    let read = std::io::stdin()
        .take(max as u64 + 1)
        .read_to_end(&mut secret)
        .map_err(|e| fail(exit::USAGE, format!("cannot read stdin: {e}")))?;
    if read == 0 {
        return Err(fail(exit::USAGE, "nothing to send: the secret is empty"));
    }
    if read > max {
        return Err(fail(
            exit::USAGE,
            format!("the secret is more than {max} bytes, the most that fit once encrypted; send a file with --file"),
        ));
    }
    Ok(secret)
}

/// The receipt link's service, id and receipt; `-` reads the link from stdin's first line.
fn receipt_link(raw: &str) -> Result<(Service, String, Zeroizing<String>), Failure> {
    let mut typed = Zeroizing::new(String::new());
    let raw = if raw == "-" {
        // A link is short: read at most 4 KiB, so an endless pipe is not held.
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut typed)
            .map_err(|e| fail(exit::USAGE, format!("cannot read the receipt link from stdin: {e}")))?;
        typed.lines().next().unwrap_or("")
    } else {
        raw
    };
    let link = Link::parse_receipt(raw).map_err(|e| fail(exit::USAGE, e))?;
    let service = Service::new(&link.base, None).map_err(|e| fail(exit::USAGE, e))?;
    Ok((service, link.id, Zeroizing::new(link.fragment.unwrap_or_default())))
}

/// The service's 404 for a receipt, in the sender's words.
fn receipt_failure(e: ServiceError) -> Failure {
    match e {
        ServiceError::Answered { status: 404, .. } => fail(
            exit::NOT_FOUND,
            "no such receipt: it expired with its secret (a receipt lasts as long as the secret could have), \
             or the link is wrong",
        ),
        e => e.into(),
    }
}

/// A receipt in plain words: one line.
fn describe(r: &service::Receipt) -> String {
    let reads = match r.read_at.as_slice() {
        [] => String::new(),
        [at] => format!("read at {at}"),
        [first, .., last] => format!("read {} times, first at {first}, last at {last}", r.read_at.len()),
    };
    match (r.state.as_str(), reads.is_empty()) {
        ("unread", _) => format!("unread; {} left; expires at {}", views(r.views_left), r.expires_at),
        ("deleted", true) => "deleted unread by the sender; nobody can read it now".to_owned(),
        ("deleted", false) => format!("{reads}, then deleted by the sender; nobody can read it now"),
        (_, _) if r.views_left == 0 => format!("{reads}; destroyed"),
        (_, _) => format!("{reads}; {} left; expires at {}", views(r.views_left), r.expires_at),
    }
}

fn times(n: u64) -> String {
    if n == 1 {
        "1 time".to_owned()
    } else {
        format!("{n} times")
    }
}

fn views(n: u64) -> String {
    if n == 1 {
        "1 view".to_owned()
    } else {
        format!("{n} views")
    }
}

fn print_receipt(receipt: &service::Receipt, json: bool) -> Result<(), Failure> {
    let text = if json { serde_json::to_string(receipt).unwrap_or_default() } else { describe(receipt) };
    writeln!(std::io::stdout().lock(), "{text}").map_err(|e| fail(exit::SERVICE, format!("cannot write: {e}")))
}

fn status(raw_link: &str, json: bool) -> Result<(), Failure> {
    let (service, id, receipt) = receipt_link(raw_link)?;
    let answer = service.receipt(&id, &receipt).map_err(receipt_failure)?;
    print_receipt(&answer, json)
}

fn delete(raw_link: &str, json: bool) -> Result<(), Failure> {
    let (service, id, receipt) = receipt_link(raw_link)?;
    let answer = service.delete(&id, &receipt).map_err(receipt_failure)?;
    print_receipt(&answer, json)?;
    if answer.state == "deleted" {
        Ok(())
    } else {
        Err(fail(exit::ALREADY_READ, "too late: every view was read before the delete, so nothing was deleted"))
    }
}

fn open(raw_link: &str, passphrase_file: Option<PathBuf>, output: Option<PathBuf>, force: bool) -> Result<(), Failure> {
    // Everything that can be checked before fetching is: a fetch destroys the secret.
    let link = Link::parse(raw_link).map_err(|e| fail(exit::USAGE, e))?;
    let fragment = match &link.fragment {
        Some(f) => Some(Fragment::decode(f).map_err(|e| fail(exit::USAGE, format!("{e}; nothing was fetched")))?),
        None => None,
    };
    let Some(fragment) = fragment else {
        return Err(fail(
            exit::USAGE,
            "the link has no key (the part after '#'); ask the sender for the whole link. Nothing was fetched",
        ));
    };
    let interactive = std::io::stdin().is_terminal() || std::fs::File::open("/dev/tty").is_ok();
    let mut passphrase = match (&passphrase_file, fragment.passphrase) {
        (Some(_), false) => {
            return Err(fail(exit::USAGE, "this link was not sent with a passphrase; nothing was fetched"));
        }
        (Some(path), true) => Some(passphrase_from_file(path)?),
        (None, true) if !interactive => {
            return Err(fail(
                exit::USAGE,
                "this link needs a passphrase: run in a terminal or give --passphrase-file; nothing was fetched",
            ));
        }
        (None, true) => Some(prompt("Passphrase: ")?),
        (None, false) => None,
    };
    // An --output that names an existing file (not a folder) is refused before the fetch.
    let stdout = output.as_deref() == Some(std::path::Path::new("-"));
    if let Some(path) = output.as_ref().filter(|p| !stdout && !force && p.exists() && !p.is_dir()) {
        return Err(fail(
            exit::USAGE,
            format!("{} already exists; give --force to replace it. Nothing was fetched", path.display()),
        ));
    }
    let service = Service::new(&link.base, None).map_err(|e| fail(exit::USAGE, e))?;
    let read = match service.read(&link.id)? {
        Fetched::Text(read) => read,
        Fetched::File { body, views_left } => {
            let target = Output { path: output, stdout, force };
            return open_file(body, views_left, &fragment, passphrase, passphrase_file.is_some(), &target);
        }
    };
    let message = Zeroizing::new(read.message);
    if read.views_left > 0 {
        eprintln!("crypt: this link can be opened {} more before it is destroyed", times(read.views_left));
    }
    let mut tries = 1;
    let plaintext = loop {
        match crypt_envelope::open(&message, &fragment.key, passphrase.as_deref().map(String::as_str)) {
            Ok(plaintext) => break Zeroizing::new(plaintext),
            Err(EnvelopeError::NotAnEnvelope) => {
                eprintln!("crypt: warning: this secret was not end-to-end encrypted (the service saw it as it is)");
                break Zeroizing::new(message.as_bytes().to_vec());
            }
            Err(EnvelopeError::CannotDecrypt) if passphrase_file.is_none() && fragment.passphrase && tries < 3 => {
                eprintln!("crypt: wrong passphrase, try again");
                passphrase = Some(prompt("Passphrase: ")?);
                tries += 1;
            }
            Err(e) => {
                return Err(fail(
                    exit::UNOPENABLE,
                    format!("{e}. The secret was destroyed on the service when it was fetched"),
                ))
            }
        }
    };
    if let Some(path) = output.filter(|_| !stdout) {
        // Read from the zeroized buffer itself: a copy would leave the secret in freed memory.
        return match file::receive(&plaintext[..], &path, force) {
            file::Received::Written(path) => {
                eprintln!("crypt: the secret is in {}", path.display());
                Ok(())
            }
            file::Received::Refused(e) => Err(fail(exit::UNOPENABLE, e.to_string())),
            file::Received::Io(why) => {
                Err(fail(exit::UNOPENABLE, format!("{why}. The secret was destroyed on the service")))
            }
        };
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&plaintext)
        .and_then(|()| out.flush())
        .map_err(|e| fail(exit::UNOPENABLE, format!("cannot write the secret: {e}")))
}

/// Where `crypt open` puts a file.
struct Output {
    path: Option<PathBuf>,
    stdout: bool,
    force: bool,
}

/// The bytes of a file envelope's first piece (and its header): kept so that a wrong
/// passphrase can be asked again without fetching anything more.
const FIRST_PIECE: u64 = 40 + crypt_envelope::file::CHUNK as u64 + 17;

/// Opens a file envelope as it arrives and writes the file where `target` says.
fn open_file(
    mut body: impl Read,
    views_left: u64,
    fragment: &Fragment,
    mut passphrase: Option<Zeroizing<String>>,
    from_file: bool,
    target: &Output,
) -> Result<(), Failure> {
    if views_left > 0 {
        eprintln!("crypt: this link can be opened {} more before it is destroyed", times(views_left));
    }
    let destroyed = ". The secret was destroyed on the service when it was fetched";
    let mut first = Vec::new();
    (&mut body)
        .take(FIRST_PIECE)
        .read_to_end(&mut first)
        .map_err(|_| fail(exit::UNOPENABLE, format!("the download broke off{destroyed}")))?;
    let mut tries = 1;
    let opener = loop {
        let input = (&first[..]).chain(&mut body);
        match crypt_envelope::FileOpener::new(input, &fragment.key, passphrase.as_deref().map(String::as_str)) {
            Ok(opener) => break opener,
            Err(EnvelopeError::CannotDecrypt) if !from_file && fragment.passphrase && tries < 3 => {
                eprintln!("crypt: wrong passphrase, try again");
                passphrase = Some(prompt("Passphrase: ")?);
                tries += 1;
            }
            Err(e) => return Err(fail(exit::UNOPENABLE, format!("{e}; nothing was written{destroyed}"))),
        }
    };
    let meta = opener.meta().clone();
    if !meta.note.is_empty() {
        eprintln!(
            "crypt: the sender's note: {}",
            meta.note.chars().filter(|c| !c.is_control() || *c == '\n').collect::<String>()
        );
    }
    if target.stdout {
        return match file::to_stdout(opener) {
            Ok(_) => Ok(()),
            Err(file::Received::Refused(e)) => Err(fail(
                exit::UNOPENABLE,
                format!("{e}: what was written to stdout is incomplete and must be thrown away{destroyed}"),
            )),
            Err(_) => Err(fail(exit::UNOPENABLE, format!("cannot write the file to stdout{destroyed}"))),
        };
    }
    let name = file::safe_name(&meta.name);
    let path = match &target.path {
        Some(dir) if dir.is_dir() => file::free_name(dir, &name, target.force),
        Some(path) => path.clone(),
        None => file::free_name(std::path::Path::new("."), &name, target.force),
    };
    match file::receive(opener, &path, target.force) {
        file::Received::Written(path) => {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            eprintln!("crypt: saved {} ({size} bytes)", path.display());
            Ok(())
        }
        file::Received::Refused(e) => Err(fail(exit::UNOPENABLE, format!("{e}; nothing was written{destroyed}"))),
        file::Received::Io(why) => Err(fail(exit::UNOPENABLE, format!("{why}; nothing was written{destroyed}"))),
    }
}
