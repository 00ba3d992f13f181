//! # crypt-server: the self-hosted runtime
//!
//! Wiring only: read the [`Config`], build the store and limiter adapters, build the
//! [`Vault`](crypt_domain::Vault) and the [`Api`], and serve it with hyper on tokio. Every status
//! code comes from `crypt-http`; this crate reads requests (stopping at the body cap and the
//! read timeouts), finds the client's address, and writes responses back.
//!
//! Embed it in your own integration tests with [`spawn`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let crypt = crypt_server::spawn(crypt_server::Config::ephemeral()).await?;
//! let base_url = crypt.url(); // e.g. http://127.0.0.1:41237
//! // ... point your code at base_url ...
//! crypt.shutdown().await;
//! # Ok(()) }
//! ```

mod admission;
mod linger;
mod metrics;
mod serve;
mod settings;
mod system;
mod usage;
mod watchdog;

pub use crypt_http::{SettingError, Settings};
pub use crypt_redis::{RedisConfig, RedisTls};
pub use serve::{spawn, Running, StartError};
pub use settings::{Config, StoreKind};
pub use system::{RandomIds, SystemClock};
pub use usage::HELP;
