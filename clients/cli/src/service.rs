//! The crypt HTTP API, as this command uses it.

use std::io::Read;
use std::time::Duration;

/// What went wrong talking to the service. Its `Display` shows the service's own words.
#[derive(Debug)]
pub enum ServiceError {
    /// No answer: the address is wrong, the service is down, or the network failed. The
    /// service's base URL and why.
    Unreachable { base: String, why: String },
    /// The service began a successful answer and it was cut off: a read has probably
    /// destroyed the secret without delivering it; a create may have stored one that no link
    /// names (it expires unread).
    CutOff { read: bool, why: String },
    /// The service answered with an error.
    Answered {
        /// The HTTP status.
        status: u16,
        /// Its `error` string, as written.
        error: String,
        /// Its `detail`, when it gave one.
        detail: Option<String>,
    },
    /// An answer that is not what the API promises.
    Unexpected(String),
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceError::Unreachable { base, why } => write!(f, "cannot reach the service at {base}: {why}"),
            ServiceError::CutOff { read: true, why } => write!(
                f,
                "the service's answer was cut off ({why}): the secret is probably destroyed; ask the sender for a new one"
            ),
            ServiceError::CutOff { read: false, why } => write!(
                f,
                "the service's answer was cut off ({why}): no link was made; the secret may be stored \
                 under an id nobody has, and expires unread. Send it again"
            ),
            ServiceError::Answered { status: 404, error, .. } => write!(
                f,
                "no such secret: it was already read, it expired, or the link is wrong (the service answered 404: {error})"
            ),
            ServiceError::Answered { status, error, detail: Some(detail) } => {
                write!(f, "the service answered {status}: {error} ({detail})")
            }
            ServiceError::Answered { status, error, detail: None } => write!(f, "the service answered {status}: {error}"),
            ServiceError::Unexpected(why) => write!(f, "unexpected answer from the service: {why}"),
        }
    }
}

/// What a create answers. (Its `Debug` hides the receipt.)
#[derive(serde::Deserialize)]
pub struct Created {
    /// Its id.
    pub id: String,
    /// When it expires (RFC 3339), if the service says.
    pub expires_at: Option<String>,
    /// The sender's receipt token, from a service that gives one (SPEC Part 2 item 10).
    pub receipt: Option<String>,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created").field("id", &self.id).field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// A read: the message, and the views left after it (a service without views says none).
#[derive(serde::Deserialize)]
pub struct Viewed {
    /// The message, as stored.
    pub message: String,
    /// Views left after this one; 0 when the message is now destroyed.
    #[serde(default)]
    pub views_left: u64,
}

/// What a read fetched: a text (JSON), or a file's bytes still on their way.
pub enum Fetched {
    /// A text message.
    Text(Viewed),
    /// A file (`application/octet-stream`): its bytes, to be read from the answer.
    File {
        /// The answer, its body not yet read (at most [`LARGEST_FILE`] bytes are read of it).
        body: std::io::Take<reqwest::blocking::Response>,
        /// Views left after this one.
        views_left: u64,
    },
}

/// The sender's receipt: what happened to a secret.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
pub struct Receipt {
    /// `unread`, `read` or `deleted`.
    pub state: String,
    /// Views that can still be spent.
    pub views_left: u64,
    /// When each view was spent (RFC 3339), oldest first.
    pub read_at: Vec<String>,
    /// When the secret, and this receipt, expire.
    pub expires_at: String,
}

/// One crypt service.
pub struct Service {
    base: String,
    http: reqwest::blocking::Client,
    /// A create token, sent only with creates.
    token: Option<String>,
}

impl Service {
    /// The service at `base` (`https://crypt.example`, maybe with a path), creating with
    /// `token` when it requires one.
    ///
    /// # Errors
    /// A sentence when `base` is not an http(s) URL.
    pub fn new(base: &str, token: Option<&str>) -> Result<Self, String> {
        let base = base.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(format!("'{base}' is not a service URL: it should start with https://"));
        }
        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("crypt-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot set up HTTP: {e}"))?;
        Ok(Self { base, http, token: token.map(str::to_owned).filter(|t| !t.is_empty()) })
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Stores `message` (already sealed) for `ttl` seconds, or the service's default.
    ///
    /// # Errors
    /// [`ServiceError`] when it was not stored.
    pub fn create(&self, message: &str, ttl: Option<u64>, views: Option<u32>) -> Result<Created, ServiceError> {
        let mut body = serde_json::json!({ "message": message });
        if let Some(ttl) = ttl {
            body["ttl"] = ttl.into();
        }
        if let Some(views) = views {
            body["views"] = views.into();
        }
        let mut req = self.http.post(format!("{}/", self.base)).json(&body);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send();
        let text = self.answer(resp, false)?;
        serde_json::from_str(&text).map_err(|_| ServiceError::Unexpected("the create answer has no id".into()))
    }

    /// Stores a file envelope of `len` bytes, read from `body` as it is sent (SPEC Part 2 item
    /// 11: `application/octet-stream`, `ttl` and `views` in the query).
    ///
    /// # Errors
    /// [`ServiceError`] when it was not stored.
    pub fn create_file(
        &self,
        body: impl Read + Send + 'static,
        len: u64,
        ttl: Option<u64>,
        views: Option<u32>,
    ) -> Result<Created, ServiceError> {
        let mut query = Vec::new();
        if let Some(ttl) = ttl {
            query.push(format!("ttl={ttl}"));
        }
        if let Some(views) = views {
            query.push(format!("views={views}"));
        }
        let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
        let mut req = self
            .http
            .post(format!("{}/{query}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .timeout(FILE_TIMEOUT)
            .body(reqwest::blocking::Body::sized(body, len));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let text = self.answer(req.send(), false)?;
        serde_json::from_str(&text).map_err(|_| ServiceError::Unexpected("the create answer has no id".into()))
    }

    /// Spends one view of the message under `id`: on its last view, this destroys it. A text
    /// comes whole; a file's bytes are left in the answer, to be read as they arrive.
    ///
    /// # Errors
    /// [`ServiceError`] when there is none or the service failed.
    pub fn read(&self, id: &str) -> Result<Fetched, ServiceError> {
        let resp = self.http.get(format!("{}/{id}", self.base)).timeout(FILE_TIMEOUT).send();
        if let Ok(r) = &resp {
            let file = r
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/octet-stream"));
            if r.status().is_success() && file {
                let views_left =
                    r.headers().get("x-views-left").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0);
                return Ok(Fetched::File { body: resp.expect("checked").take(LARGEST_FILE), views_left });
            }
        }
        let text = self.answer(resp, true)?;
        serde_json::from_str::<Viewed>(&text)
            .map(Fetched::Text)
            .map_err(|_| ServiceError::Unexpected("the read answer has no message".into()))
    }

    /// The receipt of `id` (which spends nothing).
    ///
    /// # Errors
    /// [`ServiceError`]: 404 when the receipt is wrong or expired.
    pub fn receipt(&self, id: &str, receipt: &str) -> Result<Receipt, ServiceError> {
        let resp = self.http.get(format!("{}/{id}/receipt", self.base)).bearer_auth(receipt).send();
        Self::receipt_from(&self.answer(resp, false)?)
    }

    /// Destroys the message under `id` unread, and answers the receipt after it (`read` when
    /// every view was spent first, so there was nothing left to delete).
    ///
    /// # Errors
    /// [`ServiceError`]: 404 when the receipt is wrong or expired.
    pub fn delete(&self, id: &str, receipt: &str) -> Result<Receipt, ServiceError> {
        let resp = self.http.delete(format!("{}/{id}", self.base)).bearer_auth(receipt).send();
        Self::receipt_from(&self.answer(resp, false)?)
    }

    fn receipt_from(text: &str) -> Result<Receipt, ServiceError> {
        serde_json::from_str(text).map_err(|_| ServiceError::Unexpected("the answer is not a receipt".into()))
    }

    fn answer(&self, resp: reqwest::Result<reqwest::blocking::Response>, read: bool) -> Result<String, ServiceError> {
        let mut resp = resp.map_err(|e| ServiceError::Unreachable { base: self.base.clone(), why: cause(&e) })?;
        let status = resp.status().as_u16();
        // A link can name any server: read no more than an answer can hold, so a hostile one
        // cannot make this command take all the memory there is.
        let mut body = Vec::new();
        if let Err(e) = (&mut resp).take(LARGEST_ANSWER + 1).read_to_end(&mut body) {
            let why = format!("the answer could not be read: {}", innermost(&e));
            return Err(if (200..300).contains(&status) {
                ServiceError::CutOff { read, why }
            } else {
                ServiceError::Unreachable { base: self.base.clone(), why }
            });
        }
        if body.len() as u64 > LARGEST_ANSWER {
            return Err(ServiceError::Unexpected(format!("an answer of more than {} MiB", LARGEST_ANSWER >> 20)));
        }
        let text =
            String::from_utf8(body).map_err(|_| ServiceError::Unexpected("an answer that is not UTF-8".into()))?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        #[derive(serde::Deserialize)]
        struct Error {
            error: String,
            detail: Option<String>,
        }
        match serde_json::from_str::<Error>(&text) {
            Ok(e) => Err(ServiceError::Answered { status, error: e.error, detail: e.detail }),
            Err(_) => Err(ServiceError::Answered { status, error: format!("(not JSON) HTTP {status}"), detail: None }),
        }
    }
}

/// The most this command reads of an answer: far more than the largest message a service can
/// be set to hold in its JSON.
const LARGEST_ANSWER: u64 = 16 << 20;

/// The most this command reads of a file's answer (a hostile service cannot fill the disk).
pub const LARGEST_FILE: u64 = 4 << 30;

/// How long a file's upload or download may take: a large file on a slow link.
const FILE_TIMEOUT: Duration = Duration::from_secs(600);

/// Why a request failed, in a person's words: reqwest's own message says only "error sending
/// request", and the reason (refused, no such host, a certificate, a timeout) is at the end of
/// its chain of sources. Never the URL: a read's URL holds the secret's id.
fn cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "no answer within 30 seconds".into();
    }
    // Only a request's failure comes here: an answer's body is read, and its failure said, in
    // `answer`.
    let what = if e.is_connect() { "could not connect" } else { "the request failed" };
    if std::error::Error::source(e).is_none() {
        what.to_owned()
    } else {
        format!("{what}: {}", innermost(e))
    }
}

/// The last error in `e`'s chain of sources: the one that says what actually happened.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(source) = last.source() {
        last = source;
    }
    // An `io::Error` that wraps another reports it through `get_ref`, not always `source`.
    match last.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
        Some(inner) if !std::ptr::addr_eq(inner, last) => innermost(inner),
        _ => last.to_string(),
    }
}
