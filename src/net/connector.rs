//! Opening the byte stream an MQTT connection runs on, chosen by URL:
//! `tcp://host:port` (also `mqtt://`), `mqtts://host:port` (TLS, also
//! `tls://` and `ssl://`), `ws://host:port/path` and `wss://host:port/path`
//! (WebSocket, path `/mqtt` when none is given), `quic://host:port` (MQTT
//! over QUIC on UDP/IP) or `scion-quic://[ISD-AS,IP]:port` (MQTT over QUIC
//! over SCION). Without a port, MQTT URLs use 1883 (8883 with TLS) and
//! WebSocket URLs 80 (443). The client library and the tools open every
//! connection here.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use scion_stack::stack::ScionStack;
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::scion::PathAcl;
use super::stream::Holding;
pub use super::stream::{BoxedStream, ByteStream};
use crate::net::quic::{QuicLimits, client_config, dial};
use crate::net::tls::ClientTls;

/// The WebSocket path asked for when a `ws://` or `wss://` URL has none
/// (the one EMQX, HiveMQ and paho use; mosquitto takes any).
const DEFAULT_WS_PATH: &str = "/mqtt";

/// Where to connect, parsed from a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// MQTT over TCP.
    Tcp(String),
    /// MQTT over TLS; the host is also the TLS server name.
    Tls(String),
    /// MQTT over WebSocket: `host:port` and the request path.
    Ws(String, String),
    /// MQTT over WebSocket over TLS: `host:port` and the request path.
    Wss(String, String),
    /// MQTT over QUIC on UDP/IP; the host is also the TLS server name.
    Quic(String),
    /// MQTT over QUIC over SCION.
    ScionQuic(sciparse::address::ip_socket_addr::ScionSocketIpAddr),
}

impl std::str::FromStr for Endpoint {
    type Err = String;
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("`{url}` has no scheme ({SCHEMES})"))?;
        if let "ws" | "wss" = scheme {
            let (addr, path) = match rest.find('/') {
                Some(at) => (&rest[..at], &rest[at..]),
                None => (rest, DEFAULT_WS_PATH),
            };
            let addr = check_host_port(&with_default_port(addr, scheme))?;
            return Ok(if scheme == "ws" {
                Endpoint::Ws(addr, path.to_string())
            } else {
                Endpoint::Wss(addr, path.to_string())
            });
        }
        let rest = rest.trim_end_matches('/');
        match scheme {
            "tcp" | "mqtt" => Ok(Endpoint::Tcp(check_host_port(&with_default_port(
                rest, scheme,
            ))?)),
            "mqtts" | "tls" | "ssl" => Ok(Endpoint::Tls(check_host_port(&with_default_port(
                rest, scheme,
            ))?)),
            "quic" => Ok(Endpoint::Quic(check_host_port(rest)?)),
            "scion-quic" => rest.parse().map(Endpoint::ScionQuic).map_err(|_| {
                format!("`{rest}` is not a SCION address like [1-ff00:0:110,10.0.0.1]:4433")
            }),
            other => Err(format!("unknown scheme `{other}` (use {SCHEMES})")),
        }
    }
}

const SCHEMES: &str = "tcp://, mqtts://, ws://, wss://, quic://, scion-quic://";

/// `host` with the scheme's well-known port when it names none: 1883 for
/// MQTT, 8883 for MQTT over TLS, 80 and 443 for WebSocket. QUIC has no
/// registered MQTT port, so `quic://` and `scion-quic://` need one.
fn with_default_port(host: &str, scheme: &str) -> String {
    let has_port = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.contains("]:"),
        None => host.contains(':'),
    };
    let port = match scheme {
        "mqtts" | "tls" | "ssl" => 8883,
        "ws" => 80,
        "wss" => 443,
        _ => 1883,
    };
    if has_port || host.is_empty() {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

fn check_host_port(s: &str) -> Result<String, String> {
    s.parse::<super::HostPort>().map(|h| h.as_str().to_string())
}

/// How to reach and authenticate the server, beyond the URL.
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// How the server is checked and the client proves itself (mqtts,
    /// wss, quic, scion-quic).
    pub tls: ClientTls,
    /// TLS server name; defaults to the URL's host (`localhost` for SCION).
    pub server_name: Option<String>,
    /// Endhost API of the local SCION AS (scion-quic only).
    pub endhost_api: Option<url::Url>,
    /// SNAP token for the endhost API (scion-quic only).
    pub snap_token: Option<String>,
    /// Which SCION paths may be used (scion-quic only).
    pub path_acl: Option<PathAcl>,
    /// QUIC flow control and timeouts.
    pub limits: QuicLimits,
    /// A SCION stack to open sockets on (scion-quic only); when unset, the
    /// connection uses the one this process shares for `endhost_api` and
    /// `snap_token` ([`crate::net::scion::shared_stack`]).
    pub scion_stack: Option<Arc<ScionStack>>,
}

/// Upper bound for establishing a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the stream for `endpoint`.
pub async fn open(endpoint: &Endpoint, options: &TransportOptions) -> anyhow::Result<BoxedStream> {
    match endpoint {
        Endpoint::Tcp(addr) => Ok(Box::new(tcp(addr).await?)),
        Endpoint::Tls(addr) => Ok(Box::new(tls(addr, options).await?)),
        Endpoint::Ws(addr, path) => {
            let url = format!("ws://{addr}{path}");
            let ws = super::ws::connect(tcp(addr).await?, &url)
                .await
                .with_context(|| format!("WebSocket handshake with {url}"))?;
            Ok(Box::new(ws))
        }
        Endpoint::Wss(addr, path) => {
            let url = format!("wss://{addr}{path}");
            let ws = super::ws::connect(tls(addr, options).await?, &url)
                .await
                .with_context(|| format!("WebSocket handshake with {url}"))?;
            Ok(Box::new(ws))
        }
        Endpoint::Quic(addr) => {
            let peer = tokio::net::lookup_host(addr.as_str())
                .await
                .with_context(|| format!("resolving {addr}"))?
                .next()
                .with_context(|| format!("{addr} has no address"))?;
            let bind = if peer.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let socket = UdpSocket::bind(bind).await?;
            let name = server_name(addr, options);
            let config = client_config(&options.tls, &options.limits, &name)?;
            let stream = dial(socket, peer, config, CONNECT_TIMEOUT)
                .await
                .with_context(|| format!("QUIC to {addr}"))?;
            Ok(Box::new(stream))
        }
        Endpoint::ScionQuic(addr) => {
            let stack = match &options.scion_stack {
                Some(stack) => stack.clone(),
                None => {
                    let api = options.endhost_api.clone().context(
                        "scion-quic:// needs the endhost API of the local AS (--endhost-api)",
                    )?;
                    crate::net::scion::shared_stack(api, options.snap_token.clone()).await?
                }
            };
            let socket = crate::net::scion::bind(&stack, None, options.path_acl.as_ref()).await?;
            let name = options
                .server_name
                .clone()
                .unwrap_or_else(|| "localhost".into());
            let config = client_config(&options.tls, &options.limits, &name)?;
            let stream = dial(socket, *addr, config, CONNECT_TIMEOUT)
                .await
                .with_context(|| format!("QUIC over SCION to {addr}"))?;
            Ok(Box::new(Holding::new(stream, stack)))
        }
    }
}

/// The name the server's certificate must carry: `--server-name`, else the
/// URL's host.
fn server_name(addr: &str, options: &TransportOptions) -> String {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    options
        .server_name
        .clone()
        .unwrap_or_else(|| host.trim_matches(['[', ']']).to_string())
}

async fn tcp(addr: &str) -> anyhow::Result<TcpStream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .with_context(|| format!("connecting to {addr} timed out"))?
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// TCP, then a TLS handshake checking the server as `options` say.
async fn tls(addr: &str, options: &TransportOptions) -> anyhow::Result<TlsStream<TcpStream>> {
    let config = super::tls::client_config(&options.tls)?;
    let name = super::tls::server_name(&server_name(addr, options))?;
    let stream = tcp(addr).await?;
    let handshake = TlsConnector::from(Arc::new(config)).connect(name, stream);
    tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .with_context(|| format!("TLS handshake with {addr} timed out"))?
        .with_context(|| format!("TLS handshake with {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            "tcp://127.0.0.1:1883".parse::<Endpoint>(),
            Ok(Endpoint::Tcp("127.0.0.1:1883".into()))
        );
        assert_eq!(
            "quic://broker.example:14567/".parse::<Endpoint>(),
            Ok(Endpoint::Quic("broker.example:14567".into()))
        );
        assert_eq!(
            "mqtts://broker.example:8883".parse::<Endpoint>(),
            Ok(Endpoint::Tls("broker.example:8883".into()))
        );
        assert_eq!(
            "ws://127.0.0.1:8080".parse::<Endpoint>(),
            Ok(Endpoint::Ws("127.0.0.1:8080".into(), "/mqtt".into()))
        );
        assert_eq!(
            "wss://[::1]:8081/ws".parse::<Endpoint>(),
            Ok(Endpoint::Wss("[::1]:8081".into(), "/ws".into()))
        );
        assert!(matches!(
            "scion-quic://[1-ff00:0:110,10.0.0.1]:4433".parse::<Endpoint>(),
            Ok(Endpoint::ScionQuic(_))
        ));
        // Well-known ports where MQTT has them.
        for (url, endpoint) in [
            ("mqtt://broker", Endpoint::Tcp("broker:1883".into())),
            ("mqtts://broker/", Endpoint::Tls("broker:8883".into())),
            ("tcp://[::1]", Endpoint::Tcp("[::1]:1883".into())),
            (
                "ws://broker/mqtt",
                Endpoint::Ws("broker:80".into(), "/mqtt".into()),
            ),
            (
                "wss://broker",
                Endpoint::Wss("broker:443".into(), "/mqtt".into()),
            ),
        ] {
            assert_eq!(url.parse::<Endpoint>(), Ok(endpoint), "{url}");
        }
        for bad in [
            "127.0.0.1:1883",
            "http://x:1",
            "quic://nohost",
            "tcp://",
            "ws://:80/mqtt",
            "scion-quic://1.2.3.4:5",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
    }
}
