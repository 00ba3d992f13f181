//! The fetch handler.

use crate::bindings::{message_store, now_millis, DateClock, WebCryptoIds, RATE_LIMIT_BINDING};
use crate::target::target_of;
use async_trait::async_trait;
use bytes::Bytes;
use crypt_domain::{IdSource, RateDecision, RateLimit, RateLimiter, StoreError, UnixMillis, Vault};
use crypt_http::{Api, BodyRejection, ClientInfo, Settings};
use crypt_memory::MemoryLimiter;
use futures::StreamExt;
use std::cell::{Cell, OnceCell};
use std::rc::Rc;
use std::sync::Arc;
use worker::js_sys::Uint8Array;
use worker::wasm_bindgen::prelude::*;
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::web_sys;
use worker::ByteStream;
use worker::{event, Context, Env, Response, Result};

/// The most clients one isolate's limiter tracks at once. A log holds at most the budget's
/// instants (8 bytes each), so 10,000 clients at the default 60 per window stay under 6 MB of
/// an isolate's 128 MB; past the cap a new client is let through uncounted (see
/// `MemoryLimiter`), and the optional global binding still applies.
const MAX_CLIENTS: usize = 10_000;

/// Everything a request needs that does not change while an isolate lives: the settings (from
/// `[vars]`), the API with its header template, and the limiter. Built on the first request,
/// then reused.
struct Isolate {
    api: Api,
    limiter: Arc<MemoryLimiter>,
    /// When the limiter last dropped idle clients.
    swept_at: Cell<UnixMillis>,
}

thread_local! {
    /// One per isolate (a Worker isolate runs one thread). A failure to build it (invalid
    /// settings, a missing binding) is kept too: every request answers 500 and logs why.
    static ISOLATE: OnceCell<std::result::Result<Rc<Isolate>, String>> = const { OnceCell::new() };
}

fn isolate(env: &Env) -> std::result::Result<Rc<Isolate>, String> {
    ISOLATE.with(|cell| cell.get_or_init(|| build(env).map(Rc::new)).clone())
}

fn build(env: &Env) -> std::result::Result<Isolate, String> {
    // A setting is a `[vars]` entry, or a secret binding (`wrangler secret put`) for the ones
    // that should not sit in wrangler.toml, such as CRYPT_CREATE_TOKEN_HASHES.
    let vars = Settings::names().iter().filter_map(|name| {
        let value = env.var(name).or_else(|_| env.secret(name)).ok()?;
        Some((*name, value.to_string()))
    });
    let all = Settings::from_vars(vars).map_err(|e| e.to_string())?;
    let settings = all.api().map_err(|e| e.to_string())?;
    let store = message_store(env, all.edge_store)?;
    let limiter = Arc::new(MemoryLimiter::bounded(MAX_CLIENTS));
    let edge_limiter = EdgeLimiter { global: env.rate_limiter(RATE_LIMIT_BINDING).ok(), isolate: limiter.clone() };
    let ids: Arc<dyn IdSource> = Arc::new(WebCryptoIds);
    #[cfg(feature = "contract-routes")]
    let ids: Arc<dyn IdSource> = match env.var("CRYPT_TEST_FIXED_ID") {
        Ok(id) => Arc::new(crate::bindings::FixedIds(id.to_string())),
        Err(_) => ids,
    };
    let vault = Vault::new(store, Arc::new(edge_limiter), Arc::new(DateClock), ids, settings.policy.clone());
    Ok(Isolate { api: Api::from_settings(vault, &settings), limiter, swept_at: Cell::new(now_millis()) })
}

impl Isolate {
    /// Drops idle clients from the limiter at most once a second, so its memory follows the
    /// clients of the last window.
    fn sweep_if_due(&self, now: UnixMillis) {
        if let Some(limit) = self.api.vault().policy().rate_limit() {
            if now.saturating_sub(self.swept_at.get()) >= 1000 {
                self.swept_at.set(now);
                self.limiter.sweep(now, limit);
            }
        }
    }
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
                // The binding does not say when its window frees up; the vault decides.
                return Ok(RateDecision::Limited { retry_after_ms: None });
            }
        }
        Ok(self.isolate.hit_now(client, now, limit))
    }

    /// Without a global binding there is nothing to wait for: the isolate's window answers.
    fn hit_at_once(
        &self,
        client: &str,
        now: UnixMillis,
        limit: RateLimit,
    ) -> Option<std::result::Result<RateDecision, StoreError>> {
        self.global.is_none().then(|| Ok(self.isolate.hit_now(client, now, limit)))
    }
}

// The two crossings of a request, each done in one call: the request's method, URL and
// headers come into wasm as one string, and the answer goes out as one string of headers and
// the body. (Through `worker::Request`/`Response` every header is a crossing of its own, the URL
// is parsed by the `url` crate and the `cf` object is converted; measured: see
// docs/PERFORMANCE.md, "At the edge".) Header names and values never hold a newline (`Headers`
// refuses them), so a newline separates them.
#[wasm_bindgen(inline_js = r#"
export function crypt_head(req) {
  let s = req.method + "\n" + req.url;
  for (const [name, value] of req.headers) s += "\n" + name + "\n" + value;
  return s;
}
// Response headers repeat (an API answer's are the same every time), so each distinct set is
// built once as a `Headers` and kept under a small number that Rust remembers: later answers
// send only the number. (The Response constructor copies it, so the kept one never changes.)
const templates = [];
export function crypt_response(status, key, head, body) {
  let headers;
  if (head.length === 0 && key >= 0) {
    headers = templates[key];
    if (headers === undefined) throw new Error("crypt: unknown header template " + key);
  } else {
    headers = new Headers();
    const p = head.split("\n");
    for (let i = 0; i + 1 < p.length; i += 2) headers.append(p[i], p[i + 1]);
    if (key >= 0) templates[key] = headers;
  }
  return new Response(body.length > 0 ? body.slice() : null, { status, headers });
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    fn crypt_head(req: &web_sys::Request) -> std::result::Result<String, JsValue>;
    #[wasm_bindgen(catch)]
    fn crypt_response(
        status: u16,
        key: i32,
        head: &str,
        body: &[u8],
    ) -> std::result::Result<web_sys::Response, JsValue>;
}

#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> Result<web_sys::Response> {
    #[cfg(feature = "contract-routes")]
    if req.url().contains("/__contract/") {
        let req = worker::Request::from(req);
        return crate::contract::run(&req, &env).await.map(Into::into);
    }
    let resp = match (head_of(&req), isolate(&env)) {
        (Ok(head), Ok(isolate)) => serve(&req, head, &isolate).await,
        (head, isolate) => {
            // The request could not be read, or the deployment is misconfigured (a bad setting,
            // a missing binding): say why in the log; the adapter answers the client.
            let why = [head.as_ref().err(), isolate.as_ref().err()].into_iter().flatten().cloned().collect::<Vec<_>>();
            worker::console_error!("crypt: {}", why.join("; "));
            let no_headers = http::HeaderMap::new();
            let headers = head.as_ref().map(|h| h.headers()).unwrap_or(&no_headers);
            match isolate {
                Ok(isolate) => isolate.api.internal_error(headers),
                Err(_) => crypt_http::internal_error(headers),
            }
        }
    };
    to_worker(resp).or_else(|e| {
        // The adapter's answer could not be turned into a Workers response (never seen): the
        // same body, written by hand, is all that is left.
        worker::console_error!("crypt: could not write a response: {e}");
        Response::error(r#"{"error":"Internal server error"}"#, 500).map(Into::into)
    })
}

/// The request's method, target and headers as `http` types, from one crossing.
fn head_of(req: &web_sys::Request) -> std::result::Result<http::Request<()>, String> {
    let text = crypt_head(req).map_err(|e| format!("unreadable request: {e:?}"))?;
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or_default();
    let url = lines.next().unwrap_or_default();
    let mut head = http::Request::builder().method(method).uri(target_of(url));
    while let (Some(name), Some(value)) = (lines.next(), lines.next()) {
        head = head.header(name, value);
    }
    head.body(()).map_err(|e| format!("unreadable request head: {e}"))
}

async fn serve(req: &web_sys::Request, head: http::Request<()>, isolate: &Isolate) -> http::Response<Bytes> {
    let api = &isolate.api;
    isolate.sweep_if_due(now_millis());
    let client = ClientInfo::from_header(head.headers().get("cf-connecting-ip").and_then(|v| v.to_str().ok()));
    let body = match api.body_limit(head.method(), head.uri().path(), head.headers()) {
        Some(max) => match read_body(req, head.headers(), max).await {
            Ok(b) => b,
            Err(why) => return api.reject_body(head.headers(), why),
        },
        None => Bytes::new(),
    };
    let (parts, ()) = head.into_parts();
    api.handle(http::Request::from_parts(parts, body), &client).await
}

/// Bytes of a refused body read and dropped before answering. Answering with a body unread
/// (or cancelled) makes `wrangler dev`'s proxy report "Network connection lost" for this or the
/// next request, so a refused body is drained up to this bound and only then cut off. At the
/// edge, Cloudflare refuses bodies over the plan's limit (100 MB and up) before the Worker runs.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Reads the body up to `max` bytes. A body declared within the cap is read in one step (one
/// `arrayBuffer()`); any other (over the cap, or of unknown length) streams, and past the cap its
/// bytes are dropped as they arrive rather than kept.
async fn read_body(
    req: &web_sys::Request,
    headers: &http::HeaderMap,
    max: usize,
) -> std::result::Result<Bytes, BodyRejection> {
    let declared =
        headers.get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let Some(body) = req.body() else {
        return Ok(Bytes::new()); // no body at all
    };
    if declared.is_some_and(|len| len <= max as u64) {
        let buffer = req.array_buffer().map_err(|_| BodyRejection::Malformed)?;
        let buffer = JsFuture::from(buffer).await.map_err(|_| BodyRejection::Malformed)?;
        let bytes = Uint8Array::new(&buffer).to_vec();
        if bytes.len() > max {
            return Err(BodyRejection::TooLarge);
        }
        return Ok(Bytes::from(bytes));
    }
    let mut stream = ByteStream::from(body);
    let mut kept = Vec::new();
    let mut over = declared.is_some_and(|len| len > max as u64);
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyRejection::Malformed)?;
        seen += chunk.len();
        if over || seen > max {
            over = true;
            kept = Vec::new();
            if seen > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        kept.extend_from_slice(&chunk);
    }
    if over {
        return Err(BodyRejection::TooLarge);
    }
    Ok(Bytes::from(kept))
}

/// The most distinct header sets kept as templates on the JavaScript side.
const MAX_TEMPLATES: usize = 32;

thread_local! {
    /// The header sets already sent, by their number on the JavaScript side.
    static TEMPLATES: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The adapter's answer as a Workers response, in one crossing.
fn to_worker(resp: http::Response<Bytes>) -> Result<web_sys::Response> {
    let (parts, body) = resp.into_parts();
    let mut head = String::with_capacity(256);
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            if !head.is_empty() {
                head.push('\n');
            }
            head.push_str(name.as_str());
            head.push('\n');
            head.push_str(value);
        }
    }
    // A header set seen before goes as its number; a new one as text, and is remembered (while
    // there is room) only once the JavaScript side has built and kept it.
    TEMPLATES.with(|t| {
        let known = t.borrow().iter().position(|known| *known == head);
        if let Some(i) = known {
            return crypt_response(parts.status.as_u16(), i as i32, "", &body).map_err(worker::Error::from);
        }
        let room = t.borrow().len() < MAX_TEMPLATES && !head.is_empty();
        let key = if room { t.borrow().len() as i32 } else { -1 };
        let resp = crypt_response(parts.status.as_u16(), key, &head, &body).map_err(worker::Error::from)?;
        if room {
            t.borrow_mut().push(head);
        }
        Ok(resp)
    })
}
