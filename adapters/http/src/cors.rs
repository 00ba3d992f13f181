//! Cross-origin rules: who may call the API from a browser.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

/// The origins allowed to call the API from a browser (`CRYPT_CORS_ORIGINS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cors {
    /// `*`: any origin.
    Any,
    /// Only these origins (e.g. `https://crypt.example`), compared exactly.
    List(Vec<HeaderValue>),
}

/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: HeaderValue = HeaderValue::from_static("86400");

impl Cors {
    /// Reads the setting: `*`, or a comma-separated list of origins.
    ///
    /// # Errors
    /// A sentence naming the entry that is not an origin (`scheme://host[:port]`).
    pub fn parse(setting: &str) -> Result<Self, String> {
        let setting = setting.trim();
        if setting == "*" {
            return Ok(Cors::Any);
        }
        let mut origins = Vec::new();
        for entry in setting.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let entry = entry.trim_end_matches('/');
            let well_formed = (entry.starts_with("https://") || entry.starts_with("http://"))
                && !entry.split_once("://").is_some_and(|(_, rest)| rest.is_empty() || rest.contains('/'));
            if !well_formed {
                return Err(format!("'{entry}' is not an origin like https://crypt.example"));
            }
            origins.push(HeaderValue::from_str(entry).map_err(|_| format!("'{entry}' is not a valid header value"))?);
        }
        if origins.is_empty() {
            return Err("must be * or a comma-separated list of origins".into());
        }
        Ok(Cors::List(origins))
    }

    /// The CORS headers that are the same for every request: `Access-Control-Allow-Origin: *`,
    /// or `Vary: Origin` when the answer depends on the caller.
    pub(crate) fn decorate_always(&self, h: &mut HeaderMap) {
        match self {
            Cors::Any => {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            }
            Cors::List(_) => {
                h.insert(header::VARY, HeaderValue::from_static("Origin"));
            }
        }
    }

    /// The CORS headers that depend on the caller's `Origin`. Every response carries
    /// `Access-Control-Allow-Origin`: with a list, a listed origin is echoed; any other caller
    /// gets the first listed origin, which its browser will refuse to match.
    pub(crate) fn decorate_per_request(&self, origin: Option<&HeaderValue>, h: &mut HeaderMap) {
        if let Cors::List(list) = self {
            let allowed = origin.and_then(|o| list.iter().find(|l| *l == o)).unwrap_or(&list[0]);
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed.clone());
        }
    }

    /// The answer to `OPTIONS` on any path: 204 with the allowed methods and headers.
    pub(crate) fn preflight(&self) -> Response<Bytes> {
        let mut resp = Response::new(Bytes::new());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        *resp.headers_mut() = HeaderMap::with_capacity(8);
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, DELETE, OPTIONS"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Content-Type, Authorization"));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE);
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_star_and_lists() {
        assert_eq!(Cors::parse("*"), Ok(Cors::Any));
        assert_eq!(
            Cors::parse("https://a.example, http://localhost:3000/").unwrap(),
            Cors::List(vec![
                HeaderValue::from_static("https://a.example"),
                HeaderValue::from_static("http://localhost:3000")
            ])
        );
        assert!(Cors::parse("a.example").is_err());
        assert!(Cors::parse("https://a.example/path").is_err());
        assert!(Cors::parse(" , ").is_err());
    }

    #[test]
    fn a_listed_origin_is_echoed_and_others_get_the_first() {
        let cors = Cors::parse("https://a.example,https://b.example").unwrap();
        let mut h = HeaderMap::new();
        cors.decorate_always(&mut h);
        assert_eq!(h[header::VARY], "Origin");
        assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        cors.decorate_per_request(Some(&HeaderValue::from_static("https://b.example")), &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://b.example");
        let mut h = HeaderMap::new();
        cors.decorate_per_request(Some(&HeaderValue::from_static("https://evil.example")), &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.example");
        let mut h = HeaderMap::new();
        cors.decorate_per_request(None, &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.example");
    }

    #[test]
    fn any_origin_is_the_same_answer_for_everyone() {
        let mut h = HeaderMap::new();
        Cors::Any.decorate_always(&mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!h.contains_key(header::VARY));
        Cors::Any.decorate_per_request(Some(&HeaderValue::from_static("https://b.example")), &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }
}
