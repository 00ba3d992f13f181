//! SPEC.md against the self-hosted server with the in-memory store, in this process.
crypt_conformance::conformance_suite!(crypt_conformance::launch::server_memory);
