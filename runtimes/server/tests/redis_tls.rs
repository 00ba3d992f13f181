//! `rediss://` against a real `redis-server` listening with `--tls-port`, with certificates made
//! here (rcgen): a CA file, a client certificate for servers that ask for one, and the
//! connections that must be refused (a certificate from another CA, one for another name).

mod common;
use common::{client, create, read, status, Crypt};

use crypt_redis_harness::{free_port, RedisServer};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A CA and what it signed, as PEM files in a directory of their own.
struct Pki {
    dir: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pki {
    /// `ca.pem` (trusted), `other-ca.pem` (not), `server.pem`/`server.key` for 127.0.0.1 and
    /// localhost, `elsewhere.pem`/`elsewhere.key` for another name, `client.pem`/`client.key`.
    fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!("crypt-pki-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = Self::ca(&dir, "ca", "crypt test CA");
        Self::ca(&dir, "other-ca", "some other CA");
        Self::leaf(&dir, "server", &ca, &["127.0.0.1", "localhost"]);
        Self::leaf(&dir, "elsewhere", &ca, &["redis.elsewhere.example"]);
        Self::leaf(&dir, "client", &ca, &["crypt-client"]);
        Pki { dir }
    }

    fn ca(dir: &Path, name: &str, common_name: &str) -> Issuer<'static, KeyPair> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        Issuer::new(params, key)
    }

    fn leaf(dir: &Path, name: &str, ca: &Issuer<'static, KeyPair>, names: &[&str]) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.signed_by(&key, ca).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_owned()
    }
}

/// A Redis with a plain port (for the harness) and a TLS port, presenting `cert`.
fn tls_redis(pki: &Pki, cert: &str, auth_clients: bool) -> (RedisServer, String) {
    let port = free_port().to_string();
    let redis = RedisServer::start_with(&[
        "--save",
        "",
        "--appendonly",
        "no",
        "--tls-port",
        &port,
        "--tls-cert-file",
        &pki.path(&format!("{cert}.pem")),
        "--tls-key-file",
        &pki.path(&format!("{cert}.key")),
        "--tls-ca-cert-file",
        &pki.path("ca.pem"),
        "--tls-auth-clients",
        if auth_clients { "yes" } else { "no" },
    ]);
    (redis, format!("rediss://127.0.0.1:{port}"))
}

async fn wait_ready(http: &reqwest::Client, crypt: &Crypt) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = status(http, format!("{}/readyz", crypt.base)).await;
        if s == 200 || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A round trip over TLS, and proof it went to this Redis.
async fn round_trip(http: &reqwest::Client, crypt: &Crypt, redis: &RedisServer) {
    assert_eq!(wait_ready(http, crypt).await, 200, "{}", crypt.log_text());
    let (code, body) = create(http, &crypt.base, "over tls").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(redis.command(&["DBSIZE"]).unwrap().trim(), ":1", "the message is in this Redis");
    let (code, body) = read(http, &crypt.base, body["id"].as_str().unwrap()).await;
    assert_eq!((code, body["message"].as_str()), (200, Some("over tls")));
}

/// Not ready, creates answer 503, and the log names why the handshake failed.
async fn refused(http: &reqwest::Client, crypt: &Crypt, cause: &str) {
    assert_eq!(status(http, format!("{}/readyz", crypt.base)).await, 503);
    assert_eq!(create(http, &crypt.base, "must not be stored").await.0, 503);
    let log = crypt.log_text();
    assert!(log.contains(cause), "the log does not name the cause ({cause}): {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_ca_file_stores_and_burns() {
    let pki = Pki::new();
    let (redis, url) = tls_redis(&pki, "server", false);
    let crypt = Crypt::start(&url, &[("CRYPT_REDIS_CA_FILE", &pki.path("ca.pem"))]);
    round_trip(&client(), &crypt, &redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_asks_for_a_client_certificate_gets_one() {
    let pki = Pki::new();
    let (redis, url) = tls_redis(&pki, "server", true);
    let crypt = Crypt::start(
        &url,
        &[
            ("CRYPT_REDIS_CA_FILE", &pki.path("ca.pem")),
            ("CRYPT_REDIS_CLIENT_CERT_FILE", &pki.path("client.pem")),
            ("CRYPT_REDIS_CLIENT_KEY_FILE", &pki.path("client.key")),
        ],
    );
    round_trip(&client(), &crypt, &redis).await;
    // Without one, the server closes the handshake.
    let without =
        Crypt::start(&url, &[("CRYPT_REDIS_CA_FILE", &pki.path("ca.pem")), ("CRYPT_REDIS_TIMEOUT_MS", "500")]);
    let http = client();
    assert_eq!(status(&http, format!("{}/readyz", without.base)).await, 503);
    assert_eq!(create(&http, &without.base, "no").await.0, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused_and_start_up_names_the_cause() {
    let pki = Pki::new();
    let (redis, url) = tls_redis(&pki, "server", false);
    let crypt =
        Crypt::start(&url, &[("CRYPT_REDIS_CA_FILE", &pki.path("other-ca.pem")), ("CRYPT_REDIS_TIMEOUT_MS", "500")]);
    refused(&client(), &crypt, "UnknownIssuer").await;
    assert_eq!(redis.command(&["DBSIZE"]).unwrap().trim(), ":0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_refused() {
    let pki = Pki::new();
    let (redis, url) = tls_redis(&pki, "elsewhere", false);
    let crypt = Crypt::start(&url, &[("CRYPT_REDIS_CA_FILE", &pki.path("ca.pem")), ("CRYPT_REDIS_TIMEOUT_MS", "500")]);
    refused(&client(), &crypt, "certificate not valid for name").await;
    assert_eq!(redis.command(&["DBSIZE"]).unwrap().trim(), ":0");
}

#[test]
fn a_ca_file_that_cannot_be_used_stops_start_up_naming_it() {
    let pki = Pki::new();
    std::fs::write(pki.dir.join("garbage.pem"), "not a certificate").unwrap();
    for (ca, says) in [(pki.path("missing.pem"), "No such file"), (pki.path("garbage.pem"), "no PEM certificate in it")]
    {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_crypt-server"))
            .env_clear()
            .env("CRYPT_LISTEN", "127.0.0.1:0")
            .env("CRYPT_STORE", "redis")
            .env("CRYPT_REDIS_URL", "rediss://127.0.0.1:1")
            .env("CRYPT_REDIS_CA_FILE", &ca)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("CRYPT_REDIS_CA_FILE") || stderr.contains("CRYPT_REDIS_URL"), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}
