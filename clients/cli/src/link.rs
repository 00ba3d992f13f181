//! Share links: `{service}/s/{id}#{key}`, where the service may sit under a path prefix.

use crypt_envelope::Fragment;

/// A share link, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The service's base URL, without a trailing slash.
    pub base: String,
    /// The secret's id.
    pub id: String,
    /// What follows `#`, if anything.
    pub fragment: Option<String>,
}

impl Link {
    /// The link to share for `id` on the service at `base`.
    pub fn share(base: &str, id: &str, fragment: &Fragment) -> String {
        format!("{base}/s/{id}#{}", fragment.encode())
    }

    /// Reads a share link.
    ///
    /// # Errors
    /// A sentence saying what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (url, fragment) = match text.split_once('#') {
            Some((url, f)) => (url, Some(f).filter(|f| !f.is_empty()).map(str::to_owned)),
            None => (text, None),
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("'{url}' is not a link: it should start with https://"));
        }
        let Some(at) = url.rfind("/s/") else {
            return Err("not a crypt share link: it has no /s/{id}".into());
        };
        let id = url[at + 3..].trim_end_matches('/');
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("not a crypt share link: the part after /s/ is not an id".into());
        }
        Ok(Self { base: url[..at].to_owned(), id: id.to_owned(), fragment })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypt_envelope::Key;

    #[test]
    fn links_round_trip_and_keep_a_path_prefix() {
        let f = Fragment { key: Key::from_bytes([1; 32]), passphrase: false };
        let link = Link::share("https://example.com/crypt", "k3p9x", &f);
        assert_eq!(
            Link::parse(&link).unwrap(),
            Link { base: "https://example.com/crypt".into(), id: "k3p9x".into(), fragment: Some(f.encode()) }
        );
        assert_eq!(Link::parse("http://h:1/s/abcde").unwrap().fragment, None);
        assert_eq!(Link::parse("http://h:1/s/abcde#").unwrap().fragment, None);
    }

    #[test]
    fn what_is_not_a_link_is_said() {
        for bad in ["abcde", "ftp://h/s/abcde", "https://h/abcde#k", "https://h/s/#k", "https://h/s/ab-cd#k"] {
            assert!(Link::parse(bad).is_err(), "{bad}");
        }
    }
}
