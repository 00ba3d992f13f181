//! The request target from the URL the runtime hands over (plain text, testable off wasm32).

/// The path and query of an absolute URL (`https://host/p?q` gives `/p?q`); `/` when it has
/// no path. The runtime hands over URLs it has already parsed, so no validation is repeated.
pub(crate) fn target_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    let target = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    target.split('#').next().unwrap_or("/")
}

#[cfg(test)]
mod tests {
    use super::target_of;

    #[test]
    fn the_target_is_the_path_and_query() {
        assert_eq!(target_of("https://crypt.example/abcde"), "/abcde");
        assert_eq!(target_of("http://127.0.0.1:8787/?x=1"), "/?x=1");
        assert_eq!(target_of("https://crypt.example"), "/");
        assert_eq!(target_of("https://crypt.example/s/abcde#key"), "/s/abcde");
    }
}
