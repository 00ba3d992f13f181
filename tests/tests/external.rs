//! SPEC.md against a deployment someone else runs:
//! `CRYPT_BASE_URL=https://crypt.example cargo test -p crypt-conformance --test external -- --ignored`
crypt_conformance::conformance_suite!(
    crypt_conformance::launch::external,
    #[ignore = "checks a live deployment: set CRYPT_BASE_URL and pass --ignored"]
);
