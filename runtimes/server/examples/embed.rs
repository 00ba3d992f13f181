//! Starts crypt in memory on a free port, stores and reads a secret over HTTP, and stops it:
//! what a developer does inside their own integration tests.

use std::io::{Read, Write};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The same names as the server's environment: a free port on loopback, no rate limit.
    let config = crypt_server::Config::from_vars([("CRYPT_LISTEN", "127.0.0.1:0"), ("CRYPT_RATE_LIMIT_MAX", "0")])?;
    let crypt = crypt_server::spawn(config).await?;
    println!("crypt is serving at {}", crypt.url());

    let addr = crypt.addr();
    let exchange = move |request: String| -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.write_all(request.as_bytes())?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
    };
    let body = r#"{"message":"hello from a test"}"#;
    let created = tokio::task::spawn_blocking(move || {
        exchange(format!(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    })
    .await??;
    println!("created: {created}");
    let id = created.split(r#""id":""#).nth(1).and_then(|s| s.split('"').next()).ok_or("no id")?.to_owned();
    let read = tokio::task::spawn_blocking(move || {
        exchange(format!("GET /{id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    })
    .await??;
    println!("read:    {read}");
    crypt.shutdown().await;
    Ok(())
}
