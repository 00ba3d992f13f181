//! Every way a request can fail, and the one mapping from a failure to a status and a body.
//!
//! The `error` string of each body is the reference contract's (SPEC.md Part 1), byte for byte,
//! so existing clients can match it; the plainer explanation goes in `detail`, which the
//! reference never sent and clients may ignore.

use crate::parse::ParseError;
use bytes::Bytes;
use crypt_domain::{AdmitError, CreateError, MessageError, OpenError, StoreError};
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use std::borrow::Cow;

/// Why a runtime could not read a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRejection {
    /// The body is larger than the cap (by its Content-Length, or while it streamed in).
    TooLarge,
    /// The client did not send the body within the body-read timeout.
    TimedOut,
    /// The connection broke or the framing was invalid.
    Malformed,
    /// Bodies already in flight hold all the memory the runtime lets them hold together
    /// (`CRYPT_MAX_INFLIGHT_BODY_BYTES`), and none was given back in time.
    Busy,
}

/// A request that is answered with an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The create body is empty or not JSON.
    InvalidJson(ParseError),
    /// The create body is JSON, but `message` is missing, not a string, empty or whitespace.
    MessageRequired(ParseError),
    /// `ttl` is not a whole number of seconds in the allowed range.
    InvalidTtl {
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// `views` is not a whole number in the allowed range.
    InvalidViews {
        /// Largest allowed value.
        max: u32,
    },
    /// The message is over the size limit.
    MessageTooLarge {
        /// The limit, in bytes of UTF-8.
        max: usize,
        /// The message's size, in bytes of UTF-8.
        actual: usize,
    },
    /// The file is over its size limit (`CRYPT_MAX_FILE_BYTES`), by its declared length, while
    /// it streamed in, or once read.
    FileTooLarge {
        /// The limit, in bytes.
        max: usize,
    },
    /// The runtime refused the body itself.
    Body(BodyRejection),
    /// The client is over its rate limit.
    RateLimited {
        /// Whole seconds until it may try again.
        retry_after_secs: u64,
    },
    /// Create tokens are configured and the request has none of them.
    Unauthorized,
    /// No message under that id (never was, already read, expired, or not an id).
    MessageNotFound,
    /// A path no route serves (two or more segments).
    RouteNotFound,
    /// The path exists but not with this method.
    MethodNotAllowed {
        /// The methods it does serve, for the `Allow` header.
        allow: &'static str,
    },
    /// Every id tried was taken.
    NoUniqueId {
        /// How many were tried.
        attempts: u32,
    },
    /// The store did not answer.
    StorageUnavailable,
    /// The store is at capacity.
    StorageFull,
    /// Anything unexpected: a bug, a missing binding, a panic. Logged by whoever saw it; the
    /// client learns nothing more.
    Internal,
}

impl ApiError {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_)
            | ApiError::MessageRequired(_)
            | ApiError::InvalidTtl { .. }
            | ApiError::InvalidViews { .. } => StatusCode::BAD_REQUEST,
            ApiError::Body(BodyRejection::Malformed) => StatusCode::BAD_REQUEST,
            ApiError::Body(BodyRejection::TooLarge)
            | ApiError::MessageTooLarge { .. }
            | ApiError::FileTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Body(BodyRejection::Busy) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Body(BodyRejection::TimedOut) => StatusCode::REQUEST_TIMEOUT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::MessageNotFound | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NoUniqueId { .. } | ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        }
    }

    /// The `error` string: one of SPEC.md's, exactly.
    pub fn error(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            ApiError::InvalidJson(_) | ApiError::Body(BodyRejection::Malformed) => "Invalid JSON body",
            ApiError::MessageRequired(_) => "Field 'message' is required and cannot be empty",
            ApiError::InvalidTtl { min, max } => {
                return Cow::Owned(format!("Field 'ttl' must be a whole number of seconds from {min} to {max}"))
            }
            ApiError::InvalidViews { max } => {
                return Cow::Owned(format!("Field 'views' must be a whole number from 1 to {max}"))
            }
            ApiError::MessageTooLarge { max, .. } => return Cow::Owned(too_large(*max)),
            ApiError::FileTooLarge { max } => return Cow::Owned(file_too_large(*max)),
            ApiError::Body(BodyRejection::Busy) => "Server busy",
            ApiError::Body(BodyRejection::TooLarge) => "Request body too large",
            ApiError::Body(BodyRejection::TimedOut) => "Request body timed out",
            ApiError::RateLimited { .. } => "Rate limit exceeded",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::MessageNotFound => "Message not found",
            ApiError::RouteNotFound => "Not found",
            ApiError::MethodNotAllowed { .. } => "Method not allowed",
            ApiError::NoUniqueId { .. } => "Could not generate a unique ID",
            ApiError::StorageUnavailable => "Storage unavailable",
            ApiError::StorageFull => "Storage full",
            ApiError::Internal => "Internal server error",
        })
    }

    /// The plainer explanation for the optional `detail` field, where there is one to give.
    pub fn detail(&self) -> Option<String> {
        match self {
            ApiError::InvalidJson(why) | ApiError::MessageRequired(why) => Some(why.to_string()),
            ApiError::MessageTooLarge { max, actual } => {
                Some(format!("the message is {actual} bytes of UTF-8; the limit is {max} bytes"))
            }
            ApiError::Body(BodyRejection::TooLarge) => {
                Some("the request body is larger than this service accepts (CRYPT_MAX_BODY_BYTES)".into())
            }
            ApiError::Body(BodyRejection::Malformed) => {
                Some("the request body could not be read (broken framing or connection)".into())
            }
            ApiError::FileTooLarge { max } => {
                Some(format!("the file is larger than this service accepts: {max} bytes (CRYPT_MAX_FILE_BYTES)"))
            }
            ApiError::Body(BodyRejection::Busy) => Some(
                "other uploads hold all the memory this service gives request bodies \
                 (CRYPT_MAX_INFLIGHT_BODY_BYTES); try again in a moment"
                    .into(),
            ),
            ApiError::MethodNotAllowed { allow } => Some(format!("this path answers {allow}")),
            ApiError::RouteNotFound => Some("no route has a path of more than one segment".into()),
            _ => None,
        }
    }

    /// The response: status, the JSON body, and the headers this error needs (`Allow`,
    /// `Retry-After`). The common headers are added by [`crate::Api`] like on any response.
    pub fn into_response(self) -> Response<Bytes> {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            error: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            detail: Option<&'a str>,
        }
        let (error, detail) = (self.error(), self.detail());
        // Serializing a struct of two strings cannot fail.
        let bytes = serde_json::to_vec(&Body { error: &error, detail: detail.as_deref() }).unwrap_or_default();
        let mut resp = crate::response(self.status(), Bytes::from(bytes));
        match self {
            ApiError::MethodNotAllowed { allow } => {
                resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::RateLimited { retry_after_secs } => {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            ApiError::Body(BodyRejection::Busy) => {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            ApiError::Unauthorized => {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // The rest of the body is not going to be read: the connection ends after this.
            ApiError::Body(_) | ApiError::FileTooLarge { .. } => {
                resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        resp
    }
}

/// "Message exceeds maximum size of 100KB" for the reference's 102,400 bytes; a limit that is
/// not a whole number of KiB is said in bytes.
fn too_large(max: usize) -> String {
    if max % 1024 == 0 {
        format!("Message exceeds maximum size of {}KB", max / 1024)
    } else {
        format!("Message exceeds maximum size of {max} bytes")
    }
}

/// "File exceeds maximum size of 10MB" for the default 10 MiB (SPEC Part 2 item 11); a limit
/// that is not a whole number of MiB is said in bytes.
fn file_too_large(max: usize) -> String {
    if max % 1_048_576 == 0 {
        format!("File exceeds maximum size of {}MB", max / 1_048_576)
    } else {
        format!("File exceeds maximum size of {max} bytes")
    }
}

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::Empty | ParseError::Syntax { .. } | ParseError::NotUtf8 { .. } => ApiError::InvalidJson(e),
            ParseError::NotAnObject(_)
            | ParseError::MessageMissing
            | ParseError::MessageNotAString(_)
            | ParseError::MessageBlank
            | ParseError::FileEmpty => ApiError::MessageRequired(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full => {
                tracing::warn!("store is full; refusing new messages");
                ApiError::StorageFull
            }
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                ApiError::StorageUnavailable
            }
        }
    }
}

impl From<AdmitError> for ApiError {
    fn from(e: AdmitError) -> Self {
        match e {
            AdmitError::RateLimited { retry_after_secs } => ApiError::RateLimited { retry_after_secs },
            AdmitError::Store(e) => e.into(),
        }
    }
}

impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Message(MessageError::Empty) => ApiError::MessageRequired(ParseError::MessageBlank),
            CreateError::Message(MessageError::TooLarge { max, actual }) => ApiError::MessageTooLarge { max, actual },
            CreateError::Message(MessageError::FileTooLarge { max, .. }) => ApiError::FileTooLarge { max },
            CreateError::Ttl(range) => ApiError::InvalidTtl { min: range.min, max: range.max },
            CreateError::Views { max } => ApiError::InvalidViews { max },
            CreateError::NoUniqueId { attempts } => {
                tracing::error!(attempts, "no unused id found; consider a longer CRYPT_ID_LENGTH");
                ApiError::NoUniqueId { attempts }
            }
            CreateError::Store(e) => e.into(),
        }
    }
}

impl From<OpenError> for ApiError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::NotFound => ApiError::MessageNotFound,
            OpenError::Store(e) => e.into(),
        }
    }
}
