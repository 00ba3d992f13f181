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
    /// `/metrics`: Prometheus metrics (the server only).
    Metrics,
    /// `/openapi.json`: the API described in OpenAPI 3.1.
    OpenApi,
    /// `/{id}`, any path of exactly one segment: read and destroy. The id may have the wrong
    /// shape; that is a 404 later.
    Message(&'a str),
    /// `/{id}/receipt`: the sender's receipt (SPEC Part 2 item 10), with the receipt token.
    Receipt(&'a str),
    /// `/s/{id}`: the reveal page of a share link. It never touches the store.
    Reveal,
    /// `/r/{id}`: the sender's receipt page. It never touches the store either.
    ReceiptPage,
    /// `/assets/{name}`: a script or style of the pages.
    Asset(&'a str),
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
            "/metrics" => Route::Metrics,
            "/openapi.json" => Route::OpenApi,
            _ => match path.strip_prefix('/') {
                Some(rest) if !rest.contains('/') => Route::Message(rest),
                Some(rest) => match rest.split_once('/') {
                    Some(("s", id)) if !id.is_empty() && !id.contains('/') => Route::Reveal,
                    Some(("r", id)) if !id.is_empty() && !id.contains('/') => Route::ReceiptPage,
                    Some((id, "receipt")) if !id.is_empty() => Route::Receipt(id),
                    Some(("assets", name)) if !name.is_empty() && !name.contains('/') => Route::Asset(name),
                    _ => Route::Unknown,
                },
                None => Route::Unknown,
            },
        }
    }

    /// An operations or page route: never rate limited, never touches a message.
    pub fn is_uncounted(&self) -> bool {
        matches!(
            self,
            Route::Health
                | Route::Ready
                | Route::Metrics
                | Route::OpenApi
                | Route::Reveal
                | Route::ReceiptPage
                | Route::Asset(_)
        )
    }

    /// A short label for logs and metrics: never the id itself.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Root => "create",
            Route::Health => "healthz",
            Route::Ready => "readyz",
            Route::Metrics => "metrics",
            Route::OpenApi => "openapi",
            Route::Message(_) => "open",
            Route::Receipt(_) => "receipt",
            Route::Reveal => "reveal-page",
            Route::ReceiptPage => "receipt-page",
            Route::Asset(_) => "asset",
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
        assert_eq!(Route::of("/s/abcde"), Route::Reveal);
        assert_eq!(Route::of("/assets/reveal.js"), Route::Asset("reveal.js"));
        assert_eq!(Route::of("/abcde/receipt"), Route::Receipt("abcde"));
        assert_eq!(Route::of("/r/abcde"), Route::ReceiptPage);
        for unknown in [
            "/a/b",
            "/abcde/",
            "//",
            "/a/b/c",
            "/s/",
            "/s/a/b",
            "/assets/",
            "/assets/a/b",
            "/r/",
            "/r/a/b",
            "//receipt",
            "/abcde/receipt/",
            "/abcde/receipts",
            "/a/b/receipt",
        ] {
            assert_eq!(Route::of(unknown), Route::Unknown, "{unknown}");
        }
        assert!(Route::Ready.is_uncounted() && Route::Reveal.is_uncounted() && !Route::Root.is_uncounted());
        assert!(Route::ReceiptPage.is_uncounted() && !Route::Receipt("abcde").is_uncounted());
    }
}
