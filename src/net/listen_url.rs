//! Naming a listener: a URL whose scheme is its transport (`tcp://`,
//! `tls://`, `ws://`, `wss://`, `quic://`, `scion-quic://`), as configs
//! write them.

use std::fmt;
use std::str::FromStr;

use sciparse::address::ip_socket_addr::ScionSocketIpAddr;

use super::HostPort;

/// The transports a service can accept MQTT on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// MQTT over TCP.
    Tcp,
    /// MQTT over TLS (the 8883 convention).
    Tls,
    /// MQTT over WebSocket (subprotocol `mqtt`).
    Ws,
    /// MQTT over WebSocket over TLS.
    Wss,
    /// MQTT over QUIC on UDP/IP (ALPN `mqtt`).
    Quic,
    /// MQTT over QUIC over SCION.
    ScionQuic,
}

impl Transport {
    /// The URL scheme, also the name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
            Transport::Quic => "quic",
            Transport::ScionQuic => "scion-quic",
        }
    }

    /// Whether it needs the server's certificate.
    pub fn needs_certificate(self) -> bool {
        !matches!(self, Transport::Tcp | Transport::Ws)
    }

    const ALL: [Transport; 6] = [
        Transport::Tcp,
        Transport::Tls,
        Transport::Ws,
        Transport::Wss,
        Transport::Quic,
        Transport::ScionQuic,
    ];
}

/// One listener: `tcp://0.0.0.0:1883`, `tls://[::]:8883`, `ws://…`,
/// `wss://…`, `quic://0.0.0.0:14567`, `scion-quic://[1-ff00:0:110,10.0.0.2]:4433`
/// (or `scion-quic://` for any port the SCION stack picks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenUrl {
    /// How clients connect.
    pub transport: Transport,
    /// Where: `host:port`, or a SCION address; `None` only for SCION (any port).
    pub addr: Option<String>,
}

impl ListenUrl {
    /// A listener of `transport` on `addr`.
    pub fn new(transport: Transport, addr: impl Into<String>) -> Self {
        Self {
            transport,
            addr: Some(addr.into()),
        }
    }
}

impl FromStr for ListenUrl {
    type Err = String;
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let schemes = || {
            Transport::ALL
                .iter()
                .map(|t| format!("{}://", t.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("listener `{url}` has no scheme ({})", schemes()))?;
        let transport = Transport::ALL
            .into_iter()
            .find(|t| t.name() == scheme)
            .ok_or_else(|| {
                format!(
                    "listener `{url}`: unknown scheme `{scheme}` ({})",
                    schemes()
                )
            })?;
        let rest = rest.trim_end_matches('/');
        let addr = match transport {
            Transport::ScionQuic if rest.is_empty() => None,
            Transport::ScionQuic => {
                rest.parse::<ScionSocketIpAddr>().map_err(|_| {
                    format!(
                        "listener `{url}`: not a SCION address like [1-ff00:0:110,10.0.0.1]:4433"
                    )
                })?;
                Some(rest.to_string())
            }
            _ => Some(
                rest.parse::<HostPort>()
                    .map_err(|e| format!("listener `{url}`: {e}"))?
                    .to_string(),
            ),
        };
        Ok(Self { transport, addr })
    }
}

impl fmt::Display for ListenUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}",
            self.transport.name(),
            self.addr.as_deref().unwrap_or("")
        )
    }
}

super::deserialize_from_str!(ListenUrl);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_urls() {
        let tcp: ListenUrl = "tcp://0.0.0.0:1883".parse().unwrap();
        assert_eq!(tcp, ListenUrl::new(Transport::Tcp, "0.0.0.0:1883"));
        assert_eq!(tcp.to_string(), "tcp://0.0.0.0:1883");
        let any: ListenUrl = "scion-quic://".parse().unwrap();
        assert_eq!(any.addr, None);
        let scion: ListenUrl = "scion-quic://[1-ff00:0:110,10.0.0.2]:4433".parse().unwrap();
        assert_eq!(scion.transport, Transport::ScionQuic);
        for ok in [
            "tls://[::]:8883",
            "ws://127.0.0.1:8080",
            "wss://h:443",
            "quic://h:14567",
        ] {
            assert!(ok.parse::<ListenUrl>().is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("0.0.0.0:1883", "no scheme"),
            ("http://h:1", "unknown scheme `http`"),
            ("tcp://h", "not host:port"),
            ("scion-quic://10.0.0.1:4433", "not a SCION address"),
        ] {
            let err = bad.parse::<ListenUrl>().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
