//! The benchmark's smoke runs, the way CI runs them (`.ci/run`): the harness's own binary with
//! `--quick`, which must finish with zero errors (it exits 1 on any). Its numbers go to the
//! terminal as the run prints them.
//!
//! Ignored in `cargo test`: each takes half a minute or more, starts Redis and a Redis Cluster,
//! and the Worker's needs the release Worker bundle (`scripts/build-worker`). CI runs this
//! file's executable from the test build `./scripts/test` made (`scripts/test-exe smoke`, then
//! `--ignored --exact NAME`), so the harness that runs is the one already built: `cargo run -p
//! crypt-bench`, or even `cargo test --workspace --test smoke`, resolves features over fewer
//! crates and first rebuilt about seventy of them (a minute on two cores).
//! By hand: `cargo test -p crypt-bench --test smoke -- --ignored`.
//!
//! The `server-memory` tests below are not ignored: a few thousand requests each, they run in
//! `./scripts/test` with everything else.

use std::process::Command;

fn run_bench(args: &[&str]) {
    let status =
        Command::new(env!("CARGO_BIN_EXE_crypt-bench")).args(args).status().expect("the benchmark harness starts");
    assert!(status.success(), "crypt-bench {} failed ({status}); its output is above", args.join(" "));
}

#[test]
#[ignore = "half a minute; CI runs it (see the file's head)"]
fn quick() {
    run_bench(&["--quick"]);
}

#[test]
#[ignore = "needs scripts/build-worker and wrangler; CI runs it (see the file's head)"]
fn worker_quick() {
    run_bench(&["--worker", "--quick"]);
}

/// `server-memory`: every address is used exactly once, so N distinct clients make N requests
/// (N/2 pairs), all answered.
#[test]
fn server_memory_sends_one_request_per_distinct_client() {
    let out = Command::new(env!("CARGO_BIN_EXE_crypt-bench"))
        .args(["server-memory", "4000"])
        .output()
        .expect("the benchmark harness starts");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "crypt-bench server-memory failed: {text}");
    for server in ["crypt", "baseline"] {
        assert!(text.contains(&format!("| {server} | 4000 | 2000 | 0 |")), "{server}'s row: {text}");
    }
    assert!(text.contains("bytes per client address"), "{text}");
}

/// `server-memory N redis`: on the Redis store every distinct client leaves exactly one key
/// (its log) and every message is gone once read, so crypt leaves N keys and the baseline none.
#[test]
fn redis_memory_leaves_one_key_per_client() {
    let out = Command::new(env!("CARGO_BIN_EXE_crypt-bench"))
        .args(["server-memory", "4000", "redis"])
        .output()
        .expect("the benchmark harness starts");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "crypt-bench server-memory redis failed: {text}");
    let row = |server: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("| {server} |")))
            .map(|l| l.split('|').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect::<Vec<_>>())
    };
    let (crypt, baseline) = (row("crypt").expect("crypt's row"), row("baseline").expect("the baseline's row"));
    // server, clients, pairs, errors, seconds, keys after, ...
    assert_eq!(&crypt[1..4], ["4000", "2000", "0"], "{text}");
    assert_eq!(crypt[5], "4000", "one log key per client: {text}");
    assert_eq!(crypt[8], "2000", "a receipt per message read, dropped before measuring: {text}");
    assert_eq!(&baseline[1..4], ["4000", "2000", "0"], "{text}");
    assert_eq!(baseline[5], "0", "the baseline keeps nothing once every message is read: {text}");
}
