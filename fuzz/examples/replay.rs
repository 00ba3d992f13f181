//! Runs one target on the files given: `cargo run -p crypt-fuzz --example replay -- TARGET FILE...`,
//! to see the panic of a crash AFL++ saved.
fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("usage: replay TARGET FILE...");
    let run: fn(&[u8]) = match target.as_str() {
        "http" => crypt_fuzz::http,
        "stored" => crypt_fuzz::stored,
        "settings" => crypt_fuzz::settings,
        "envelope" => crypt_fuzz::envelope,
        other => panic!("no target {other}"),
    };
    for file in args {
        println!("{file}");
        run(&std::fs::read(&file).expect("readable input"));
    }
}
