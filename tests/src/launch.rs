//! Launchers: how each runtime × store pair is started for a check.

use crate::{client, Caps, Profile, Target};
use futures::future::BoxFuture;

/// The self-hosted server with the in-memory store, in this process, on a free port.
pub fn server_memory(profile: Profile) -> BoxFuture<'static, Target> {
    Box::pin(async move {
        let mut env = profile.env();
        env.insert("CRYPT_LISTEN".into(), "127.0.0.1:0".into());
        let settings = crypt_server::Settings::from_sources(None, env).expect("the profile's settings are valid");
        let running = crypt_server::spawn(settings).await.expect("the server starts");
        Target {
            base: running.url(),
            caps: Caps { exact_once: true, capacity: true, configurable: true, raw_tcp: true, header_timeout: true },
            http: client(),
            keep: Box::new(running),
        }
    })
}

/// A deployment someone else runs, at `CRYPT_BASE_URL` (e.g. `https://crypt.example.workers.dev`).
///
/// Its settings are whatever it was deployed with, so checks that need other settings report
/// themselves not applicable. Set `CRYPT_BASE_URL_KV=1` when it runs on Workers KV (no atomic
/// burn). Its rate limit must allow the suite's requests from this machine (a few hundred a minute).
pub fn external(_profile: Profile) -> BoxFuture<'static, Target> {
    Box::pin(async move {
        let base = std::env::var("CRYPT_BASE_URL").expect("CRYPT_BASE_URL names the deployment to check");
        let base = base.trim_end_matches('/').to_owned();
        let kv = std::env::var("CRYPT_BASE_URL_KV").is_ok_and(|v| v == "1");
        Target {
            caps: Caps {
                exact_once: !kv,
                capacity: false,
                configurable: false,
                raw_tcp: base.starts_with("http://"),
                header_timeout: false,
            },
            base,
            http: client(),
            keep: Box::new(()),
        }
    })
}
