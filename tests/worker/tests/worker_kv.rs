//! SPEC.md against the Worker on KV under `wrangler dev` (the real workerd runtime, local KV).
//! Exactly-once under concurrent reads is reported NOT APPLICABLE: KV cannot burn atomically.
crypt_conformance::conformance_suite!(crypt_conformance::launch::worker_kv);
