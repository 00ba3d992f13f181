//! Which address a request counts against.

use http::header::HeaderName;
use http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// Named once: looking a header up by a string parses and checks the name on every request.
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client's address: the socket peer, unless the peer is a trusted proxy, in which case
/// `X-Forwarded-For` is walked from the right (the hop nearest to us) and the first address
/// that is not itself a trusted proxy is the client. A malformed entry stops the walk, so a
/// client cannot choose its address by forging the left end of the header.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // From the right: the last header's last entry first. No list is built (this runs on every
    // request behind a proxy).
    let hops = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .rev()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.rsplit(','))
        .map(str::trim);
    let mut client = peer;
    for hop in hops {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !is_trusted(&client) {
                    return client;
                }
            }
            Err(_) => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        assert_eq!(client_ip(ip("10.0.0.5"), &xff("1.2.3.4"), &[]), ip("10.0.0.5"));
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(client_ip(ip("10.0.0.5"), &xff("6.6.6.6, 1.2.3.4, 10.1.1.1"), &trusted), ip("1.2.3.4"));
    }

    #[test]
    fn an_untrusted_peer_cannot_forge_its_address() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(client_ip(ip("9.9.9.9"), &xff("1.2.3.4"), &trusted), ip("9.9.9.9"));
    }

    #[test]
    fn garbage_stops_the_walk() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(client_ip(ip("10.0.0.5"), &xff("1.2.3.4, bogus"), &trusted), ip("10.0.0.5"));
        assert_eq!(client_ip(ip("10.0.0.5"), &HeaderMap::new(), &trusted), ip("10.0.0.5"));
    }

    #[test]
    fn ipv4_mapped_peers_are_canonical() {
        assert_eq!(client_ip(ip("::ffff:192.0.2.7"), &HeaderMap::new(), &[]), ip("192.0.2.7"));
    }

    #[test]
    fn several_headers_are_one_list_read_from_the_last() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 1.1.1.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("2.2.2.2, 10.9.9.9"));
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("2.2.2.2"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.1.1.1"));
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("2.2.2.2"));
    }
}
