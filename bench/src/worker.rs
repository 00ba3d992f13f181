//! `crypt-bench --worker`: crypt's Worker against a minimal JavaScript Worker doing the same
//! work on the same store (`bench/worker/baseline.js`), both under `wrangler dev` (the real
//! workerd, local KV and Durable Objects), alternating runs, on each edge store.
//!
//! crypt runs its release bundle (`scripts/build-worker`, run first; or the build named by
//! `CRYPT_BENCH_WORKER_MAIN`) with rate limiting off:
//! the baseline has no limits, and every request of the load generator comes from one address.

use crate::load::{self, Outcome};
use crate::median;
use crypt_conformance::wrangler::{repo_root, WranglerDev};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// How the Worker comparison runs.
pub struct WorkerPlan {
    /// The edge stores to compare on (`kv`, `durable-object`).
    pub stores: Vec<String>,
    pub runs: usize,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

fn crypt_config(store: &str) -> String {
    format!(
        "[[kv_namespaces]]\nbinding = \"MESSAGES\"\nid = \"00000000000000000000000000000000\"\n\n\
         [[durable_objects.bindings]]\nname = \"MESSAGE_OBJECTS\"\nclass_name = \"MessageObject\"\n\n\
         [[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"MessageObject\"]\n\n\
         [vars]\nCRYPT_EDGE_STORE = \"{store}\"\nCRYPT_RATE_LIMIT_MAX = \"0\"\n"
    )
}

fn baseline_config(store: &str, check_id: bool, spec_headers: bool) -> String {
    let check = if check_id { "1" } else { "0" };
    let headers = if spec_headers { "1" } else { "0" };
    format!(
        "[[kv_namespaces]]\nbinding = \"MESSAGES\"\nid = \"00000000000000000000000000000000\"\n\n\
         [[durable_objects.bindings]]\nname = \"MESSAGE_OBJECTS\"\nclass_name = \"BaselineObject\"\n\n\
         [[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"BaselineObject\"]\n\n\
         [vars]\nSTORE = \"{store}\"\nCHECK_ID = \"{check}\"\nSPEC_HEADERS = \"{headers}\"\n"
    )
}

fn addr(dev: &WranglerDev) -> SocketAddr {
    dev.url().trim_start_matches("http://").parse().expect("wrangler dev listens on 127.0.0.1:<port>")
}

/// Builds the release bundle, runs the comparison, and returns the report section and the
/// number of failed pairs.
pub fn compare(rt: &tokio::runtime::Runtime, plan: &WorkerPlan) -> (String, u64) {
    let root = repo_root();
    // CRYPT_BENCH_WORKER_MAIN: another build of crypt's Worker (say, of an older commit) to
    // measure instead of this tree's, which is then not rebuilt.
    let crypt_main = match std::env::var_os("CRYPT_BENCH_WORKER_MAIN") {
        Some(main) => std::path::PathBuf::from(main),
        None => {
            let built = std::process::Command::new(root.join("scripts/build-worker"))
                .status()
                .expect("run scripts/build-worker");
            assert!(built.success(), "scripts/build-worker failed");
            root.join("runtimes/worker/build/index.js")
        }
    };
    let baseline_main = root.join("bench/worker/baseline.js");

    let mut report = String::new();
    let mut errors = 0;
    let _ = writeln!(
        report,
        "\n## The Worker: crypt against a minimal JavaScript Worker ({} connections, 100 B, median of {} alternating runs)\n\n\
         Both under `wrangler dev` (workerd, local storage) on this machine, crypt's release bundle with rate limiting off; \
         a fresh `wrangler dev` with empty storage for every run; the baseline (`bench/worker/baseline.js`) parses, draws a random id and puts with a TTL, then gets and deletes, \
         with none of crypt's rules. CPU: all that `wrangler dev` runs (workerd: the Worker and the local storage) per pair. \
         \"Checked\": the baseline that also checks that a new id is free, as crypt does on KV (on Durable Objects both check, in the object). \
         \"Same answers\": the checked baseline that also puts the SPEC's four headers (CORS, no-store, nosniff, no-referrer) on every answer, \
         so that it answers as crypt does, header for header.\n",
        plan.connections, plan.runs
    );
    let _ = writeln!(
        report,
        "| store | crypt pairs/s | baseline pairs/s | ratio | crypt p99 ms | baseline p99 ms | p99 ratio | \
         crypt CPU µs/pair | baseline CPU µs/pair | CPU ratio | \
         checked, pairs/s | crypt / that | its CPU µs/pair | crypt / that | \
         same answers, pairs/s | crypt / that | its CPU µs/pair | crypt / that |"
    );
    let _ =
        writeln!(report, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for store in plan.stores.iter().map(String::as_str) {
        // On KV a third contender: the baseline that also checks a new id is free (a get before
        // the put), as the reference service and crypt do. It splits crypt's price into the
        // rule's and the runtime's. (On Durable Objects both already check, inside the object.)
        // Last, on both stores, the baseline that gives crypt's answers header for header: what
        // is left between it and crypt is Rust in wasm against JavaScript, for the same work.
        let kv = store == "kv";
        let mut contenders = vec![
            ("crypt", crypt_main.clone(), crypt_config(store)),
            ("baseline", baseline_main.clone(), baseline_config(store, false, false)),
        ];
        if kv {
            contenders.push(("checked", baseline_main.clone(), baseline_config(store, true, false)));
        }
        contenders.push(("same answers", baseline_main.clone(), baseline_config(store, kv, true)));
        let mut rates = vec![Vec::new(); contenders.len()];
        let mut p99s = vec![Vec::new(); contenders.len()];
        let mut cpus = vec![Vec::new(); contenders.len()];
        for run in 0..plan.runs {
            // A different contender first in each run, so drift hits all alike; each run on a
            // fresh `wrangler dev` with empty storage, alone on the machine (local storage grows
            // with use and slows later runs down).
            for k in 0..contenders.len() {
                let i = (run + k) % contenders.len();
                let (name, main, config) = &contenders[i];
                let dev = WranglerDev::start_script(main, config);
                // The warm-up, on its own: a fresh isolate compiles its code (crypt's wasm is
                // compiled, then optimised in the background while hot) and that CPU must not
                // count as a cost per request.
                let warm = rt.block_on(load::run(addr(&dev), plan.connections, 100, Duration::ZERO, plan.warmup, None));
                errors += warm.errors;
                let cpu_before = dev.cpu_us();
                let o: Outcome =
                    rt.block_on(load::run(addr(&dev), plan.connections, 100, Duration::ZERO, plan.duration, None));
                let cpu = (dev.cpu_us() - cpu_before) / o.pairs.max(1) as f64;
                drop(dev);
                errors += o.errors;
                eprintln!(
                    "worker {store} {name} run {run}: {:.0} pairs/s, p99 {:.2} ms, {cpu:.0} µs CPU/pair, {} errors",
                    o.pairs_per_sec(),
                    o.quantile_ms(0.99),
                    o.errors
                );
                rates[i].push(o.pairs_per_sec());
                p99s[i].push(o.quantile_ms(0.99));
                cpus[i].push(cpu);
            }
        }
        let rate: Vec<f64> = rates.into_iter().map(median).collect();
        let p99: Vec<f64> = p99s.into_iter().map(median).collect();
        let cpu: Vec<f64> = cpus.into_iter().map(median).collect();
        let against = |i: Option<usize>| match i {
            Some(i) => {
                format!("{:.0} | **{:.2}** | {:.0} | **{:.2}**", rate[i], rate[0] / rate[i], cpu[i], cpu[0] / cpu[i])
            }
            None => "n/a | n/a | n/a | n/a".to_owned(),
        };
        let checked = against(kv.then_some(2));
        let same = against(Some(contenders.len() - 1));
        let _ = writeln!(
            report,
            "| {store} | {:.0} | {:.0} | **{:.2}** | {:.2} | {:.2} | **{:.2}** | {:.0} | {:.0} | **{:.2}** | {checked} | {same} |",
            rate[0],
            rate[1],
            rate[0] / rate[1],
            p99[0],
            p99[1],
            p99[0] / p99[1],
            cpu[0],
            cpu[1],
            cpu[0] / cpu[1]
        );
    }
    (report, errors)
}
