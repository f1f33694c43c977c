//! PROXY protocol version 2 headers (the HAProxy specification), written at
//! the start of a broker connection so the broker sees the real client
//! address instead of the proxy's.

use std::net::{IpAddr, SocketAddr};

const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Version 2, command PROXY.
const VERSION_PROXY: u8 = 0x21;
const TCP_OVER_IPV4: u8 = 0x11;
const TCP_OVER_IPV6: u8 = 0x21;

/// The header announcing a TCP connection from `source` to `destination`.
/// When one side is IPv4 and the other IPv6, both are written as IPv6
/// (IPv4-mapped).
pub fn header_v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 36);
    out.extend_from_slice(&SIGNATURE);
    out.push(VERSION_PROXY);
    match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(TCP_OVER_IPV4);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.push(TCP_OVER_IPV6);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(s).octets());
            out.extend_from_slice(&v6(d).octets());
        }
    }
    out.extend_from_slice(&source.port().to_be_bytes());
    out.extend_from_slice(&destination.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_matches_the_specification() {
        let h = header_v2(
            "192.0.2.10:51000".parse().unwrap(),
            "198.51.100.1:1883".parse().unwrap(),
        );
        assert_eq!(&h[..12], b"\r\n\r\n\0\r\nQUIT\n");
        assert_eq!(h[12], 0x21);
        assert_eq!(h[13], 0x11);
        assert_eq!(&h[14..16], &[0, 12]);
        assert_eq!(&h[16..20], &[192, 0, 2, 10]);
        assert_eq!(&h[20..24], &[198, 51, 100, 1]);
        assert_eq!(&h[24..26], &51000u16.to_be_bytes());
        assert_eq!(&h[26..28], &1883u16.to_be_bytes());
        assert_eq!(h.len(), 28);
    }

    #[test]
    fn mixed_families_become_ipv6() {
        let h = header_v2(
            "[2001:db8::1]:4000".parse().unwrap(),
            "10.0.0.1:1883".parse().unwrap(),
        );
        assert_eq!(h[13], 0x21);
        assert_eq!(&h[14..16], &[0, 36]);
        assert_eq!(h.len(), 16 + 36);
        assert_eq!(
            &h[32..48],
            &"::ffff:10.0.0.1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
    }
}
