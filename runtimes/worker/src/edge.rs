//! The fetch handler.

use async_trait::async_trait;
use bytes::Bytes;
use crypt_domain::{
    alphanumeric_id, Clock, IdSource, Policy, RateDecision, RateLimit, RateLimiter, StoreError, UnixMillis, Vault,
};
use crypt_http::{Api, BodyRejection, ClientInfo, Cors};
use crypt_kv::KvMessageStore;
use crypt_memory::MemoryLimiter;
use futures::StreamExt;
use std::sync::Arc;
use worker::{event, Context, Env, Headers, Request, Response, Result};

/// The KV namespace binding that holds the messages.
const KV_BINDING: &str = "MESSAGES";
/// An optional Workers rate-limiting binding, used as a global first line before the
/// per-isolate sliding window.
const RATE_LIMIT_BINDING: &str = "RATE_LIMITER";

fn now_millis() -> UnixMillis {
    worker::Date::now().as_millis()
}

struct DateClock;

impl Clock for DateClock {
    fn now(&self) -> UnixMillis {
        now_millis()
    }
}

/// Ids from the Web Crypto random source (`crypto.getRandomValues`).
struct WebCryptoIds;

impl IdSource for WebCryptoIds {
    fn next_id(&self, len: usize) -> String {
        alphanumeric_id(len, |buf| getrandom::getrandom(buf).expect("crypto.getRandomValues is available in Workers"))
    }
}

thread_local! {
    /// One per isolate: it lives as long as the isolate serves requests, like the original's
    /// in-memory map. Several isolates (and locations) each keep their own count.
    static ISOLATE_LIMITER: Arc<MemoryLimiter> = Arc::new(MemoryLimiter::default());
}

/// The global binding (when configured) first, then this isolate's sliding window.
struct EdgeLimiter {
    global: Option<worker::RateLimiter>,
    isolate: Arc<MemoryLimiter>,
}

#[async_trait(?Send)]
impl RateLimiter for EdgeLimiter {
    async fn hit(
        &self,
        client: &str,
        now: UnixMillis,
        limit: RateLimit,
    ) -> std::result::Result<RateDecision, StoreError> {
        if let Some(global) = &self.global {
            let outcome = global.limit(client.to_owned()).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
            if !outcome.success {
                return Ok(RateDecision::Limited { retry_after_secs: limit.window_secs.max(1) });
            }
        }
        Ok(self.isolate.hit_now(client, now, limit))
    }
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string()).filter(|v| !v.trim().is_empty())
}

/// The Worker's settings, or the sentence that names the bad one.
struct EdgeSettings {
    policy: Policy,
    cors: Cors,
    max_body_bytes: usize,
}

fn settings(env: &Env) -> std::result::Result<EdgeSettings, String> {
    let policy = Policy::from_settings(|name| var(env, name)).map_err(|e| format!("invalid setting {e}"))?;
    let cors = match var(env, "CRYPT_CORS_ORIGINS") {
        None => Cors::Any,
        Some(s) => Cors::parse(&s).map_err(|why| format!("invalid setting CRYPT_CORS_ORIGINS: {why}"))?,
    };
    let max_body_bytes = match var(env, "CRYPT_MAX_BODY_BYTES") {
        None => 1_048_576,
        Some(s) => s.trim().parse().map_err(|e| format!("invalid setting CRYPT_MAX_BODY_BYTES: '{s}': {e}"))?,
    };
    Ok(EdgeSettings { policy, cors, max_body_bytes })
}

pub(crate) fn kv_store(env: &Env) -> Result<KvMessageStore> {
    Ok(KvMessageStore::new(env.kv(KV_BINDING)?, now_millis))
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    #[cfg(feature = "contract-routes")]
    if req.path().starts_with("/__contract/") {
        return crate::contract::run(&req, &env).await;
    }
    let settings = match settings(&env) {
        Ok(s) => s,
        Err(why) => {
            // A misconfigured deployment: say why in the logs; the adapter answers the client.
            worker::console_error!("crypt: {why}");
            let headers: http::HeaderMap =
                req.headers().entries().filter_map(|(k, v)| Some((k.parse().ok()?, v.parse().ok()?))).collect();
            return to_worker(Api::misconfigured(&Cors::Any, &headers));
        }
    };
    let limiter =
        EdgeLimiter { global: env.rate_limiter(RATE_LIMIT_BINDING).ok(), isolate: ISOLATE_LIMITER.with(Arc::clone) };
    let vault = Vault::new(
        Arc::new(kv_store(&env)?),
        Arc::new(limiter),
        Arc::new(DateClock),
        Arc::new(WebCryptoIds),
        settings.policy,
    );
    let api = Api::new(vault, settings.cors);

    let mut head = http::Request::builder().method(req.method().to_string().as_str()).uri(req.path());
    if let Ok(url) = req.url() {
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        head = head.uri(target);
    }
    for (name, value) in req.headers().entries() {
        head = head.header(name, value);
    }
    let probe = head.body(()).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let client = ClientInfo::Named(req.headers().get("cf-connecting-ip")?.unwrap_or_else(|| "unknown".into()));

    let body = if api.wants_body(probe.method(), probe.uri().path()) {
        match read_body(&mut req, settings.max_body_bytes).await {
            Ok(b) => b,
            Err(why) => {
                return to_worker(api.reject_body(probe.headers(), why));
            }
        }
    } else {
        Bytes::new()
    };
    let (parts, ()) = probe.into_parts();
    to_worker(api.handle(http::Request::from_parts(parts, body), &client).await)
}

/// Bytes of a refused body read and dropped before answering. Answering with a body unread
/// (or cancelled) makes `wrangler dev`'s proxy report "Network connection lost" for this or the
/// next request, so a refused body is drained up to this bound and only then cut off. At the
/// edge, Cloudflare refuses bodies over the plan's limit (100 MB and up) before the Worker runs.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Reads the body up to `max` bytes. A body over the cap (declared or streamed) is refused
/// without being kept: its bytes are dropped as they arrive.
async fn read_body(req: &mut Request, max: usize) -> std::result::Result<Bytes, BodyRejection> {
    let declared = req.headers().get("content-length").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    let Ok(mut stream) = req.stream() else {
        return Ok(Bytes::new()); // no body at all
    };
    let mut body = Vec::new();
    let mut over = declared.is_some_and(|len| len > max as u64);
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyRejection::Malformed)?;
        seen += chunk.len();
        if over || seen > max {
            over = true;
            body = Vec::new();
            if seen > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        body.extend_from_slice(&chunk);
    }
    if over {
        return Err(BodyRejection::TooLarge);
    }
    Ok(Bytes::from(body))
}

fn to_worker(resp: http::Response<Bytes>) -> Result<Response> {
    let (parts, body) = resp.into_parts();
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            headers.append(name.as_str(), value)?;
        }
    }
    let resp = if body.is_empty() { Response::empty()? } else { Response::from_bytes(body.to_vec())? };
    Ok(resp.with_status(parts.status.as_u16()).with_headers(headers))
}
