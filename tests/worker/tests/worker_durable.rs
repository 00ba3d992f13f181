//! SPEC.md against the Worker on Durable Objects (`CRYPT_EDGE_STORE = "durable-object"`) under
//! `wrangler dev` (the real workerd runtime, local SQLite-backed objects). Unlike on KV,
//! exactly-once under concurrent reads is a real check here.
crypt_conformance::conformance_suite!(crypt_conformance::launch::worker_durable);
