//! A record of every exchange the checks make through [`crate::Target::send`], while recording
//! is on: for checking each response against the OpenAPI document, and for searching a
//! server's logs for every message and id a run used.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The method.
    pub method: String,
    /// The path, with its query.
    pub path: String,
    /// The request body, if any.
    pub request_body: Option<Vec<u8>>,
    /// The status.
    pub status: u16,
    /// The `Content-Type`, or "".
    pub content_type: String,
    /// The response body.
    pub body: Vec<u8>,
}

static ON: AtomicBool = AtomicBool::new(false);
static LOG: Mutex<Vec<Exchange>> = Mutex::new(Vec::new());

/// Starts recording (for this whole test process).
pub fn start() {
    ON.store(true, Ordering::SeqCst);
}

/// Everything recorded so far, emptied.
pub fn take() -> Vec<Exchange> {
    std::mem::take(&mut *LOG.lock().unwrap())
}

pub(crate) fn exchange(method: &str, path: &str, request_body: Option<&[u8]>, resp: &crate::Resp) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    LOG.lock().unwrap().push(Exchange {
        method: method.to_owned(),
        path: path.to_owned(),
        request_body: request_body.map(<[u8]>::to_vec),
        status: resp.status,
        content_type: resp.header("content-type"),
        body: resp.body.clone(),
    });
}
