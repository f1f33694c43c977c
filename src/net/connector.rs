//! Opening the byte stream an MQTT connection runs on, chosen by URL:
//! `tcp://host:port`, `quic://host:port` (MQTT over QUIC on UDP/IP) or
//! `scion-quic://[ISD-AS,IP]:port` (MQTT over QUIC over SCION).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use scion_stack::stack::ScionStack;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UdpSocket};

use super::scion::PathAcl;
use crate::net::quic::{ClientTls, QuicLimits, client_config, dial};

/// Any stream an MQTT connection can run on.
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> ByteStream for T {}

/// A boxed [`ByteStream`].
pub type BoxedStream = Box<dyn ByteStream>;

/// Where to connect, parsed from a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// MQTT over TCP.
    Tcp(String),
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
            .ok_or_else(|| format!("`{url}` has no scheme (tcp://, quic://, scion-quic://)"))?;
        let rest = rest.trim_end_matches('/');
        match scheme {
            "tcp" | "mqtt" => Ok(Endpoint::Tcp(check_host_port(rest)?)),
            "quic" => Ok(Endpoint::Quic(check_host_port(rest)?)),
            "scion-quic" => rest.parse().map(Endpoint::ScionQuic).map_err(|_| {
                format!("`{rest}` is not a SCION address like [1-ff00:0:110,10.0.0.1]:4433")
            }),
            other => Err(format!(
                "unknown scheme `{other}` (use tcp://, quic:// or scion-quic://)"
            )),
        }
    }
}

fn check_host_port(s: &str) -> Result<String, String> {
    s.parse::<super::HostPort>().map(|h| h.as_str().to_string())
}

/// How to reach and authenticate the server, beyond the URL.
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// TLS settings for QUIC.
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
        Endpoint::Tcp(addr) => {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
                .await
                .with_context(|| format!("connecting to {addr} timed out"))?
                .with_context(|| format!("connecting to {addr}"))?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream))
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
            let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
            let name = options
                .server_name
                .clone()
                .unwrap_or_else(|| host.trim_matches(['[', ']']).to_string());
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
            Ok(Box::new(Holding {
                stream,
                _keep: stack,
            }))
        }
    }
}

/// A stream that keeps something alive for as long as it is used (the
/// SCION stack its socket came from).
struct Holding<S, K> {
    stream: S,
    _keep: K,
}

impl<S: AsyncRead + Unpin, K: Unpin> AsyncRead for Holding<S, K> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin, K: Unpin> AsyncWrite for Holding<S, K> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
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
        assert!(matches!(
            "scion-quic://[1-ff00:0:110,10.0.0.1]:4433".parse::<Endpoint>(),
            Ok(Endpoint::ScionQuic(_))
        ));
        for bad in [
            "127.0.0.1:1883",
            "http://x:1",
            "quic://nohost",
            "scion-quic://1.2.3.4:5",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
    }
}
