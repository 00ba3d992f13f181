//! Which connections are let in, so that no client (or crowd of them) can take every socket.
//!
//! - At most `CRYPT_MAX_CONNECTIONS` are open at once: a semaphore permit is taken *before*
//!   `accept`, as mini-redis's `server.rs` does, so past the cap new connections wait in the
//!   kernel's listen queue (and are served as soon as one closes) instead of costing memory.
//! - At most `CRYPT_MAX_CONNECTIONS_PER_CLIENT` from one client address (an IPv6 client by its
//!   `CRYPT_IPV6_PREFIX`), so one address cannot hold the whole cap: past it, a new connection is
//!   closed at once. A trusted proxy's connections carry many clients and are not capped.
//! - The cap never exceeds what the file descriptor limit allows: the soft limit is raised to
//!   the hard one at start-up (as Go's runtime does), and the cap lowered below it if need be,
//!   so an overload never turns into `accept` failing or a Redis reconnect finding no descriptor.
//!
//! Slow clients are bounded in time as well as number: the header timeout (the watchdog) and the
//! body timeout close them whatever they trickle.

use crate::metrics::Metrics;
use crypt_http::Ipv6Prefix;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors kept for everything that is not a client connection: the listeners, Redis
/// connections (one per Cluster node), standard streams, the runtime's own.
const RESERVED_DESCRIPTORS: u64 = 64;

/// The connection caps of one server.
#[derive(Debug)]
pub(crate) struct Admission {
    total: Arc<Semaphore>,
    max: usize,
    per_client: u32,
    prefix: Ipv6Prefix,
    trusted: Vec<IpNet>,
    held: Mutex<HashMap<IpAddr, u32>>,
    metrics: Arc<Metrics>,
}

/// One admitted connection: it holds its place until dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    _permit: OwnedSemaphorePermit,
    client: Option<IpAddr>,
    admission: Arc<Admission>,
}

impl Admission {
    /// Caps of `max` connections in all (already fitted to the descriptor limit, see
    /// [`fit_to_descriptors`]) and `per_client` per client address (0: none).
    pub(crate) fn new(
        max: usize,
        per_client: u32,
        prefix: Ipv6Prefix,
        trusted: Vec<IpNet>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let total = Arc::new(Semaphore::new(max));
        Self { total, max, per_client, prefix, trusted, held: Mutex::new(HashMap::new()), metrics }
    }

    /// The most connections open at once.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Room for one more connection, if there is some now.
    pub(crate) fn total_room(&self) -> Option<OwnedSemaphorePermit> {
        self.total.clone().try_acquire_owned().ok()
    }

    /// Waits for room for one more connection.
    pub(crate) async fn room(&self) -> OwnedSemaphorePermit {
        self.total.clone().acquire_owned().await.expect("the semaphore is never closed")
    }

    /// Lets a connection from `peer` in with `permit`, or `None` when its address already holds
    /// its share (the caller closes it).
    pub(crate) fn admit(self: &Arc<Self>, permit: OwnedSemaphorePermit, peer: IpAddr) -> Option<Ticket> {
        let client = (self.per_client > 0 && !self.trusted.iter().any(|n| n.contains(&peer.to_canonical())))
            .then(|| self.prefix.client(peer));
        if let Some(client) = client {
            let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = held.entry(client).or_insert(0);
            if *n >= self.per_client {
                drop(held);
                self.metrics.connection_refused();
                return None;
            }
            *n += 1;
        }
        self.metrics.connection_opened();
        Some(Ticket { _permit: permit, client, admission: self.clone() })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.metrics.connection_closed();
        let Some(client) = self.client else { return };
        let mut held = self.admission.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = held.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                held.remove(&client);
            }
        }
    }
}

/// `wanted`, lowered if the process's file descriptor limit cannot hold that many connections
/// (after raising the soft limit to the hard one). Returns the cap and, when it was lowered,
/// the limit that lowered it.
pub(crate) fn fit_to_descriptors(wanted: usize) -> (usize, Option<u64>) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        // Not a Unix, or the limit cannot be read: trust the setting.
        Err(_) => return (wanted, None),
    };
    let room = usize::try_from(limit.saturating_sub(RESERVED_DESCRIPTORS)).unwrap_or(usize::MAX).max(1);
    if room < wanted {
        (room, Some(limit))
    } else {
        (wanted, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max: usize, per_client: u32, trusted: &[&str]) -> Arc<Admission> {
        let trusted = trusted.iter().map(|n| n.parse().unwrap()).collect();
        Arc::new(Admission::new(max, per_client, Ipv6Prefix::default(), trusted, Arc::new(Metrics::new())))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn one_address_holds_at_most_its_share_and_gets_it_back() {
        let a = admission(10, 2, &[]);
        let first = a.admit(a.room().await, ip("192.0.2.1")).expect("first");
        let _second = a.admit(a.room().await, ip("::ffff:192.0.2.1")).expect("second, the same address mapped");
        assert!(a.admit(a.room().await, ip("192.0.2.1")).is_none(), "a third is over its share");
        assert!(a.admit(a.room().await, ip("192.0.2.2")).is_some(), "another address is let in");
        drop(first);
        assert!(a.admit(a.room().await, ip("192.0.2.1")).is_some(), "a closed connection frees its place");
    }

    #[tokio::test]
    async fn an_ipv6_client_is_its_prefix_and_trusted_proxies_are_not_capped() {
        let a = admission(10, 1, &["10.0.0.0/8"]);
        let _held = a.admit(a.room().await, ip("2001:db8::1")).unwrap();
        assert!(a.admit(a.room().await, ip("2001:db8::2:3")).is_none(), "the same /64");
        let proxied: Vec<_> = (0..5).map(|_| a.admit(a.total_room().unwrap(), ip("10.1.2.3"))).collect();
        assert!(proxied.iter().all(Option::is_some));
    }

    #[tokio::test]
    async fn past_the_total_cap_there_is_no_room_until_one_closes() {
        let a = admission(2, 0, &[]);
        let one = a.admit(a.room().await, ip("192.0.2.1")).unwrap();
        let _two = a.admit(a.room().await, ip("192.0.2.1")).unwrap();
        assert!(a.total_room().is_none(), "no room past the cap");
        drop(one);
        assert!(a.total_room().is_some());
    }

    #[test]
    fn the_cap_fits_the_descriptor_limit() {
        let (cap, lowered) = fit_to_descriptors(usize::MAX);
        let limit = lowered.expect("no process may open usize::MAX descriptors");
        assert_eq!(cap as u64, limit - RESERVED_DESCRIPTORS);
        assert_eq!(fit_to_descriptors(10), (10, None));
    }
}
