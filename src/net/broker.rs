//! Reaching the broker: MQTT over TCP, or over TLS for `mqtts://` brokers
//! (hosted brokers require it), with a CA bundle, an optional client
//! certificate and a server-name override.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::HostPort;
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

impl<'de> Deserialize<'de> for BrokerUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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
            });
        }
        let mut roots = RootCertStore::empty();
        match &tls.ca {
            Some(ca) => {
                for cert in CertificateDer::pem_file_iter(ca)
                    .with_context(|| format!("reading broker CA {}", ca.display()))?
                {
                    roots.add(cert.with_context(|| format!("parsing {}", ca.display()))?)?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(read_chain(cert)?, read_key(key)?)
                .context("broker client certificate")?,
            (None, None) => builder.with_no_client_auth(),
            _ => anyhow::bail!("the broker client certificate needs both `cert` and `key`"),
        };
        let host = url
            .addr
            .as_str()
            .rsplit_once(':')
            .map_or("", |(h, _)| h)
            .trim_matches(['[', ']']);
        let name = tls.server_name.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.to_string())
            .map_err(|_| anyhow::anyhow!("`{name}` is not a valid TLS server name"))?;
        Ok(Self {
            addr,
            tls: Some((TlsConnector::from(Arc::new(config)), name)),
            proxy_protocol,
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
}

fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", path.display()))
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).with_context(|| format!("reading key {}", path.display()))
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
    }
}
