//! The `crypt-server` binary: settings, logs, serve until SIGTERM or Ctrl-C.

use crypt_server::{spawn, Config};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    init_logs();
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
    let running = match spawn(settings).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("crypt-server: {e}");
            return ExitCode::from(1);
        }
    };
    shutdown_signal().await;
    running.shutdown().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Logs to stderr; `CRYPT_LOG` (or `RUST_LOG`) filters, `info` by default. Log lines never
/// carry message text or whole ids: the code logs route labels and sizes only.
fn init_logs() {
    let filter = std::env::var("CRYPT_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
