//! # crypt-http: the HTTP API, encoded once
//!
//! The driving adapter of the hexagon. Every route, JSON body, status code, header and CORS
//! rule of `SPEC.md` lives here, over plain [`http`] types, and both runtimes (the hyper server
//! and the Cloudflare Worker) call [`Api::handle`]. A runtime never decides a status code: it
//! reads the request (stopping at the body cap), asks [`Api::reject_body`] when it could not,
//! and writes back what it is given.
//!
//! It depends on the domain and on `http`/`serde_json` only: never on hyper, tokio, a store
//! client or the Workers runtime.

mod cors;
mod json_out;
mod rfc3339;

pub use cors::Cors;
pub use rfc3339::format_rfc3339;

use bytes::Bytes;
use crypt_domain::{AdmitError, CreateError, Draft, MessageError, OpenError, StoreError, Vault};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};

/// Who sent a request, as the runtime determined it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientInfo {
    /// The client's address (the self-hosted server).
    Ip(std::net::IpAddr),
    /// The client's address as a header gave it (`CF-Connecting-IP` on Cloudflare).
    Named(String),
}

impl ClientInfo {
    /// The key the rate limit is counted under. Built only when a request is counted, so a
    /// deployment without rate limiting never formats an address.
    pub fn key(&self) -> std::borrow::Cow<'_, str> {
        match self {
            ClientInfo::Ip(ip) => std::borrow::Cow::Owned(ip.to_string()),
            ClientInfo::Named(name) => std::borrow::Cow::Borrowed(name),
        }
    }
}

/// Why a runtime could not read a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRejection {
    /// The body is larger than the cap (by its Content-Length, or while it streamed in).
    TooLarge,
    /// The client did not send the body within the body-read timeout.
    TimedOut,
    /// The connection broke or the framing was invalid.
    Malformed,
}

/// Where a request goes, decided from its path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/`: create.
    Root,
    /// `/healthz`: the process is alive.
    Health,
    /// `/readyz`: the store is reachable.
    Ready,
    /// `/{id}`: read and destroy. The id may have the wrong shape; that is a 404 later.
    Message(&'a str),
    /// Anything with more than one path segment.
    Unknown,
}

impl<'a> Route<'a> {
    /// Routes a path (without its query string). Percent-escapes are not decoded: `%` is not
    /// an id character, so an escaped id is simply not found.
    pub fn of(path: &'a str) -> Self {
        match path {
            "" | "/" => Route::Root,
            "/healthz" => Route::Health,
            "/readyz" => Route::Ready,
            _ => match path.strip_prefix('/') {
                Some(rest) if !rest.contains('/') => Route::Message(rest),
                _ => Route::Unknown,
            },
        }
    }

    /// A short label for logs and metrics: never the id itself.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Root => "create",
            Route::Health => "healthz",
            Route::Ready => "readyz",
            Route::Message(_) => "open",
            Route::Unknown => "unknown",
        }
    }
}

/// The HTTP API over one [`Vault`].
#[derive(Debug, Clone)]
pub struct Api {
    vault: Vault,
    cors: Cors,
    common: CommonHeaders,
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

impl Api {
    /// The API over `vault`, answering cross-origin requests as `cors` allows.
    pub fn new(vault: Vault, cors: Cors) -> Self {
        let common = CommonHeaders::new(&cors);
        Self { vault, cors, common }
    }

    /// The vault behind the API.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// True when the runtime must read the request body before calling [`Api::handle`]. Only
    /// a create reads its body; every other request is answered without it, so a large body on
    /// any other route is never buffered.
    pub fn wants_body(&self, method: &Method, path: &str) -> bool {
        method == Method::POST && Route::of(path) == Route::Root
    }

    /// Answers any request while the deployment's settings are invalid (the Worker reads them
    /// per request, so it cannot refuse to start): 500 with no detail; the runtime logs why.
    pub fn misconfigured(cors: &Cors, headers: &HeaderMap) -> Response<Bytes> {
        let common = CommonHeaders::new(cors);
        finish_with(&common, cors, headers, error(StatusCode::INTERNAL_SERVER_ERROR, "Service misconfigured"))
    }

    /// Answers a request whose body could not be read.
    pub fn reject_body(&self, headers: &HeaderMap, why: BodyRejection) -> Response<Bytes> {
        let (status, text) = match why {
            BodyRejection::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"),
            BodyRejection::TimedOut => (StatusCode::REQUEST_TIMEOUT, "Request body timed out"),
            BodyRejection::Malformed => (StatusCode::BAD_REQUEST, "Could not read request body"),
        };
        let mut resp = self.finish(headers, error(status, text));
        // The rest of the body is not going to be read: tell the client the connection ends.
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        resp
    }

    /// Answers one request. `req`'s body is the whole body when [`Api::wants_body`] said so,
    /// and may be empty otherwise.
    pub async fn handle(&self, req: Request<Bytes>, client: &ClientInfo) -> Response<Bytes> {
        let (parts, body) = req.into_parts();
        let resp = self.route(&parts.method, parts.uri.path(), body, client).await;
        self.finish(&parts.headers, resp)
    }

    async fn route(&self, method: &Method, path: &str, body: Bytes, client: &ClientInfo) -> Response<Bytes> {
        if method == Method::OPTIONS {
            return self.cors.preflight();
        }
        let route = Route::of(path);
        match (route, method) {
            (Route::Root, &Method::POST) => self.create(body, client).await,
            (Route::Root, _) => not_allowed("POST, OPTIONS"),
            (Route::Health, &Method::GET) => ok(r#"{"status":"ok"}"#),
            (Route::Ready, &Method::GET) => self.ready().await,
            (Route::Health | Route::Ready, _) => not_allowed("GET, OPTIONS"),
            (Route::Message(id), &Method::GET) => self.open(id, client).await,
            (Route::Message(_), _) => not_allowed("GET, OPTIONS"),
            (Route::Unknown, &Method::GET) => error(StatusCode::NOT_FOUND, "Message not found"),
            (Route::Unknown, _) => error(StatusCode::NOT_FOUND, "Not found"),
        }
    }

    /// Counts the request against the client's rate limit, when limiting is on.
    async fn admit(&self, client: &ClientInfo) -> Result<(), Response<Bytes>> {
        if self.vault.policy().rate_limit.is_off() {
            return Ok(());
        }
        self.vault.admit(&client.key()).await.map_err(refused)
    }

    async fn create(&self, body: Bytes, client: &ClientInfo) -> Response<Bytes> {
        if let Err(resp) = self.admit(client).await {
            return resp;
        }
        let draft = match parse_draft(&body) {
            Ok(d) => d,
            Err(why) => return error(StatusCode::BAD_REQUEST, &why),
        };
        match self.vault.create(draft).await {
            Ok(created) => {
                let expires_at = format_rfc3339(created.expires_at);
                response(StatusCode::OK, json_out::created(created.id.as_str(), &expires_at))
            }
            Err(e) => self.create_failed(e),
        }
    }

    fn create_failed(&self, e: CreateError) -> Response<Bytes> {
        match e {
            CreateError::Message(MessageError::Empty) => error(StatusCode::BAD_REQUEST, "Message cannot be empty"),
            CreateError::Message(MessageError::TooLarge { max: 102_400, .. }) => {
                error(StatusCode::PAYLOAD_TOO_LARGE, "Message exceeds 100 KB")
            }
            CreateError::Message(MessageError::TooLarge { max, .. }) => {
                error(StatusCode::PAYLOAD_TOO_LARGE, &format!("Message exceeds {max} bytes"))
            }
            CreateError::Ttl(range) => error(
                StatusCode::BAD_REQUEST,
                &format!("Field 'ttl' must be between {} and {} seconds", range.min, range.max),
            ),
            CreateError::NoUniqueId { attempts } => {
                tracing::error!(attempts, "no unused id found; consider a longer CRYPT_ID_LENGTH");
                error(StatusCode::INTERNAL_SERVER_ERROR, "Could not generate a unique ID")
            }
            CreateError::Store(e) => store_failed("create", e),
        }
    }

    async fn open(&self, raw_id: &str, client: &ClientInfo) -> Response<Bytes> {
        if let Err(resp) = self.admit(client).await {
            return resp;
        }
        match self.vault.open(raw_id).await {
            Ok(message) => response(StatusCode::OK, json_out::message(message.as_str())),
            Err(OpenError::NotFound) => error(StatusCode::NOT_FOUND, "Message not found"),
            Err(OpenError::Store(e)) => store_failed("open", e),
        }
    }

    async fn ready(&self) -> Response<Bytes> {
        match self.vault.ready().await {
            Ok(()) => ok(r#"{"status":"ready"}"#),
            Err(e) => store_failed("readyz", e),
        }
    }

    /// Adds the headers every response carries: content type, security and CORS.
    fn finish(&self, req_headers: &HeaderMap, resp: Response<Bytes>) -> Response<Bytes> {
        finish_with(&self.common, &self.cors, req_headers, resp)
    }
}

/// The headers every response carries, built once per CORS policy. Cloning a ready map costs a
/// fraction of hashing five names into a fresh one for every response (measured with callgrind:
/// about 1,800 instructions per create+read pair).
#[derive(Debug, Clone)]
struct CommonHeaders {
    with_body: HeaderMap,
    without_body: HeaderMap,
}

impl CommonHeaders {
    fn new(cors: &Cors) -> Self {
        let mut without_body = HeaderMap::with_capacity(8);
        without_body.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        without_body.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        without_body.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        cors.decorate_always(&mut without_body);
        let mut with_body = without_body.clone();
        with_body.insert(header::CONTENT_TYPE, JSON);
        Self { with_body, without_body }
    }
}

/// Puts the common headers on `resp`, then the ones its handler set (`Allow`, `Retry-After`,
/// a preflight's), then the origin-dependent CORS answer.
fn finish_with(
    common: &CommonHeaders,
    cors: &Cors,
    req_headers: &HeaderMap,
    mut resp: Response<Bytes>,
) -> Response<Bytes> {
    let base = if resp.status() == StatusCode::NO_CONTENT { &common.without_body } else { &common.with_body };
    let own = std::mem::replace(resp.headers_mut(), base.clone());
    if !own.is_empty() {
        resp.headers_mut().extend(own);
    }
    cors.decorate_per_request(req_headers.get(header::ORIGIN), resp.headers_mut());
    resp
}

/// The create body, read in one pass. Each field records what JSON type it had, so each way
/// it can be wrong gets its own sentence (a plain derived struct would only say "invalid type"),
/// and the message text is unescaped straight into its `String`, the one allocation.
#[derive(serde::Deserialize)]
struct CreateBody {
    #[serde(default)]
    message: Field<String>,
    #[serde(default)]
    ttl: Field<u64>,
}

/// A field: absent, of the expected type, or of another type (`null` included).
#[derive(Default)]
enum Field<T> {
    #[default]
    Absent,
    Valid(T),
    WrongType,
}

impl<'de> serde::Deserialize<'de> for Field<String> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor(std::marker::PhantomData::<String>))
    }
}

impl<'de> serde::Deserialize<'de> for Field<u64> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor(std::marker::PhantomData::<u64>))
    }
}

struct FieldVisitor<T>(std::marker::PhantomData<T>);

/// What a visitor does with each JSON type: the expected one is kept, any other is recorded as
/// wrong (arrays and objects are read through and dropped, so parsing goes on).
macro_rules! wrong_types {
    ($($method:ident($ty:ty)),*) => {
        $(fn $method<E: serde::de::Error>(self, _: $ty) -> Result<Self::Value, E> { Ok(Field::WrongType) })*
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Field::WrongType)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(Field::WrongType)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
            Ok(Field::WrongType)
        }
    };
}

impl<'de> serde::de::Visitor<'de> for FieldVisitor<String> {
    type Value = Field<String>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Field::Valid(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Field::Valid(v))
    }
    wrong_types!(visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64));
}

impl<'de> serde::de::Visitor<'de> for FieldVisitor<u64> {
    type Value = Field<u64>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Field::Valid(v))
    }
    wrong_types!(visit_bool(bool), visit_i64(i64), visit_f64(f64), visit_str(&str));
}

/// Turns a create body into a [`Draft`], or says in words what is wrong with it.
fn parse_draft(body: &[u8]) -> Result<Draft, String> {
    let json_error = |e: serde_json::Error| {
        if e.is_eof() {
            "Invalid JSON: the body is empty or cut short".to_string()
        } else {
            "Invalid JSON".to_string()
        }
    };
    // A derived struct would also accept an array; anything but an object is refused here.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(json_error)?;
        return Err("Request body must be a JSON object".into());
    }
    let fields: CreateBody = serde_json::from_slice(body).map_err(json_error)?;
    let message = match fields.message {
        Field::Absent => return Err("Field 'message' is required".into()),
        Field::WrongType => return Err("Field 'message' must be a string".into()),
        Field::Valid(text) => text,
    };
    let ttl_secs = match fields.ttl {
        Field::Absent => None,
        Field::Valid(secs) if secs > 0 => Some(secs),
        _ => return Err("Field 'ttl' must be a positive whole number of seconds".into()),
    };
    Ok(Draft { message, ttl_secs })
}

fn refused(e: AdmitError) -> Response<Bytes> {
    match e {
        AdmitError::RateLimited { retry_after_secs } => {
            let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            resp
        }
        AdmitError::Store(e) => store_failed("rate limit", e),
    }
}

fn store_failed(during: &'static str, e: StoreError) -> Response<Bytes> {
    match e {
        StoreError::Full => {
            tracing::warn!(during, "store is full; refusing new messages");
            error(StatusCode::INSUFFICIENT_STORAGE, "Storage full")
        }
        StoreError::Unavailable(cause) => {
            tracing::warn!(during, %cause, "store unavailable");
            error(StatusCode::SERVICE_UNAVAILABLE, "Storage unavailable")
        }
    }
}

#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response<Bytes> {
    // Serializing these plain structs of strings cannot fail.
    response(status, Bytes::from(serde_json::to_vec(body).unwrap_or_default()))
}

fn ok(body: &'static str) -> Response<Bytes> {
    response(StatusCode::OK, Bytes::from_static(body.as_bytes()))
}

/// A response with no headers yet: [`Api::finish`] swaps in a copy of the common ones (an empty
/// map costs no allocation).
fn response(status: StatusCode, body: Bytes) -> Response<Bytes> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp
}

fn error(status: StatusCode, text: &str) -> Response<Bytes> {
    json(status, &ErrorBody { error: text })
}

fn not_allowed(allow: &'static str) -> Response<Bytes> {
    let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

#[cfg(test)]
mod tests;
