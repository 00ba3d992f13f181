//! The `crypt-server` binary as an operator runs it: start-up, settings errors, signals.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn server() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crypt-server"));
    cmd.env_clear().env("CRYPT_LOG", "info").env("NO_COLOR", "1").current_dir(std::env::temp_dir());
    cmd
}

/// Starts the binary on port 0 and returns it with the address it logged.
fn start(extra: &[(&str, &str)]) -> (std::process::Child, String, BufReader<std::process::ChildStderr>) {
    let mut cmd = server();
    cmd.env("CRYPT_LISTEN", "127.0.0.1:0").envs(extra.iter().copied()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn crypt-server");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(rest) = line.split("listening on http://").nth(1) {
            // Text or JSON logs: the address is the run of address characters after the URL scheme.
            let addr: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || ".:[]".contains(*c)).collect();
            return (child, addr, stderr);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("crypt-server never logged its address");
}

fn http(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn terminate(child: &std::process::Child) {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
}

#[test]
fn port_zero_logs_the_bound_address_and_serves() {
    let (mut child, addr, _stderr) = start(&[]);
    let resp = http(&addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    terminate(&child);
    assert!(child.wait().unwrap().success());
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    // As under systemd or a container runtime: stderr is not a terminal and NO_COLOR is unset.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crypt-server"));
    cmd.env_clear().env("CRYPT_LOG", "info").env("CRYPT_LISTEN", "127.0.0.1:0").current_dir(std::env::temp_dir());
    let mut child = cmd.stderr(Stdio::piped()).spawn().expect("spawn crypt-server");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("listening on http://"), "{line}");
    assert!(!line.contains('\u{1b}'), "an escape code in a piped log line: {line:?}");
}

#[test]
fn an_invalid_setting_stops_start_up_with_one_line_naming_it() {
    let out = server().env("CRYPT_ID_LENGTH", "4").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("CRYPT_ID_LENGTH"), "{stderr}");
}

#[test]
fn a_missing_config_file_named_by_crypt_config_is_an_error() {
    let out = server().env("CRYPT_CONFIG", "/nonexistent/crypt.toml").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CRYPT_CONFIG"));
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let (mut child, addr, _stderr) = start(&[]);
    // Send the head and half of the body, then SIGTERM, then the rest.
    let body = br#"{"message":"in flight"}"#;
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
    s.write_all(&body[..8]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    terminate(&child);
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(&body[8..]).unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "in-flight request was not finished: {resp:?}");
    assert!(child.wait().unwrap().success());
    assert!(TcpStream::connect(&addr).is_err(), "still accepting after shutdown");
}

#[test]
fn logs_never_contain_message_text_or_ids() {
    let (mut child, addr, mut stderr) = start(&[("CRYPT_LOG", "debug")]);
    let secret = "correct horse battery staple";
    let body = format!(r#"{{"message":"{secret}"}}"#);
    let resp = http(
        &addr,
        &format!("POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
    );
    let id = resp.split(r#""id":""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    let read = http(&addr, &format!("GET /{id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    assert!(read.contains(secret));
    terminate(&child);
    child.wait().unwrap();
    let mut logs = String::new();
    stderr.read_to_string(&mut logs).unwrap();
    assert!(logs.contains("request"), "debug request logs were expected: {logs}");
    assert!(!logs.contains(secret), "a log line holds the message");
    assert!(!logs.contains(&id), "a log line holds the id");
}

/// Starts the binary with `vars` and expects start-up to fail with exit code 2 and one line
/// on stderr naming `names`.
fn refuses_to_start(vars: &[(&str, &str)], names: &[&str]) {
    let out = server().envs(vars.iter().copied()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{vars:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{vars:?}: {stderr}");
    for name in names {
        assert!(lines[0].contains(name), "{vars:?}: the line should name {name}: {stderr}");
    }
}

#[test]
fn the_reference_rate_limit_beside_the_window_pair_names_both() {
    refuses_to_start(
        &[("RATE_LIMIT_PER_SECOND", "3"), ("CRYPT_RATE_LIMIT_MAX", "60")],
        &["RATE_LIMIT_PER_SECOND", "CRYPT_RATE_LIMIT_MAX"],
    );
    refuses_to_start(
        &[("RATE_LIMIT_PER_SECOND", "3"), ("CRYPT_RATE_LIMIT_WINDOW_SECS", "10")],
        &["RATE_LIMIT_PER_SECOND", "CRYPT_RATE_LIMIT_WINDOW_SECS"],
    );
}

#[test]
fn bad_values_of_the_reference_rate_limit_and_the_alphabet_stop_start_up() {
    for bad in ["0", "-1", "abc", "1.5"] {
        refuses_to_start(&[("RATE_LIMIT_PER_SECOND", bad)], &["RATE_LIMIT_PER_SECOND"]);
    }
    refuses_to_start(&[("CRYPT_ID_ALPHABET", "base62")], &["CRYPT_ID_ALPHABET", "a-z0-9", "A-Za-z0-9"]);
}

#[test]
fn the_reference_rate_limit_setting_limits_per_second() {
    let (mut child, addr, _stderr) = start(&[("RATE_LIMIT_PER_SECOND", "2")]);
    let statuses: Vec<String> = (0..3)
        .map(|_| http(&addr, "GET /zzzzz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[9..12].to_owned())
        .collect();
    assert_eq!(statuses, ["404", "404", "429"]);
    terminate(&child);
    assert!(child.wait().unwrap().success());
}

#[test]
fn json_logs_one_object_per_line_and_a_bad_format_stops_start_up() {
    let (mut child, addr, mut stderr) = start(&[("CRYPT_LOG", "debug"), ("CRYPT_LOG_FORMAT", "json")]);
    let resp = http(&addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    terminate(&child);
    child.wait().unwrap();
    let mut logs = String::new();
    stderr.read_to_string(&mut logs).unwrap();
    let lines: Vec<serde_json::Value> =
        logs.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let request = lines.iter().find(|l| l["message"] == "request").expect("a request line at debug");
    assert_eq!((request["route"].as_str(), request["status"].as_u64()), (Some("healthz"), Some(200)));
    assert!(request["micros"].is_u64());
    refuses_to_start(&[("CRYPT_LOG_FORMAT", "xml")], &["CRYPT_LOG_FORMAT"]);
}

#[test]
fn the_healthcheck_command_asks_the_running_server() {
    let (mut child, addr, _stderr) = start(&[]);
    let check = |listen: &str| server().arg("healthcheck").env("CRYPT_LISTEN", listen).status().unwrap().code();
    assert_eq!(check(&addr), Some(0));
    let port = addr.rsplit(':').next().unwrap();
    assert_eq!(check(&format!("0.0.0.0:{port}")), Some(0), "an unspecified address is asked on loopback");
    terminate(&child);
    child.wait().unwrap();
    assert_eq!(check(&addr), Some(1), "nothing answers any more");
}

#[test]
fn a_metrics_address_that_cannot_be_bound_stops_start_up_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = taken.local_addr().unwrap().to_string();
    let out = server().env("CRYPT_LISTEN", "127.0.0.1:0").env("CRYPT_METRICS_LISTEN", &at).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("crypt-server: ")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("CRYPT_METRICS_LISTEN") && line.contains(&at), "{line}");
    assert_eq!(stderr.lines().filter(|l| l.contains("CRYPT_METRICS_LISTEN")).count(), 1, "{stderr}");
}

#[test]
fn help_and_version_print_and_a_stray_argument_is_refused() {
    let help = server().arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(
        text.starts_with("crypt-server: ") && text.contains("CRYPT_LISTEN") && text.contains("healthcheck"),
        "{text}"
    );
    assert!(help.stderr.is_empty(), "help starts no server: {}", String::from_utf8_lossy(&help.stderr));

    let version = server().arg("-V").output().unwrap();
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(String::from_utf8(version.stdout).unwrap(), format!("crypt-server {}\n", env!("CARGO_PKG_VERSION")));

    for stray in [&["--port", "9000"][..], &["serve"], &["healthcheck", "now"]] {
        let out = server().args(stray).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{stray:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains("unexpected argument") && err.contains("crypt-server --help"), "{err}");
    }
}
