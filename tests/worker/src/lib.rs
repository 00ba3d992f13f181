//! The Worker's tests, in `tests/`: each starts the Worker's test bundle under `wrangler dev`
//! (the real workerd runtime, local storage) through [`crypt_conformance::wrangler`]. They are
//! a package of their own so that `scripts/coverage` can leave them out: the Worker runs there
//! as wasm, which line coverage of native code cannot see, and `./scripts/test` has run them
//! already. `cargo test -p crypt-worker-tests` runs them all (after `scripts/build-worker --test`).
