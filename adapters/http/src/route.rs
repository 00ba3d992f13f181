//! Where a request goes, decided from its path alone.

/// A route of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/`: create.
    Root,
    /// `/healthz`: the process is alive.
    Health,
    /// `/readyz`: the store is reachable.
    Ready,
    /// `/{id}`, any path of exactly one segment: read and destroy. The id may have the wrong
    /// shape; that is a 404 later.
    Message(&'a str),
    /// A path of two or more segments (`/a/b`, and `/abcde/` too): no route serves it.
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

    /// An operations route: never rate limited, never touches a message.
    pub fn is_operational(&self) -> bool {
        matches!(self, Route::Health | Route::Ready)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_segment_is_an_id_and_more_is_unknown() {
        assert_eq!(Route::of("/"), Route::Root);
        assert_eq!(Route::of(""), Route::Root);
        assert_eq!(Route::of("/abcde"), Route::Message("abcde"));
        assert_eq!(Route::of("/%2E%2E"), Route::Message("%2E%2E"));
        assert_eq!(Route::of("/healthz"), Route::Health);
        for unknown in ["/a/b", "/abcde/", "//", "/a/b/c"] {
            assert_eq!(Route::of(unknown), Route::Unknown, "{unknown}");
        }
        assert!(Route::Ready.is_operational() && !Route::Root.is_operational());
    }
}
