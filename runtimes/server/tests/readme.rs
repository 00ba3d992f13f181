//! The README's run command, exactly as a new user types it from the root of a fresh clone,
//! serves on 127.0.0.1:8787. (It once stopped with "could not determine which binary to run".)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn exchange(request: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect("127.0.0.1:8787")?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn the_readme_run_command_serves_on_8787() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let line = readme.lines().find(|l| l.starts_with("cargo run")).expect("the README gives a `cargo run` command");
    let command = line.split('#').next().unwrap().trim();
    assert!(
        TcpStream::connect("127.0.0.1:8787").is_err(),
        "something already listens on 127.0.0.1:8787; stop it to run this test"
    );
    // A new user's shell: no CRYPT_ settings, none of the variables cargo test or coverage set.
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("exec {command}")).current_dir(&root).env_clear();
    for keep in ["PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
        if let Ok(v) = std::env::var(keep) {
            cmd.env(keep, v);
        }
    }
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).process_group(0).spawn().unwrap();
    let stop = |child: &mut std::process::Child| {
        let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", child.id())]).status();
        child.wait().unwrap()
    };
    // The first run compiles a release build: minutes on a fresh machine.
    let deadline = Instant::now() + Duration::from_secs(900);
    let health = loop {
        match exchange("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") {
            Ok(resp) => break resp,
            Err(_) if Instant::now() < deadline => {
                if let Ok(Some(status)) = child.try_wait() {
                    let mut err = String::new();
                    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                    panic!("`{command}` exited with {status} before serving:\n{err}");
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => {
                stop(&mut child);
                panic!("`{command}` did not serve on 127.0.0.1:8787 within 15 minutes: {e}");
            }
        }
    };
    let body = r#"{"message":"from the README"}"#;
    let created = exchange(&format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
    .unwrap();
    let status = stop(&mut child);
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(created.starts_with("HTTP/1.1 200"), "{created}");
    let id = created.split(r#""id":""#).nth(1).and_then(|s| s.split('"').next()).unwrap();
    assert!(id.len() == 5 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{id}");
    assert!(status.success() || status.code().is_none(), "`{command}` ended with {status}");
}
