//! SPEC.md against the self-hosted server on a SQLite database, in this process.
crypt_conformance::conformance_suite!(crypt_conformance::launch::server_sqlite);
