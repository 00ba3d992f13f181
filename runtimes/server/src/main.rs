//! The `crypt-server` binary: settings, logs, serve until SIGTERM or Ctrl-C.
//!
//! `crypt-server healthcheck` instead asks a running server's `/healthz` (on the address its
//! settings name) and exits 0 when it answers 200: the container image has no shell or curl.
//! `crypt-server backup FILE` copies the SQLite database the settings name (`VACUUM INTO`).
//! `--help` and `--version` print and exit; any other argument is refused (exit 2), since the
//! settings are environment variables and a stray argument is more likely a mistake than a wish
//! to start a server on the defaults.

use crypt_server::{spawn, Config};
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {}
        ["healthcheck"] => return healthcheck(),
        ["backup", to] => return backup(to),
        ["-h" | "--help" | "help"] => {
            print!("{}", crypt_server::HELP);
            return ExitCode::SUCCESS;
        }
        ["-V" | "--version"] => {
            println!("crypt-server {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!(
                "crypt-server: unexpected argument '{}': settings are environment variables (CRYPT_LISTEN=..., \
                 see crypt-server --help); the commands are healthcheck and backup FILE",
                args.join(" ")
            );
            return ExitCode::from(2);
        }
    }
    if let Err(why) = init_logs() {
        eprintln!("crypt-server: {why}");
        return ExitCode::from(2);
    }
    let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    for unknown in Config::unknown_variables(vars.iter().map(String::as_str)) {
        tracing::warn!(variable = %unknown, "ignoring unknown CRYPT_ variable (a typo?)");
    }
    let settings = match Config::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("crypt-server: {e}");
            return ExitCode::from(2);
        }
    };
    // Registered before the server announces itself: a SIGTERM that comes the moment it is
    // listening (an orchestrator, a test) must shut it down gracefully, not kill it.
    let stop = shutdown_signal();
    let running = match spawn(settings).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("crypt-server: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    stop.await;
    running.shutdown().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Logs to stderr; `CRYPT_LOG` (or `RUST_LOG`) filters, `info` by default; `CRYPT_LOG_FORMAT`
/// is `text` (the default) or `json` (one object per line, for log shippers). Log lines never
/// carry message text or whole ids: the code logs route labels and sizes only.
fn init_logs() -> Result<(), String> {
    let filter = std::env::var("CRYPT_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")));
    // Colours only for a person at a terminal: under systemd, a container runtime or a log
    // shipper, escape codes would land in every line. `NO_COLOR` turns them off there too.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    match std::env::var("CRYPT_LOG_FORMAT").as_deref().map(str::trim) {
        Err(_) | Ok("" | "text") => logs.init(),
        Ok("json") => logs.json().flatten_event(true).init(),
        Ok(other) => return Err(format!("invalid setting CRYPT_LOG_FORMAT: '{other}' is not one of: text, json")),
    }
    Ok(())
}

/// `crypt-server backup FILE`: a consistent copy of the SQLite database the settings name, made
/// while a server may be running on it. Exit 0 when written, 2 when the settings do not name
/// a SQLite store or the copy cannot be made.
fn backup(to: &str) -> ExitCode {
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("crypt-server: {e}");
            return ExitCode::from(2);
        }
    };
    let crypt_server::StoreKind::Sqlite(sqlite) = &config.store else {
        eprintln!("crypt-server: backup copies a SQLite database; CRYPT_STORE is not sqlite");
        return ExitCode::from(2);
    };
    match crypt_sqlite::backup(&sqlite.path, std::path::Path::new(to)) {
        Ok(()) => {
            eprintln!(
                "crypt-server: the live messages of {} are in {to}; it holds secrets: keep it safe",
                sqlite.path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("crypt-server: {e}");
            ExitCode::from(2)
        }
    }
}

/// Exit 0 when the server on this configuration's address answers `/healthz` with 200.
fn healthcheck() -> ExitCode {
    use std::io::{Read, Write};
    let Ok(config) = Config::load() else { return ExitCode::FAILURE };
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let answered = (|| -> std::io::Result<bool> {
        let timeout = std::time::Duration::from_secs(2);
        let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        Ok(&head == b"HTTP/1.1 200")
    })();
    if answered.unwrap_or(false) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Registers for SIGTERM and SIGINT (Ctrl-C) at once, and resolves at the first of them.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    async fn recv(s: Option<Signal>) {
        match s {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let (term, int) = (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok());
    async move {
        tokio::select! {
            _ = recv(term) => {},
            _ = recv(int) => {},
        }
    }
}

/// Resolves at Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
