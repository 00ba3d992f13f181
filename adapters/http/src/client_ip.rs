//! Which address a request counts against.

use http::header::HeaderName;
use http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr};

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
    // From the right: the last header's last entry first. No list is built and no text is
    // checked twice (this runs on every request behind a proxy): entries are read as bytes.
    let hops = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .rev()
        .flat_map(|v| v.as_bytes().rsplit(|&b| b == b','))
        .map(|hop| hop.trim_ascii());
    let mut client = peer;
    for hop in hops {
        match parse_ip(hop) {
            Some(ip) => {
                client = ip.to_canonical();
                if !is_trusted(&client) {
                    return client;
                }
            }
            None => return client,
        }
    }
    client
}

/// An address as `IpAddr`'s `FromStr` reads it. Dotted IPv4, the usual entry, is read here
/// directly (the standard parser goes through a general parser and wants a `&str` first);
/// anything else is handed to the standard parser.
fn parse_ip(text: &[u8]) -> Option<IpAddr> {
    if let Some(v4) = parse_ipv4(text) {
        return Some(IpAddr::V4(v4));
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Four decimal octets of 0 to 255 separated by dots, no leading zeros (`01` is refused, as
/// the standard parser refuses it): `None` for anything else.
fn parse_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split(|&b| b == b'.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        let mut value: u16 = 0;
        for &b in part {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u16::from(b - b'0');
        }
        *octet = u8::try_from(value).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
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

    #[test]
    fn addresses_are_read_as_the_standard_parser_reads_them() {
        let cases = [
            "1.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.04",
            "1..3.4",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.4 ",
            "+1.2.3.4",
            "1.2.3.-4",
            "1234.1.1.1",
            "0x1.2.3.4",
            "",
            "::1",
            "2001:db8::7",
            "::ffff:192.0.2.7",
            "2001:db8::1.2.3.4",
            "[::1]",
            "1.2.3.4:80",
            "fe80::1%eth0",
            "999.999.999.999",
            "1.2.3.4\u{0}",
            "é.1.2.3",
        ];
        for case in cases {
            assert_eq!(parse_ip(case.as_bytes()), case.parse::<IpAddr>().ok(), "{case:?}");
        }
        for n in [0u32, 1, 9, 10, 99, 100, 199, 200, 249, 250, 255, 256, 300, 999] {
            let text = format!("{n}.{n}.{n}.{n}");
            assert_eq!(parse_ip(text.as_bytes()), text.parse::<IpAddr>().ok(), "{text}");
        }
    }

    /// Every way of joining three to five parts from a list of near-octets, against the
    /// standard parser (1,118,208 strings; a third of a second in a debug build).
    #[test]
    fn dotted_quads_in_every_combination_are_read_as_the_standard_parser_reads_them() {
        const PARTS: [&str; 16] =
            ["", "0", "00", "01", "7", "10", "25", "99", "100", "199", "250", "255", "256", "999", "1000", "a"];
        let mut text = String::new();
        let mut checked = 0;
        for count in 3..=5u32 {
            for mut n in 0..PARTS.len().pow(count) {
                text.clear();
                for i in 0..count {
                    if i > 0 {
                        text.push('.');
                    }
                    text.push_str(PARTS[n % PARTS.len()]);
                    n /= PARTS.len();
                }
                assert_eq!(parse_ip(text.as_bytes()), text.parse::<IpAddr>().ok(), "{text:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 16usize.pow(3) + 16usize.pow(4) + 16usize.pow(5));
    }

    #[test]
    fn empty_and_spaced_hops() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(client_ip(ip("10.0.0.5"), &xff("  1.2.3.4  "), &trusted), ip("1.2.3.4"));
        assert_eq!(client_ip(ip("10.0.0.5"), &xff("1.2.3.4,10.0.0.9"), &trusted), ip("1.2.3.4"));
        // An empty entry is malformed: the walk stops at the last address it trusted.
        assert_eq!(client_ip(ip("10.0.0.5"), &xff("1.2.3.4,,10.0.0.9"), &trusted), ip("10.0.0.9"));
        assert_eq!(client_ip(ip("10.0.0.5"), &xff("1.2.3.4,"), &trusted), ip("10.0.0.5"));
        assert_eq!(client_ip(ip("10.0.0.5"), &xff(""), &trusted), ip("10.0.0.5"));
        assert_eq!(client_ip(ip("10.0.0.5"), &xff("2001:db8::1, 10.0.0.9"), &trusted), ip("2001:db8::1"));
    }

    #[test]
    fn a_hop_that_is_not_text_stops_the_walk() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        h.append("x-forwarded-for", HeaderValue::from_bytes(b"1.2.3.4, \xff\xfe, 10.1.1.1").unwrap());
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("10.1.1.1"));
    }
}
