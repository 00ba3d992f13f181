//! Share links, `{service}/s/{id}#{key}`, and the sender's receipt links,
//! `{service}/r/{id}#{receipt}`, where the service may sit under a path prefix. Both keep what
//! must stay secret in the fragment, which a browser never sends.

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

    /// The sender's receipt link for `id` on the service at `base`.
    pub fn receipt(base: &str, id: &str, receipt: &str) -> String {
        format!("{base}/r/{id}#{receipt}")
    }

    /// Reads a share link.
    ///
    /// # Errors
    /// A sentence saying what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_kind(text, Kind::Share)
    }

    /// Reads a receipt link, whose fragment (the receipt) it requires.
    ///
    /// # Errors
    /// A sentence saying what is wrong with it.
    pub fn parse_receipt(text: &str) -> Result<Self, String> {
        let link = Self::parse_kind(text, Kind::Receipt)?;
        match &link.fragment {
            Some(f) if f.bytes().all(|b| b.is_ascii_alphanumeric()) => Ok(link),
            Some(_) => Err("the receipt link is damaged: the part after '#' is not a receipt".into()),
            None => Err("the receipt link has no receipt (the part after '#'); use the whole link `send` gave".into()),
        }
    }

    fn parse_kind(text: &str, kind: Kind) -> Result<Self, String> {
        let (mark, other) = match kind {
            Kind::Share => ("/s/", "/r/"),
            Kind::Receipt => ("/r/", "/s/"),
        };
        let text = text.trim();
        let (url, fragment) = match text.split_once('#') {
            Some((url, f)) => (url, Some(f).filter(|f| !f.is_empty()).map(str::to_owned)),
            None => (text, None),
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("'{url}' is not a link: it should start with https://"));
        }
        let Some(at) = url.rfind(mark) else {
            return Err(match (kind, url.contains(other)) {
                (Kind::Share, true) => {
                    "this is a receipt link, for the sender: `crypt status` and `crypt delete` take it".into()
                }
                (Kind::Receipt, true) => {
                    "this is a share link, not a receipt link: `crypt open` reads it (and so destroys it)".into()
                }
                (Kind::Share, false) => "not a crypt share link: it has no /s/{id}".into(),
                (Kind::Receipt, false) => "not a crypt receipt link: it has no /r/{id}".into(),
            });
        };
        let id = url[at + 3..].trim_end_matches('/');
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!("not a crypt link: the part after {mark} is not an id"));
        }
        Ok(Self { base: url[..at].to_owned(), id: id.to_owned(), fragment })
    }
}

/// Which of the two links is being read.
#[derive(Clone, Copy)]
enum Kind {
    Share,
    Receipt,
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
    fn receipt_links_round_trip_and_are_told_from_share_links() {
        let link = Link::receipt("https://example.com/crypt", "k3p9x", "Rc1pt");
        assert_eq!(link, "https://example.com/crypt/r/k3p9x#Rc1pt");
        assert_eq!(
            Link::parse_receipt(&link).unwrap(),
            Link { base: "https://example.com/crypt".into(), id: "k3p9x".into(), fragment: Some("Rc1pt".into()) }
        );
        assert!(Link::parse(&link).unwrap_err().contains("receipt link"));
        assert!(Link::parse_receipt("https://h/s/abcde#key").unwrap_err().contains("share link"));
        assert!(Link::parse_receipt("https://h/r/abcde").unwrap_err().contains("no receipt"));
        assert!(Link::parse_receipt("https://h/r/abcde#a%20b").unwrap_err().contains("damaged"));
    }

    #[test]
    fn what_is_not_a_link_is_said() {
        for bad in ["abcde", "ftp://h/s/abcde", "https://h/abcde#k", "https://h/s/#k", "https://h/s/ab-cd#k"] {
            assert!(Link::parse(bad).is_err(), "{bad}");
        }
    }
}
