//! Every committed fuzz input, replayed: the corpus (what coverage-guided fuzzing kept, so
//! these tests reach what the fuzzer reached) and `regressions/` (each input that once made a
//! target fail, with a line in `regressions/README.md` saying what it found).

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let caught = std::panic::catch_unwind(|| run(&data));
            assert!(caught.is_ok(), "{} failed", path.display());
            count += 1;
        }
    }
    assert!(count > 0, "no inputs for {target}");
}

#[test]
fn http() {
    replay("http", crypt_fuzz::http);
}

#[test]
fn stored() {
    replay("stored", crypt_fuzz::stored);
}

#[test]
fn settings() {
    replay("settings", crypt_fuzz::settings);
}

#[test]
fn envelope() {
    replay("envelope", crypt_fuzz::envelope);
}
