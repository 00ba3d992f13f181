//! The port contract suites against a real redis-server, single node and a 3-master Cluster,
//! each started by the test on free ports.

use crypt_redis::{RedisConfig, RedisStore};
use crypt_redis_harness::{RedisCluster, RedisServer};
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A store with the server it talks to, which lives as long as the fixture.
struct Fixture<S> {
    store: RedisStore,
    _server: S,
}

impl<S> Deref for Fixture<S> {
    type Target = RedisStore;
    fn deref(&self) -> &RedisStore {
        &self.store
    }
}

fn config(url: String) -> RedisConfig {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    RedisConfig {
        url,
        prefix: format!("test{}:", SEQ.fetch_add(1, Ordering::SeqCst)),
        timeout: Duration::from_secs(2),
        tls: crypt_redis::RedisTls::default(),
    }
}

async fn single() -> Fixture<RedisServer> {
    let server = RedisServer::start();
    let store = RedisStore::connect(&config(server.url())).await.expect("connect");
    Fixture { store, _server: server }
}

async fn cluster() -> Fixture<()> {
    let cluster = tokio::task::spawn_blocking(RedisCluster::shared).await.unwrap();
    let store = RedisStore::connect(&config(cluster.urls())).await.expect("connect");
    Fixture { store, _server: () }
}

mod single_node {
    use super::*;
    crypt_domain::store_contract!(single(), now());
    mod limiter {
        use super::*;
        crypt_domain::limiter_contract!(single(), now());
    }
}

mod cluster_of_three {
    use super::*;
    crypt_domain::store_contract!(cluster(), now());
    mod limiter {
        use super::*;
        crypt_domain::limiter_contract!(cluster(), now());
    }
}
