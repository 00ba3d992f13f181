//! The baseline: a minimal hyper server doing the same work as crypt with no layering. Parse
//! the JSON, make a random 5-character id, store it with a TTL (a map, or `SET NX EX`), answer;
//! read with remove (or `GETDEL`), on one Redis or a Cluster. No CORS, no security headers, no
//! rate limiter, no metrics, no ports.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::distr::{Alphanumeric, SampleString};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

#[derive(serde::Deserialize)]
struct Create {
    message: String,
    ttl: Option<u64>,
}

enum Store {
    /// 32 shards, like any sensible in-memory map under concurrency.
    Memory(Vec<Mutex<HashMap<String, (String, Instant)>>>),
    Redis(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

fn shard(id: &str) -> usize {
    id.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize)) % 32
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

/// Files (an `application/octet-stream` create), in memory whatever the store: the raw bytes
/// under a random id, answered back as they are (the work crypt's file create and read do).
fn files() -> &'static Mutex<HashMap<String, Bytes>> {
    static FILES: std::sync::OnceLock<Mutex<HashMap<String, Bytes>>> = std::sync::OnceLock::new();
    FILES.get_or_init(|| Mutex::new(HashMap::new()))
}

async fn handle(store: Arc<Store>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let octets = req.headers().get(http::header::CONTENT_TYPE).is_some_and(|v| v == "application/octet-stream");
    if req.method() == Method::POST && path == "/" && octets {
        let Ok(body) = Limited::new(req.into_body(), 10 << 20).collect().await else {
            return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE, r#"{"error":"too large"}"#.into()));
        };
        let id = Alphanumeric.sample_string(&mut rand::rng(), 5);
        files().lock().unwrap().insert(id.clone(), body.to_bytes());
        return Ok(reply(StatusCode::OK, serde_json::json!({ "id": id }).to_string()));
    }
    if req.method() == Method::GET {
        if let Some(bytes) = files().lock().unwrap().remove(path.trim_start_matches('/')) {
            let mut r = Response::new(Full::new(bytes));
            r.headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/octet-stream"));
            return Ok(r);
        }
    }
    if req.method() == Method::POST && path == "/" {
        let Ok(body) = Limited::new(req.into_body(), 1 << 20).collect().await else {
            return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE, r#"{"error":"too large"}"#.into()));
        };
        let Ok(create) = serde_json::from_slice::<Create>(&body.to_bytes()) else {
            return Ok(reply(StatusCode::BAD_REQUEST, r#"{"error":"bad json"}"#.into()));
        };
        let ttl = create.ttl.unwrap_or(86_400);
        for _ in 0..5 {
            let id = Alphanumeric.sample_string(&mut rand::rng(), 5);
            let stored = match &*store {
                Store::Memory(shards) => {
                    let mut map = shards[shard(&id)].lock().unwrap();
                    if map.contains_key(&id) {
                        false
                    } else {
                        let expires = Instant::now() + Duration::from_secs(ttl);
                        map.insert(id.clone(), (create.message.clone(), expires));
                        true
                    }
                }
                Store::Redis(_) | Store::Cluster(_) => {
                    let mut set = redis::cmd("SET");
                    set.arg(&id).arg(&create.message).arg("NX").arg("EX").arg(ttl);
                    let ok: Result<Option<String>, _> = match &*store {
                        Store::Redis(conn) => set.query_async(&mut conn.clone()).await,
                        Store::Cluster(conn) => set.query_async(&mut conn.clone()).await,
                        Store::Memory(_) => unreachable!(),
                    };
                    match ok {
                        Ok(v) => v.is_some(),
                        Err(_) => return Ok(reply(StatusCode::SERVICE_UNAVAILABLE, "{}".into())),
                    }
                }
            };
            if stored {
                return Ok(reply(StatusCode::OK, serde_json::json!({ "id": id }).to_string()));
            }
        }
        return Ok(reply(StatusCode::INTERNAL_SERVER_ERROR, "{}".into()));
    }
    if req.method() == Method::GET {
        let id = path.trim_start_matches('/');
        let found = match &*store {
            Store::Memory(shards) => shards[shard(id)]
                .lock()
                .unwrap()
                .remove(id)
                .filter(|(_, expires)| *expires > Instant::now())
                .map(|(m, _)| m),
            Store::Redis(conn) => {
                redis::cmd("GETDEL").arg(id).query_async::<Option<String>>(&mut conn.clone()).await.ok().flatten()
            }
            Store::Cluster(conn) => {
                redis::cmd("GETDEL").arg(id).query_async::<Option<String>>(&mut conn.clone()).await.ok().flatten()
            }
        };
        return Ok(match found {
            Some(m) => reply(StatusCode::OK, serde_json::json!({ "message": m }).to_string()),
            None => reply(StatusCode::NOT_FOUND, r#"{"error":"Message not found"}"#.into()),
        });
    }
    Ok(reply(StatusCode::METHOD_NOT_ALLOWED, "{}".into()))
}

/// Serves forever on `listener`, with the map or on Redis at `redis_url`.
pub async fn serve(listener: TcpListener, redis_url: Option<String>) {
    let store = Arc::new(match redis_url {
        None => Store::Memory((0..32).map(|_| Mutex::new(HashMap::new())).collect()),
        Some(urls) if urls.contains(',') => {
            let client = redis::cluster::ClusterClient::new(urls.split(',').map(str::trim).collect::<Vec<_>>())
                .expect("cluster urls");
            Store::Cluster(client.get_async_connection().await.expect("cluster reachable"))
        }
        Some(url) => {
            let client = redis::Client::open(url).expect("redis url");
            Store::Redis(redis::aio::ConnectionManager::new(client).await.expect("redis reachable"))
        }
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let store = store.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(store.clone(), req));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
