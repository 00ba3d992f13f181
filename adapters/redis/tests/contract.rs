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

/// The counted operations (`CountingStore`: the count and the store operation in one script) on
/// a single node: they share the limiter's counts, a limited request does nothing, and a
/// counted read still burns exactly once.
mod counted {
    use super::*;
    use crypt_domain::{
        Counted, CountingStore, Inserted, Message, MessageId, MessageStore, Policy, RateDecision, RateLimit,
        RateLimiter, StoredMessage, Ttl,
    };

    fn message(text: &str) -> StoredMessage {
        StoredMessage { message: Message::new(text.into(), &Policy::default()).unwrap(), expires_at: now() + 60_000 }
    }

    fn ttl() -> Ttl {
        Ttl::default_for(&Policy::default())
    }

    const LIMIT: RateLimit = match RateLimit::of(3, 60) {
        Some(l) => l,
        None => unreachable!(),
    };

    #[tokio::test]
    async fn counts_are_shared_with_the_limiter_and_a_limited_request_does_nothing() {
        let s = single().await;
        assert!(s.counts_in_one_step());
        let (a, b) = (MessageId::parse("aaaaa").unwrap(), MessageId::parse("bbbbb").unwrap());
        assert_eq!(s.hit("c1", now(), LIMIT).await.unwrap(), RateDecision::Allowed);
        let stored = s.insert_new_counted("c1", now(), LIMIT, &a, &message("one"), ttl()).await.unwrap();
        assert_eq!(stored, Counted::Allowed(Inserted::Stored));
        let taken = s.insert_new_counted("c1", now(), LIMIT, &a, &message("two"), ttl()).await.unwrap();
        assert_eq!(taken, Counted::Allowed(Inserted::Taken), "an id that is taken is not overwritten");
        // The budget of 3 is spent (one hit, two counted creates): nothing more runs.
        let limited = s.insert_new_counted("c1", now(), LIMIT, &b, &message("three"), ttl()).await.unwrap();
        assert!(matches!(limited, Counted::Limited { retry_after_ms: Some(ms) } if ms > 0 && ms <= 60_000));
        assert_eq!(s.take(&b).await.unwrap(), None, "a limited create stores nothing");
        assert!(matches!(s.take_counted("c1", now(), LIMIT, &a).await.unwrap(), Counted::Limited { .. }));
        assert!(matches!(s.hit("c1", now(), LIMIT).await.unwrap(), RateDecision::Limited { .. }));
        // Another client has its own budget, and a limited read burned nothing.
        let Counted::Allowed(Some(read)) = s.take_counted("c2", now(), LIMIT, &a).await.unwrap() else {
            panic!("the message was not read")
        };
        assert_eq!(read.message.as_str(), "one");
        assert_eq!(s.take_counted("c2", now(), LIMIT, &a).await.unwrap(), Counted::Allowed(None));
    }

    /// A Redis that lost its script cache (restarted, failed over, `SCRIPT FLUSH`) answers
    /// `NOSCRIPT` to a call by hash; every script is then sent once with its body, and works.
    #[tokio::test]
    async fn a_flushed_script_cache_is_filled_again_on_the_next_call() {
        let s = single().await;
        let (a, b) = (MessageId::parse("fffff").unwrap(), MessageId::parse("ggggg").unwrap());
        let many = RateLimit::of(100, 60).unwrap();
        let stored = s.insert_new_counted("c", now(), many, &a, &message("before"), ttl()).await.unwrap();
        assert_eq!(stored, Counted::Allowed(Inserted::Stored));
        assert_eq!(s._server.command(&["SCRIPT", "FLUSH"]).as_deref(), Some("+OK\r\n"));
        let stored = s.insert_new_counted("c", now(), many, &b, &message("after"), ttl()).await.unwrap();
        assert_eq!(stored, Counted::Allowed(Inserted::Stored));
        assert_eq!(s._server.command(&["SCRIPT", "FLUSH"]).as_deref(), Some("+OK\r\n"));
        let Counted::Allowed(Some(read)) = s.take_counted("c", now(), many, &a).await.unwrap() else {
            panic!("the message was not read after a flush")
        };
        assert_eq!(read.message.as_str(), "before");
        assert_eq!(s._server.command(&["SCRIPT", "FLUSH"]).as_deref(), Some("+OK\r\n"));
        assert_eq!(s.hit("c", now(), many).await.unwrap(), RateDecision::Allowed);
        // Four counted calls so far, all of them counted once.
        let tight = RateLimit::of(4, 60).unwrap();
        assert!(matches!(s.hit("c", now(), tight).await.unwrap(), RateDecision::Limited { .. }));
    }

    #[tokio::test]
    async fn concurrent_counted_reads_burn_exactly_once() {
        let s = single().await;
        let many = RateLimit::of(10_000, 60).unwrap();
        for round in 0..50 {
            let id = MessageId::parse(&format!("x{round:04}")).unwrap();
            s.insert_new_counted("w", now(), many, &id, &message("once"), ttl()).await.unwrap();
            let reads = (0..8).map(|r| {
                let (s, id) = (&s, id.clone());
                async move { s.take_counted(&format!("r{r}"), now(), many, &id).await.unwrap() }
            });
            let got = futures::future::join_all(reads).await;
            let hits = got.iter().filter(|c| matches!(c, Counted::Allowed(Some(_)))).count();
            assert_eq!(hits, 1, "round {round}: {got:?}");
        }
    }
}
