//! # crypt-conformance: SPEC.md over real HTTP
//!
//! The black-box suite. Every check in [`checks`] talks to a running crypt through a
//! [`Target`] (a base URL plus what that deployment can do) that a **launcher** starts with a
//! [`Profile`] of settings. Adding a runtime × store pair is one line:
//!
//! ```ignore
//! crypt_conformance::conformance_suite!(my_launcher);
//! ```
//!
//! where `my_launcher: fn(Profile) -> BoxFuture<'static, Target>`. The launchers shipped here
//! are in [`launch`]: the in-process server with the memory store, and any deployment whose URL
//! is in `CRYPT_BASE_URL`.

pub mod checks;
pub mod launch;
pub mod openapi;
mod raw;
pub mod record;
pub mod wrangler;

use futures::future::BoxFuture;
use std::any::Any;
use std::collections::HashMap;

pub use raw::{raw_exchange, RawResponse};

/// Settings a check needs from the deployment it runs against, as `CRYPT_*` variables (or the
/// reference's `RATE_LIMIT_PER_SECOND`).
///
/// Every launcher applies the same base: rate limiting off (so checks do not trip over each
/// other's requests) and a minimum `ttl` of 1 second (so expiry can be watched). A check that
/// needs more says so in its profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Extra settings on top of the base.
    pub settings: Vec<(&'static str, String)>,
}

impl Profile {
    /// The base settings only.
    pub fn base() -> Self {
        Self { settings: Vec::new() }
    }

    /// The base plus one setting.
    pub fn with(mut self, name: &'static str, value: impl ToString) -> Self {
        self.settings.push((name, value.to_string()));
        self
    }

    /// True when this is the base profile, which a deployment we did not start may match.
    pub fn is_base(&self) -> bool {
        self.settings.is_empty()
    }

    /// The full set of variables: the base, then this profile's additions.
    pub fn env(&self) -> HashMap<String, String> {
        let mut env: HashMap<String, String> = [("CRYPT_RATE_LIMIT_MAX", "0"), ("CRYPT_MIN_TTL_SECS", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        // The reference's setting cannot stand beside the window/budget pair.
        if self.settings.iter().any(|(k, _)| *k == "RATE_LIMIT_PER_SECOND") {
            env.remove("CRYPT_RATE_LIMIT_MAX");
        }
        env.extend(self.settings.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    }
}

/// What a deployment can be asked to prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Burn-on-read is atomic: concurrent reads of one id give exactly one 200 (not on KV).
    pub exact_once: bool,
    /// The store has a byte capacity a test can fill (the memory store).
    pub capacity: bool,
    /// The launcher applied the requested [`Profile`] (false for a deployment we did not start).
    pub configurable: bool,
    /// Raw TCP checks (slow clients, hand-framed bodies) can reach it: plain `http://`.
    pub raw_tcp: bool,
    /// The header-read timeout is a setting of this runtime.
    pub header_timeout: bool,
    /// Request bodies reach crypt as they stream in, so a body declared huge but never sent is
    /// refused at once. (Under `wrangler dev` a local proxy buffers the whole body first; at
    /// the real edge, Cloudflare refuses bodies over the plan's limit itself.)
    pub streamed_bodies: bool,
}

impl Caps {
    /// The self-hosted server on the memory store, started by the test: it can prove everything.
    pub const SELF_HOSTED: Caps = Caps {
        exact_once: true,
        capacity: true,
        configurable: true,
        raw_tcp: true,
        header_timeout: true,
        streamed_bodies: true,
    };
}

/// A running deployment under test.
pub struct Target {
    /// Base URL without a trailing slash.
    pub base: String,
    /// What it can be asked to prove.
    pub caps: Caps,
    /// A client with keep-alive, reused by the check.
    pub http: reqwest::Client,
    /// Whatever keeps the deployment alive (a server handle, a child process); dropped last.
    pub keep: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("base", &self.base).field("caps", &self.caps).finish_non_exhaustive()
    }
}

/// Starts a deployment with a profile.
pub type Launch = fn(Profile) -> BoxFuture<'static, Target>;

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Resp {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as JSON; panics with the body text when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): status {}, headers {:?}, body {:?}",
                self.status,
                self.headers,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// One header as text, or "" when absent.
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
    }
}

impl Target {
    /// Sends a request and reads the whole response.
    pub async fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>, headers: &[(&str, &str)]) -> Resp {
        let method_name = method;
        let sent = body.clone();
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("valid method");
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("request to {path} failed: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.expect("read body").to_vec();
        let resp = Resp { status, headers, body };
        record::exchange(method_name, path, sent.as_deref(), &resp);
        resp
    }

    /// `POST /` with a raw body.
    pub async fn post_raw(&self, body: impl Into<Vec<u8>>) -> Resp {
        self.send("POST", "/", Some(body.into()), &[("content-type", "application/json")]).await
    }

    /// `POST /` with a JSON value.
    pub async fn post(&self, body: serde_json::Value) -> Resp {
        self.post_raw(body.to_string()).await
    }

    /// Creates a message and returns its id, asserting success.
    pub async fn create(&self, message: &str) -> String {
        let r = self.post(serde_json::json!({ "message": message })).await;
        assert_eq!(r.status, 200, "create failed: {:?}", String::from_utf8_lossy(&r.body));
        r.json()["id"].as_str().expect("id is a string").to_owned()
    }

    /// `GET /{path}`.
    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None, &[]).await
    }

    /// `host:port` of the base URL, for raw TCP checks.
    pub fn authority(&self) -> String {
        let rest = self.base.split_once("://").map(|(_, r)| r).unwrap_or(&self.base);
        rest.trim_end_matches('/').to_owned()
    }
}

/// A client for checks: keep-alive, no proxy from the environment, a generous timeout so a
/// hang fails the check instead of the whole run.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()
        .expect("reqwest client")
}

/// Prints why a check does not apply to a target, so a skip is never silent.
pub fn not_applicable(check: &str, target: &Target, why: &str) {
    println!("NOT APPLICABLE {check} on {}: {why}", target.base);
}

/// Expands to one `#[tokio::test]` per check in [`checks`], each launching its own target
/// with `$launch`. Any attributes given after the launcher (e.g. `#[ignore = "..."]`) are put
/// on every test.
#[macro_export]
macro_rules! conformance_suite {
    ($launch:path $(, #[$attr:meta])*) => {
        $crate::checks! {@list @suite [$launch] [$(#[$attr])*]}
    };
}

/// The list of conformance checks, written once (the `@list` arm), and what is made of it: the
/// table [`checks::ALL`] and the tests of [`conformance_suite!`]. Every check function in
/// [`checks`] is private, so one left out of the list is dead code, which the lints refuse.
#[doc(hidden)]
#[macro_export]
macro_rules! checks {
    (@list $($then:tt)*) => {
        $crate::checks! {$($then)*;
            create_answers_an_id_of_the_configured_shape,
            ids_use_the_reference_alphabet_unless_configured,
            first_read_returns_the_message_and_destroys_it,
            unknown_ids_are_404_with_the_exact_body,
            wrong_shaped_ids_are_404,
            unicode_round_trips_exactly,
            message_size_limit_counts_bytes_ascii,
            message_size_limit_counts_bytes_multibyte,
            any_content_type_is_parsed_as_json,
            malformed_json_is_400,
            bad_messages_are_400,
            reference_bodies_get_the_reference_strings,
            bad_ttls_are_400,
            ttl_is_honoured_and_reported,
            default_ttl_is_24_hours,
            api_responses_carry_json_and_security_headers,
            cors_preflight_answers_204_on_any_path,
            preflight_with_an_empty_body_is_204,
            cors_origin_is_on_every_response,
            configured_cors_origins_are_echoed,
            wrong_methods_are_405_with_allow,
            reference_405s_and_nothing_burned,
            unknown_paths_are_404,
            rate_limit_is_429_with_retry_after,
            rate_limit_counts_405s_and_unknown_paths,
            ipv6_clients_count_by_prefix,
            reference_rate_limit_per_second,
            body_over_the_cap_with_content_length_is_413,
            body_over_the_cap_chunked_is_413,
            slow_headers_are_cut_off_while_others_are_served,
            concurrent_creates_get_distinct_ids,
            concurrent_reads_of_one_id_give_exactly_one_200,
            views_are_spent_one_by_one_then_the_message_is_gone,
            bad_views_are_400_with_the_range,
            the_receipt_says_what_happened_and_never_the_message,
            the_sender_deletes_before_it_is_read,
            wrong_receipts_get_part_1_answers_and_change_nothing,
            an_expired_receipt_is_gone,
            a_stranger_cannot_tell_a_read_id_from_one_never_stored,
            concurrent_reads_of_n_views_give_exactly_n_200s,
            a_delete_racing_the_last_read_has_one_winner,
            receipt_requests_are_rate_limited_and_allowed_by_cors,
            health_and_readiness_answer,
            full_store_is_507_and_keeps_what_it_has,
            longer_configured_ids_work,
            the_page_is_for_browsers_and_loads_only_its_own_assets,
            link_preview_bots_burn_nothing,
            openapi_document_is_served_and_never_limited,
            create_tokens_guard_creates_and_reads_stay_open,
            a_file_reads_back_as_its_bytes,
            a_file_over_its_limit_is_413
        }
    };
    (@table; $($check:ident),*) => {
        &[$((stringify!($check), |launch| -> futures::future::LocalBoxFuture<'static, ()> { Box::pin($check(launch)) })),*]
    };
    (@suite [$launch:path] [$($attrs:tt)*]; $check:ident $(, $rest:ident)*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $($attrs)*
        async fn $check() {
            $crate::checks::run(stringify!($check), $launch).await;
        }
        $crate::checks! {@suite [$launch] [$($attrs)*]; $($rest),*}
    };
    (@suite [$launch:path] [$($attrs:tt)*];) => {};
}
