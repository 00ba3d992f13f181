//! SPEC.md against the self-hosted server on a real 3-master Redis Cluster.
crypt_conformance::conformance_suite!(crypt_conformance::launch::server_redis_cluster);
