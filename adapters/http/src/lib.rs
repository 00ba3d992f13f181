//! # crypt-http: the HTTP API, encoded once
//!
//! The driving adapter of the hexagon. Every route, JSON body, status code, header and CORS
//! rule of `SPEC.md` lives here, over plain [`http`] types, and both runtimes (the hyper server
//! and the Cloudflare Worker) call [`Api::handle`]. A runtime never decides a status code: it
//! reads the request (stopping at the body cap), asks [`Api::reject_body`] when it could not,
//! answers [`Api::internal_error`] (or [`internal_error`] before an `Api` exists) when
//! something unexpected happened, and writes back what it is given. Every setting's name,
//! default and check is here too ([`Settings`]), so both runtimes read the same ones, and so
//! is the self-hosted server's rule for which address a request counts against
//! ([`client_ip`], `X-Forwarded-For` through trusted proxies).
//!
//! The modules follow the concerns: [`route`] (where a request goes), `parse` (the create
//! body), [`error`] (every failure and its one mapping to a status and body), `headers` (the
//! headers every answer carries), `cors`, `settings`, `web` (the embedded page), and
//! `json_out` (the two hot bodies).
//!
//! It depends on the domain and on `http`/`serde_json` only (and, with the `file` feature, on
//! `config` to read the server's TOML settings file): never on hyper, tokio, a store client or
//! the Workers runtime. That keeps everything that parses untrusted bytes out of the heavy
//! crates, so the fuzz targets (`fuzz/`) build without them.

mod auth;
mod client_ip;
mod cors;
pub mod error;
mod headers;
mod json_out;
mod parse;
mod rfc3339;
pub mod route;
mod settings;
mod web;

pub use auth::TokenHashes;
pub use client_ip::client_ip;
pub use cors::Cors;
pub use error::{ApiError, BodyRejection};
pub use parse::{JsonKind, ParseError};
pub use rfc3339::format_rfc3339;
pub use route::Route;
pub use settings::{ApiSettings, EdgeStore, Millis, Networks, SettingError, Settings, StoreChoice};

use bytes::Bytes;
use crypt_domain::Vault;
use headers::CommonHeaders;
use http::header::HeaderMap;
use http::{Method, Request, Response, StatusCode};
use std::sync::Arc;

/// Who sent a request, as the runtime determined it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientInfo {
    /// The client's address (the server's peer or trusted proxy header; `CF-Connecting-IP` on
    /// Cloudflare).
    Ip(std::net::IpAddr),
    /// A client known by a name that is not an address (a header that did not parse).
    Named(String),
}

impl ClientInfo {
    /// The client named by a header's value: its address when it parses as one, the text
    /// itself otherwise, `unknown` when there is none.
    pub fn from_header(value: Option<&str>) -> Self {
        let value = value.map(str::trim).unwrap_or("unknown");
        match value.parse() {
            Ok(ip) => ClientInfo::Ip(ip),
            Err(_) => ClientInfo::Named(value.to_owned()),
        }
    }

    /// The key the rate limit is counted under. Built only when a request is counted, so a
    /// deployment without rate limiting never formats an address.
    ///
    /// An IPv4 address (or an IPv4-mapped IPv6 address) counts as itself. An IPv6 address
    /// counts as its first `ipv6_prefix` bits (SPEC Part 2 item 2): one host is usually given
    /// a whole /64, so counting single addresses would let it rotate through 2^64 of them.
    pub fn key(&self, ipv6_prefix: Ipv6Prefix) -> ClientKey<'_> {
        use std::fmt::Write;
        use std::net::IpAddr;
        let mut key = arrayvec::ArrayString::new();
        match self {
            ClientInfo::Ip(ip) => match ipv6_prefix.client(*ip) {
                IpAddr::V4(v4) => push_ipv4(&mut key, v4),
                // At most 39 characters and `/128`: it fits, and writing cannot fail.
                IpAddr::V6(net) if ipv6_prefix.0 < 128 => {
                    let _ = write!(key, "{net}/{}", ipv6_prefix.0);
                }
                ip => {
                    let _ = write!(key, "{ip}");
                }
            },
            ClientInfo::Named(name) => return ClientKey::Named(name),
        }
        ClientKey::Address(key)
    }
}

/// A rate-limit key, kept on the stack: it is built for every counted request, and a `String`
/// cost an allocation and a free each time.
#[derive(Debug, Clone)]
pub enum ClientKey<'a> {
    /// An address, written out: at most an IPv6 address (39 characters) and `/128`.
    Address(arrayvec::ArrayString<48>),
    /// A client known by name.
    Named(&'a str),
}

impl AsRef<str> for ClientKey<'_> {
    fn as_ref(&self) -> &str {
        match self {
            ClientKey::Address(key) => key,
            ClientKey::Named(name) => name,
        }
    }
}

/// `a.b.c.d`, as `Ipv4Addr`'s `Display` writes it, without the formatting machinery (a counted
/// request writes its client's address; `Display` cost about 1,400 instructions).
fn push_ipv4(out: &mut arrayvec::ArrayString<48>, ip: std::net::Ipv4Addr) {
    // At most 15 characters: never full.
    let mut push = |b: u8| {
        let _ = out.try_push(char::from(b));
    };
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            push(b'.');
        }
        if octet >= 100 {
            push(b'0' + octet / 100);
        }
        if octet >= 10 {
            push(b'0' + octet / 10 % 10);
        }
        push(b'0' + octet % 10);
    }
}

/// How many leading bits of an IPv6 address name one client (`CRYPT_IPV6_PREFIX`, 1 to 128;
/// 64 by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Prefix(u8);

impl Default for Ipv6Prefix {
    fn default() -> Self {
        Ipv6Prefix(64)
    }
}

impl Ipv6Prefix {
    /// The prefix of `bits` leading bits, if 1 to 128.
    pub fn new(bits: u8) -> Option<Self> {
        (1..=128).contains(&bits).then_some(Ipv6Prefix(bits))
    }

    /// The number of bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// The address `ip` counts as: an IPv4 address (or IPv4-mapped IPv6 address) as its IPv4
    /// address, an IPv6 address as its network's first address (its other bits zeroed).
    pub fn client(self, ip: std::net::IpAddr) -> std::net::IpAddr {
        use std::net::IpAddr;
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mask = u128::MAX << (128 - u32::from(self.0));
                    IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & mask))
                }
            },
        }
    }
}

/// The HTTP API over one [`Vault`].
#[derive(Debug, Clone)]
pub struct Api {
    vault: Vault,
    cors: Cors,
    common: CommonHeaders,
    pages: web::Pages,
    metrics: Option<Metrics>,
    create_tokens: TokenHashes,
    ipv6_prefix: Ipv6Prefix,
    max_body_bytes: usize,
}

/// What renders the Prometheus metrics of a runtime that has them.
#[derive(Clone)]
pub struct Metrics(Arc<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics(..)")
    }
}

impl Metrics {
    /// Metrics rendered by `render` (OpenMetrics text).
    pub fn new(render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        Self(Arc::new(render))
    }

    /// Serves a listener of its own that answers only `GET /metrics` (`CRYPT_METRICS_LISTEN`):
    /// 200 with the metrics, 405 for another method, 404 for another path.
    pub fn handle(&self, method: &Method, path: &str) -> Response<Bytes> {
        let cors = Cors::Any;
        let resp = match (Route::of(path), method) {
            (Route::Metrics, &Method::GET) => self.response(),
            (Route::Metrics, _) => ApiError::MethodNotAllowed { allow: "GET" }.into_response(),
            _ => ApiError::RouteNotFound.into_response(),
        };
        CommonHeaders::new(&cors).apply(&cors, &HeaderMap::new(), resp)
    }

    fn response(&self) -> Response<Bytes> {
        let mut resp = response(StatusCode::OK, Bytes::from((self.0)()));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        resp
    }
}

impl Api {
    /// The API over `vault`, answering cross-origin requests as `cors` allows.
    pub fn new(vault: Vault, cors: Cors) -> Self {
        let common = CommonHeaders::new(&cors);
        let pages = web::Pages::new(vault.policy());
        let create_tokens = TokenHashes::default();
        Self {
            vault,
            cors,
            common,
            pages,
            metrics: None,
            create_tokens,
            ipv6_prefix: Ipv6Prefix::default(),
            max_body_bytes: Settings::default().max_body_bytes,
        }
    }

    /// The API as `settings` configure it: CORS, create tokens and the IPv6 prefix.
    pub fn from_settings(vault: Vault, settings: &ApiSettings) -> Self {
        let mut api = Api::new(vault, settings.cors.clone()).with_create_tokens(settings.create_tokens.clone());
        api.ipv6_prefix = settings.ipv6_prefix;
        api.max_body_bytes = settings.max_body_bytes;
        api
    }

    /// The API that answers `POST /` only with one of `tokens` (none configured: open to all).
    pub fn with_create_tokens(mut self, tokens: TokenHashes) -> Self {
        self.create_tokens = tokens;
        self
    }

    /// The API that also answers `GET /metrics` with `metrics` (without it, `/metrics` is 404).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The vault behind the API.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// How much of the request body the runtime must read before calling [`Api::handle`]:
    /// `None` when it must read none, else the most bytes it may read, past which it stops and
    /// answers [`Api::reject_body`] with [`BodyRejection::TooLarge`]. Only a create reads its
    /// body (a file up to `CRYPT_MAX_FILE_BYTES`, anything else up to `CRYPT_MAX_BODY_BYTES`);
    /// every other request is answered without it, so a large body on any other route is
    /// never buffered.
    pub fn body_limit(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<usize> {
        (method == Method::POST && Route::of(path) == Route::Root).then(|| {
            if parse::is_file(headers) {
                self.vault.policy().max_file_bytes()
            } else {
                self.max_body_bytes
            }
        })
    }

    /// Answers a request whose body could not be read (with `Connection: close`: the rest of
    /// the body will not be read). A file over its limit is told the file's limit.
    pub fn reject_body(&self, req_headers: &HeaderMap, why: BodyRejection) -> Response<Bytes> {
        let e = match why {
            BodyRejection::TooLarge if parse::is_file(req_headers) => {
                ApiError::FileTooLarge { max: self.vault.policy().max_file_bytes() }
            }
            why => ApiError::Body(why),
        };
        self.answer(req_headers, e)
    }

    /// Answers a request that met something unexpected in the runtime (a panic, a failed
    /// binding): 500 `Internal server error`, nothing more. The runtime logs the cause.
    pub fn internal_error(&self, req_headers: &HeaderMap) -> Response<Bytes> {
        self.answer(req_headers, ApiError::Internal)
    }

    /// Answers one request. `req`'s body is the whole body when [`Api::body_limit`] asked for
    /// it, and may be empty otherwise.
    pub async fn handle(&self, req: Request<Bytes>, client: &ClientInfo) -> Response<Bytes> {
        let (parts, body) = req.into_parts();
        let resp = match self.route(&parts.method, &parts.uri, &parts.headers, body, client).await {
            Ok(resp) => resp,
            Err(e) => e.into_response(),
        };
        self.common.apply(&self.cors, &parts.headers, resp)
    }

    fn answer(&self, req_headers: &HeaderMap, e: ApiError) -> Response<Bytes> {
        self.common.apply(&self.cors, req_headers, e.into_response())
    }

    /// Every request but a preflight, the operations routes and the pages is counted against
    /// the rate limit before it is routed further, 405s and unknown paths included (as the
    /// reference service does).
    async fn route(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
        body: Bytes,
        client: &ClientInfo,
    ) -> Result<Response<Bytes>, ApiError> {
        let path = uri.path();
        if method == Method::OPTIONS {
            return Ok(self.cors.preflight());
        }
        let route = Route::of(path);
        if route.is_uncounted() {
            return match (route, method) {
                (Route::Health, &Method::GET) => Ok(ok(r#"{"status":"ok"}"#)),
                (Route::Ready, &Method::GET) => {
                    self.vault.ready().await?;
                    Ok(ok(r#"{"status":"ready"}"#))
                }
                (Route::Metrics, &Method::GET) => match &self.metrics {
                    Some(metrics) => Ok(metrics.response()),
                    None => Err(ApiError::RouteNotFound),
                },
                (Route::OpenApi, &Method::GET) => Ok(openapi()),
                (Route::Reveal, &Method::GET) => Ok(self.pages.reveal()),
                (Route::ReceiptPage, &Method::GET) => Ok(self.pages.receipt()),
                (Route::Asset(name), &Method::GET) => self.pages.asset(name).ok_or(ApiError::RouteNotFound),
                _ => Err(ApiError::MethodNotAllowed { allow: "GET, OPTIONS" }),
            };
        }
        // A browser navigating to the service gets the page to write a secret; every other
        // `GET /` is the reference's 405.
        if route == Route::Root && method == Method::GET && web::wants_html(headers) {
            return Ok(self.pages.compose());
        }
        let key = || client.key(self.ipv6_prefix);
        // A create and a read are counted by the vault together with their store operation
        // (one Redis round trip); every other request is counted here first.
        match (route, method) {
            (Route::Root, &Method::POST) => return self.create(headers, uri.query(), body, key).await,
            (Route::Message(id), &Method::GET) => return self.open(id, key).await,
            _ => {}
        }
        self.vault.admit(key).await?;
        // The sender's requests (SPEC Part 2 item 10). Without a receipt token each answers
        // what Part 1 does, and a wrong token answers the same as a missing message, so a
        // stranger learns nothing about an id.
        // An empty `Authorization` counts as none: workerd drops an empty header before crypt
        // sees it, and every runtime must answer alike.
        let receipt = headers
            .get(http::header::AUTHORIZATION)
            .is_some_and(|v| !v.is_empty())
            .then(|| auth::bearer(headers).unwrap_or(""));
        match (route, method, receipt) {
            (Route::Receipt(id), &Method::GET, Some(token)) => match self.vault.receipt(id, token).await {
                Ok(receipt) => Ok(response(StatusCode::OK, json_out::receipt(&receipt))),
                Err(crypt_domain::OpenError::NotFound) => Err(ApiError::RouteNotFound),
                Err(e) => Err(e.into()),
            },
            (Route::Message(id), &Method::DELETE, Some(token)) => {
                let receipt = self.vault.delete(id, token).await?;
                Ok(response(StatusCode::OK, json_out::receipt(&receipt)))
            }
            (Route::Root, _, _) => Err(ApiError::MethodNotAllowed { allow: "POST, OPTIONS" }),
            (Route::Message(_), _, _) => Err(ApiError::MethodNotAllowed { allow: "GET, OPTIONS" }),
            _ => Err(ApiError::RouteNotFound),
        }
    }

    async fn create<K: AsRef<str>>(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        body: Bytes,
        key: impl FnOnce() -> K,
    ) -> Result<Response<Bytes>, ApiError> {
        if self.create_tokens.required() && !self.create_tokens.admits(headers) {
            self.vault.admit(key).await?;
            return Err(ApiError::Unauthorized);
        }
        let parsed =
            if parse::is_file(headers) { parse::parse_file_draft(query, body) } else { parse::parse_draft(&body) };
        let draft = match parsed {
            Ok(draft) => draft,
            Err(e) => {
                self.vault.admit(key).await?;
                return Err(e.into());
            }
        };
        let created = self.vault.create_counted(key, draft).await??;
        let expires_at = format_rfc3339(created.expires_at);
        Ok(response(StatusCode::OK, json_out::created(created.id.as_str(), &expires_at, &created.receipt)))
    }

    async fn open<K: AsRef<str>>(&self, raw_id: &str, key: impl FnOnce() -> K) -> Result<Response<Bytes>, ApiError> {
        let viewed = self.vault.open_counted(key, raw_id).await??;
        let views_left = viewed.views_left;
        Ok(match viewed.message.into_content() {
            crypt_domain::Content::Text(text) => response(StatusCode::OK, json_out::message(&text, views_left)),
            // A file reads back as its bytes (SPEC Part 2 item 11), shared with the store's
            // copy where the store allows, and `X-Views-Left` in place of `views_left`.
            crypt_domain::Content::File(bytes) => {
                let mut resp = response(StatusCode::OK, bytes);
                let h = resp.headers_mut();
                h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/octet-stream"));
                h.insert(X_VIEWS_LEFT, http::HeaderValue::from(views_left));
                h.insert(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, http::HeaderValue::from_static("X-Views-Left"));
                resp
            }
        })
    }
}

/// 500 `Internal server error` with the usual headers, for a runtime that has no [`Api`] to
/// ask (the Worker before its settings or bindings could be read). CORS answers `*`, since
/// the configured origins are unknown; the body says nothing an attacker could use.
pub fn internal_error(req_headers: &HeaderMap) -> Response<Bytes> {
    let cors = Cors::Any;
    CommonHeaders::new(&cors).apply(&cors, req_headers, ApiError::Internal.into_response())
}

/// The views a file has left after a read (`views_left` of a text's JSON answer).
const X_VIEWS_LEFT: http::HeaderName = http::HeaderName::from_static("x-views-left");

/// `docs/openapi.json`, the API in OpenAPI 3.1.
const OPENAPI: &str = include_str!("../../../docs/openapi.json");

fn openapi() -> Response<Bytes> {
    response(StatusCode::OK, Bytes::from_static(OPENAPI.as_bytes()))
}

fn ok(body: &'static str) -> Response<Bytes> {
    response(StatusCode::OK, Bytes::from_static(body.as_bytes()))
}

/// A response with no headers yet: [`Api::handle`] swaps in a copy of the common ones (an empty
/// map costs no allocation).
fn response(status: StatusCode, body: Bytes) -> Response<Bytes> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp
}

#[cfg(test)]
mod tests;
