//! AFL++ entry point for [`crypt_fuzz::http`]: `scripts/fuzz` builds and runs it.
fn main() {
    afl::fuzz!(|data: &[u8]| crypt_fuzz::http(data));
}
