//! SPEC.md against the self-hosted server on a real redis-server.
crypt_conformance::conformance_suite!(crypt_conformance::launch::server_redis);
