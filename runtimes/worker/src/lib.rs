//! # crypt-worker: the Cloudflare Worker runtime
//!
//! Wiring only, like the server: read the settings from `[vars]` (the same names as the
//! server's environment), build the KV store and the limiter, build the
//! [`Vault`](crypt_domain::Vault) and the [`Api`](crypt_http::Api), and translate between the
//! Workers request/response types and `http` ones. Every status code, body and header comes
//! from `crypt-http`.
//!
//! Compiles for `wasm32` only (elsewhere the crate is empty); built with `scripts/build-worker`.

#[cfg(all(target_arch = "wasm32", feature = "contract-routes"))]
mod contract;
#[cfg(target_arch = "wasm32")]
mod edge;

/// The settings the Worker reads from `[vars]`, beyond the ones `Policy::from_settings` reads.
pub const WORKER_SETTINGS: [&str; 2] = ["CRYPT_CORS_ORIGINS", "CRYPT_MAX_BODY_BYTES"];
