//! Reaching the broker: MQTT over TCP, or over TLS for `mqtts://` brokers
//! (hosted brokers require it), with a CA bundle, an optional client
//! certificate and a server-name override.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use std::net::SocketAddr;

use anyhow::Context;
use rustls_pki_types::ServerName;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::HostPort;
use super::tls::ClientTls;
use crate::net::connector::BoxedStream;

/// A broker address: `host:port` or `mqtt://host:port` (TCP) or
/// `mqtts://host:port` (TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Where to connect.
    pub addr: HostPort,
    /// Whether to speak TLS.
    pub tls: bool,
}

impl FromStr for BrokerUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tls, rest) = match s.split_once("://") {
            None => (false, s),
            Some(("mqtt" | "tcp", rest)) => (false, rest),
            Some(("mqtts" | "ssl" | "tls", rest)) => (true, rest),
            Some((scheme, _)) => {
                return Err(format!(
                    "broker scheme `{scheme}` is not mqtt:// or mqtts://"
                ));
            }
        };
        Ok(BrokerUrl {
            addr: rest.trim_end_matches('/').parse()?,
            tls,
        })
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tls {
            write!(f, "mqtts://{}", self.addr)
        } else {
            write!(f, "{}", self.addr)
        }
    }
}

super::deserialize_from_str!(BrokerUrl);

/// A QUIC-capable broker on UDP/IP (scion-udp relays datagrams to it):
/// `host:port` or `quic://host:port`, the same `[scheme://]host:port` form
/// as [`BrokerUrl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuicBroker(pub HostPort);

impl QuicBroker {
    /// `host:port`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl FromStr for QuicBroker {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = match s.split_once("://") {
            None => s,
            Some(("quic", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "broker scheme `{scheme}` is not quic:// (scion-udp relays QUIC datagrams)"
                ));
            }
        };
        Ok(QuicBroker(rest.trim_end_matches('/').parse()?))
    }
}

impl fmt::Display for QuicBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

super::deserialize_from_str!(QuicBroker);

/// TLS settings towards an `mqtts://` broker.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerTls {
    /// PEM CA bundle the broker must chain to (unset: the system's roots).
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain, for brokers that require one.
    pub cert: Option<PathBuf>,
    /// PEM key of `cert`.
    pub key: Option<PathBuf>,
    /// Name to verify instead of the broker's host.
    pub server_name: Option<String>,
}

/// Opens connections to one broker.
pub struct BrokerConnector {
    addr: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Start each connection with a PROXY protocol v2 header.
    proxy_protocol: bool,
    /// When a connection for a client last opened (a probe that needs no
    /// connection of its own).
    last_opened: std::sync::Mutex<Option<std::time::Instant>>,
}

impl BrokerConnector {
    /// Prepares TLS (reading the files now, so errors show at start). With
    /// `proxy_protocol`, each connection starts with a PROXY v2 header
    /// naming the client.
    pub fn new(url: &BrokerUrl, tls: &BrokerTls, proxy_protocol: bool) -> anyhow::Result<Self> {
        let addr = url.addr.as_str().to_string();
        if !url.tls {
            return Ok(Self {
                addr,
                tls: None,
                proxy_protocol,
                last_opened: Default::default(),
            });
        }
        let config = super::tls::client_config(&ClientTls {
            ca: tls.ca.clone(),
            cert_chain: tls.cert.clone(),
            private_key: tls.key.clone(),
            ..ClientTls::default()
        })
        .context("TLS towards the broker")?;
        let host = url.addr.as_str().rsplit_once(':').map_or("", |(h, _)| h);
        let name = super::tls::server_name(tls.server_name.as_deref().unwrap_or(host))?;
        Ok(Self {
            addr,
            tls: Some((TlsConnector::from(Arc::new(config)), name)),
            proxy_protocol,
            last_opened: Default::default(),
        })
    }

    /// Opens one connection for the client at `client` (TCP, the PROXY
    /// header when enabled, then TLS when configured).
    pub async fn connect(&self, client: SocketAddr) -> std::io::Result<BoxedStream> {
        let mut tcp = TcpStream::connect(&self.addr).await?;
        tcp.set_nodelay(true)?;
        if self.proxy_protocol {
            let header = crate::net::proxy_protocol::header_v2(client, tcp.peer_addr()?);
            tcp.write_all(&header).await?;
        }
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some((connector, name)) => Ok(Box::new(connector.connect(name.clone(), tcp).await?)),
        }
    }

    /// Whether the broker accepts connections now (for readiness): a
    /// connection opened for a client within `fresh` answers it; else a TCP
    /// connection and, when configured, the TLS handshake, closed at once
    /// (no PROXY header: there is no client to name).
    pub async fn probe(
        &self,
        limit: std::time::Duration,
        fresh: std::time::Duration,
    ) -> Result<(), String> {
        let opened = *self.last_opened.lock().unwrap_or_else(|e| e.into_inner());
        if opened.is_some_and(|at| at.elapsed() < fresh) {
            return Ok(());
        }
        let attempt = async {
            let tcp = TcpStream::connect(&self.addr).await?;
            if let Some((connector, name)) = &self.tls {
                connector.connect(name.clone(), tcp).await?;
            }
            Ok::<(), std::io::Error>(())
        };
        match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("broker {} unreachable: {e}", self.addr)),
            Err(_) => Err(format!(
                "broker {} did not answer within {limit:?}",
                self.addr
            )),
        }
    }

    /// [`connect`](Self::connect) within `limit`; the error says in words
    /// why the broker could not be reached (for the log).
    pub async fn connect_within(
        &self,
        client: SocketAddr,
        limit: std::time::Duration,
    ) -> Result<BoxedStream, String> {
        match tokio::time::timeout(limit, Box::pin(self.connect(client))).await {
            Ok(Ok(stream)) => {
                *self.last_opened.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(std::time::Instant::now());
                Ok(stream)
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no connection within {limit:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_urls() {
        let plain: BrokerUrl = "127.0.0.1:1883".parse().unwrap();
        assert!(!plain.tls);
        let tls: BrokerUrl = "mqtts://broker.example:8883".parse().unwrap();
        assert!(tls.tls);
        assert_eq!(tls.to_string(), "mqtts://broker.example:8883");
        assert!("http://x:1".parse::<BrokerUrl>().is_err());
        assert!("mqtts://nohost".parse::<BrokerUrl>().is_err());
        let quic: QuicBroker = "quic://broker.example:14567".parse().unwrap();
        assert_eq!(quic.as_str(), "broker.example:14567");
        assert_eq!(
            "10.0.0.1:14567".parse::<QuicBroker>().unwrap().to_string(),
            "10.0.0.1:14567"
        );
        assert!(
            "mqtt://x:1"
                .parse::<QuicBroker>()
                .unwrap_err()
                .contains("not quic://")
        );
    }
}
