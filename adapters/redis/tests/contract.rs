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
        StoredMessage::new(Message::new(text.into(), &Policy::default()).unwrap(), now() + 60_000)
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
        assert_eq!(s.spend_view(&b, now()).await.unwrap(), None, "a limited create stores nothing");
        assert!(matches!(s.spend_view_counted("c1", now(), LIMIT, &a).await.unwrap(), Counted::Limited { .. }));
        assert!(matches!(s.hit("c1", now(), LIMIT).await.unwrap(), RateDecision::Limited { .. }));
        // Another client has its own budget, and a limited read burned nothing.
        let Counted::Allowed(Some(read)) = s.spend_view_counted("c2", now(), LIMIT, &a).await.unwrap() else {
            panic!("the message was not read")
        };
        assert_eq!(read.message.as_text().unwrap(), "one");
        assert_eq!(s.spend_view_counted("c2", now(), LIMIT, &a).await.unwrap(), Counted::Allowed(None));
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
        let Counted::Allowed(Some(read)) = s.spend_view_counted("c", now(), many, &a).await.unwrap() else {
            panic!("the message was not read after a flush")
        };
        assert_eq!(read.message.as_text().unwrap(), "before");
        assert_eq!(s._server.command(&["SCRIPT", "FLUSH"]).as_deref(), Some("+OK\r\n"));
        assert_eq!(s.hit("c", now(), many).await.unwrap(), RateDecision::Allowed);
        // Four counted calls so far, all of them counted once.
        let tight = RateLimit::of(4, 60).unwrap();
        assert!(matches!(s.hit("c", now(), tight).await.unwrap(), RateDecision::Limited { .. }));
    }

    #[tokio::test]
    async fn concurrent_counted_reads_of_n_views_have_exactly_n_winners() {
        let s = single().await;
        let many = RateLimit::of(10_000, 60).unwrap();
        for (round, views) in [2u32, 3, 5, 8].into_iter().enumerate() {
            let id = MessageId::parse(&format!("n{round:04}")).unwrap();
            let m = StoredMessage { views, ..message("n times") };
            s.insert_new_counted("w", now(), many, &id, &m, ttl()).await.unwrap();
            let reads = (0..12).map(|r| {
                let (s, id) = (&s, id.clone());
                async move { s.spend_view_counted(&format!("r{r}"), now(), many, &id).await.unwrap() }
            });
            let mut left: Vec<u32> = futures::future::join_all(reads)
                .await
                .into_iter()
                .filter_map(|c| match c {
                    Counted::Allowed(Some(v)) => Some(v.views_left),
                    _ => None,
                })
                .collect();
            left.sort_unstable();
            assert_eq!(left, (0..views).collect::<Vec<_>>(), "round {round}");
        }
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
                async move { s.spend_view_counted(&format!("r{r}"), now(), many, &id).await.unwrap() }
            });
            let got = futures::future::join_all(reads).await;
            let hits = got.iter().filter(|c| matches!(c, Counted::Allowed(Some(_)))).count();
            assert_eq!(hits, 1, "round {round}: {got:?}");
        }
    }
}

/// What Redis itself holds: one key per message, whose TTL is set once at create and never
/// moved, so the receipt goes exactly at the original expiry and nothing is left behind; and a
/// message written by an older crypt (a plain string) is still read once.
mod keys {
    use super::*;
    use crypt_domain::{Message, MessageId, MessageStore, Policy, ReceiptDigest, StoredMessage, Ttl};

    fn resp_int(answer: Option<String>) -> i64 {
        let answer = answer.expect("redis answered");
        answer.trim().trim_start_matches(':').parse().unwrap_or_else(|_| panic!("not an integer: {answer:?}"))
    }

    #[tokio::test]
    async fn a_receipt_keeps_the_original_ttl_and_reads_of_unknown_ids_leave_no_key() {
        let s = single().await;
        let ttl = Ttl::new(600, &Policy::default()).unwrap();
        let message = StoredMessage {
            message: Message::new("ttl".into(), &Policy::default()).unwrap(),
            expires_at: now() + 600_000,
            views: 2,
            receipt: Some(ReceiptDigest::of("r")),
        };
        let id = MessageId::parse("ttl01").unwrap();
        s.insert_new(&id, &message, ttl).await.unwrap();
        let key = format!("{}m:ttl01", s.prefix());
        let before = resp_int(s._server.command(&["PTTL", &key]));
        assert!((590_000..=600_000).contains(&before), "{before}");
        s.spend_view(&id, now()).await.unwrap().unwrap();
        s.spend_view(&id, now()).await.unwrap().unwrap();
        s.delete(&id, &ReceiptDigest::of("r"), now()).await.unwrap().unwrap();
        let after = resp_int(s._server.command(&["PTTL", &key]));
        assert!(after <= before && after > before - 5_000, "the TTL moved: {before} then {after}");
        assert_eq!(resp_int(s._server.command(&["HEXISTS", &key, "t"])), 0, "the text is gone");
        let keys = resp_int(s._server.command(&["DBSIZE"]));
        let never = MessageId::parse("never").unwrap();
        assert_eq!(s.spend_view(&never, now()).await.unwrap(), None);
        assert_eq!(s.record(&never, now()).await.unwrap(), None);
        assert_eq!(s.delete(&never, &ReceiptDigest::of("r"), now()).await.unwrap(), None);
        assert_eq!(resp_int(s._server.command(&["DBSIZE"])), keys, "a key was left behind");
    }

    #[tokio::test]
    async fn a_message_stored_by_an_older_crypt_is_read_once_and_has_no_receipt() {
        let s = single().await;
        let old = StoredMessage::new(Message::new("from before".into(), &Policy::default()).unwrap(), now() + 60_000);
        let key = format!("{}m:old01", s.prefix());
        let bytes = old.encode();
        // The format-1 bytes, as the previous release wrote them with SET.
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key).arg(bytes).arg("EX").arg(60);
        let mut conn = redis::Client::open(s._server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let _: () = cmd.query_async(&mut conn).await.unwrap();
        let id = MessageId::parse("old01").unwrap();
        assert_eq!(s.record(&id, now()).await.unwrap(), None);
        assert_eq!(s.delete(&id, &ReceiptDigest::of("r"), now()).await.unwrap(), None);
        let read = s.spend_view(&id, now()).await.unwrap().unwrap();
        assert_eq!((read.message.as_text().unwrap(), read.views_left), ("from before", 0));
        assert_eq!(s.spend_view(&id, now()).await.unwrap(), None);
    }
}
