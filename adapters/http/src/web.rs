//! The web page (SPEC Part 2 item 7): the files of `web/`, embedded here so the server and the
//! Worker serve the same bytes. `GET /` for a browser is the compose page, `GET /s/{id}` the
//! reveal page and `GET /r/{id}` the sender's receipt page (neither touches the store: a
//! link-preview bot that fetches a link spends nothing), and `GET /assets/{name}` their
//! scripts and style.

use bytes::Bytes;
use crypt_domain::Policy;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

const INDEX: &str = include_str!("../../../web/index.html");
const REVEAL: &[u8] = include_bytes!("../../../web/reveal.html");
const RECEIPT: &[u8] = include_bytes!("../../../web/receipt.html");

/// A language's catalogue (`web/assets/locale-<code>.js`), served as `/assets/locale-<code>.js`.
macro_rules! locale {
    ($code:literal) => {
        (
            concat!("locale-", $code, ".js"),
            include_bytes!(concat!("../../../web/assets/locale-", $code, ".js")),
            "text/javascript; charset=utf-8",
        )
    };
}

/// Every asset: its name under `/assets/`, its bytes and its type.
const ASSETS: [(&str, &[u8], &str); 24] = [
    ("icon.svg", include_bytes!("../../../web/assets/icon.svg"), "image/svg+xml"),
    ("style.css", include_bytes!("../../../web/assets/style.css"), "text/css; charset=utf-8"),
    ("envelope.js", include_bytes!("../../../web/assets/envelope.js"), "text/javascript; charset=utf-8"),
    ("compose.js", include_bytes!("../../../web/assets/compose.js"), "text/javascript; charset=utf-8"),
    ("reveal.js", include_bytes!("../../../web/assets/reveal.js"), "text/javascript; charset=utf-8"),
    ("receipt.js", include_bytes!("../../../web/assets/receipt.js"), "text/javascript; charset=utf-8"),
    ("qr.js", include_bytes!("../../../web/assets/qr.js"), "text/javascript; charset=utf-8"),
    // qrcode-generator 2.0.4 (MIT, Kazuhiko Arase), vendored: the page's QR encoder.
    ("qrcode.js", include_bytes!("../../../web/assets/qrcode.js"), "text/javascript; charset=utf-8"),
    ("i18n.js", include_bytes!("../../../web/assets/i18n.js"), "text/javascript; charset=utf-8"),
    // The catalogues, one per language, loaded by i18n.js.
    locale!("en"),
    locale!("ar"),
    locale!("de"),
    locale!("es"),
    locale!("fr"),
    locale!("it"),
    locale!("ja"),
    locale!("nl"),
    locale!("pl"),
    locale!("pt"),
    locale!("ru"),
    locale!("sv"),
    locale!("tr"),
    locale!("uk"),
    locale!("zh"),
];

/// Only this service's own scripts, styles and API; no inline script or style, no frames, no
/// form posts, no plugins.
const CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
);

/// The pages, rendered once per policy (the compose page lists the allowed expiry times and
/// the most views).
#[derive(Debug, Clone)]
pub(crate) struct Pages {
    index: Bytes,
}

impl Pages {
    pub(crate) fn new(policy: &Policy) -> Self {
        let index = INDEX
            .replace("{{TTL_OPTIONS}}", &ttl_options(policy))
            .replace("{{MAX_VIEWS}}", &policy.max_views().to_string())
            .replace("{{MAX_FILE_BYTES}}", &policy.max_file_bytes().to_string())
            .replace("{{MAX_FILE_SIZE}}", &size_in_words(policy.max_file_bytes()));
        Self { index: Bytes::from(index) }
    }

    /// The compose page.
    pub(crate) fn compose(&self) -> Response<Bytes> {
        page(self.index.clone(), "text/html; charset=utf-8")
    }

    /// The reveal page, whatever the id: it reads the id and key from its own address.
    pub(crate) fn reveal(&self) -> Response<Bytes> {
        page(Bytes::from_static(REVEAL), "text/html; charset=utf-8")
    }

    /// The sender's receipt page, whatever the id: it reads the id and the receipt token from
    /// its own address, and asks for the receipt only when the sender presses its button.
    pub(crate) fn receipt(&self) -> Response<Bytes> {
        page(Bytes::from_static(RECEIPT), "text/html; charset=utf-8")
    }

    /// An asset by name; `None` for a name that is not one.
    pub(crate) fn asset(&self, name: &str) -> Option<Response<Bytes>> {
        let (_, bytes, kind) = ASSETS.iter().find(|(n, _, _)| *n == name)?;
        Some(page(Bytes::from_static(bytes), kind))
    }
}

/// A size as the page says it: `10 MB` for 10 MiB, `512 KB`, or in bytes when neither is whole.
fn size_in_words(bytes: usize) -> String {
    match bytes {
        b if b % (1 << 20) == 0 => format!("{} MB", b >> 20),
        b if b % 1024 == 0 => format!("{} KB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// True when the request's `Accept` names `text/html`: a browser navigating to the page.
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")))
}

fn page(body: Bytes, content_type: &'static str) -> Response<Bytes> {
    let mut resp = crate::response(StatusCode::OK, body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, CSP);
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("x-robots-tag", HeaderValue::from_static("noindex, nofollow"));
    resp
}

/// The `<option>`s of the expiry choice: the usual durations that fall in the allowed range,
/// plus the range's ends and the default, with the default selected.
fn ttl_options(policy: &Policy) -> String {
    let (min, max, default) = (policy.min_ttl_secs(), policy.max_ttl_secs(), policy.default_ttl_secs());
    let mut choices: Vec<u64> =
        [300, 3600, 86_400, 7 * 86_400].into_iter().filter(|s| (min..=max).contains(s)).collect();
    choices.extend([min, max, default]);
    choices.sort_unstable();
    choices.dedup();
    choices
        .iter()
        .map(|&secs| {
            let selected = if secs == default { " selected" } else { "" };
            format!("          <option value=\"{secs}\"{selected}>{}</option>", human(secs))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn human(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3600 == 0 => (s / 3600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypt_domain::Limits;

    #[test]
    fn the_expiry_choice_covers_the_allowed_range_with_the_default_selected() {
        let options = ttl_options(&Policy::default());
        assert!(options.contains(r#"<option value="60">1 minute</option>"#), "{options}");
        assert!(options.contains(r#"<option value="300">5 minutes</option>"#));
        assert!(options.contains(r#"<option value="3600">1 hour</option>"#));
        assert!(options.contains(r#"<option value="86400" selected>1 day</option>"#));
        assert!(!options.contains("7 days"), "beyond the maximum: {options}");
        let narrow =
            Policy::new(Limits { min_ttl_secs: 90, max_ttl_secs: 5400, default_ttl_secs: 5400, ..Limits::default() })
                .unwrap();
        let options = ttl_options(&narrow);
        assert_eq!(options.matches("<option").count(), 4, "{options}");
        assert!(options.contains(r#"<option value="90">90 seconds</option>"#), "{options}");
        assert!(options.contains(r#"<option value="5400" selected>90 minutes</option>"#), "{options}");
    }

    #[test]
    fn the_pages_reference_only_embedded_assets() {
        let pages = Pages::new(&Policy::default());
        for html in [
            String::from_utf8(pages.compose().body().to_vec()).unwrap(),
            String::from_utf8(REVEAL.to_vec()).unwrap(),
            String::from_utf8(RECEIPT.to_vec()).unwrap(),
        ] {
            assert!(!html.contains("{{"), "an unrendered placeholder");
            assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style");
            for reference in html.split(['"', '\'']).filter(|s| s.contains("assets/")) {
                let name = reference.rsplit('/').next().unwrap();
                assert!(pages.asset(name).is_some(), "{reference} is not embedded");
            }
        }
        for (name, _, _) in ASSETS {
            let asset = pages.asset(name).unwrap();
            let text = String::from_utf8(asset.body().to_vec()).unwrap();
            // Comments may name where a file came from (the vendored encoder's licence).
            let code: String =
                text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
            let elsewhere = code.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !elsewhere.contains("http://") && !elsewhere.contains("https://"),
                "{name} loads nothing from elsewhere"
            );
            // Every module a script imports is embedded too.
            for import in
                code.split(['"', '`']).filter(|s| s.starts_with("./") && s.ends_with(".js") && !s.contains("${"))
            {
                assert!(pages.asset(&import[2..]).is_some(), "{name} imports {import}, which is not embedded");
            }
        }
        // i18n.js loads `./locale-${code}.js` for each language it lists: each is embedded.
        let i18n = String::from_utf8(pages.asset("i18n.js").unwrap().body().to_vec()).unwrap();
        let listed = &i18n[i18n.find("export const LANGUAGES = {").unwrap()..];
        let listed = &listed[..listed.find("};").unwrap()];
        for line in listed.lines().skip(1) {
            let code = line.trim().split(':').next().unwrap();
            assert!(pages.asset(&format!("locale-{code}.js")).is_some(), "locale-{code}.js is not embedded");
        }
    }
}
