//! # crypt-worker: the Cloudflare Worker runtime
//!
//! Wiring only, like the server: read the settings from `[vars]` (the same names as the
//! server's environment, through the one [`crypt_http::Settings`]), build the store (Workers KV or
//! Durable Objects, as `CRYPT_EDGE_STORE` chooses) and the
//! limiter, build the [`Vault`](crypt_domain::Vault) and the [`Api`](crypt_http::Api) once per
//! isolate, and translate between the Workers request/response types and `http` ones. Every
//! status code, body and header comes from `crypt-http`, the Worker's own failures included.
//!
//! Modules depend one way: `edge` (the fetch handler) uses `bindings` (what the Worker is
//! bound to) and, in test bundles, `contract`, which uses `bindings` too.
//!
//! Compiles for `wasm32` only (elsewhere the crate is empty); built with `scripts/build-worker`.

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(all(target_arch = "wasm32", feature = "contract-routes"))]
mod contract;
#[cfg(target_arch = "wasm32")]
mod edge;
// Plain text handling, compiled (and tested) on every target.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod target;

/// The Durable Object class behind `CRYPT_EDGE_STORE = "durable-object"`, exported by the bundle
/// (wrangler.toml binds it as `MESSAGE_OBJECTS`).
#[cfg(target_arch = "wasm32")]
pub use crypt_durable::MessageObject;
