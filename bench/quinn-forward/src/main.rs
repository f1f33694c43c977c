//! The reference `bench/compare.sh` holds scion-quic against: MQTT over QUIC
//! in, MQTT/TCP to the broker out, on quinn and rustls (the other Rust QUIC
//! stack) instead of quiche and BoringSSL. It does what scion-quic does for
//! a client on UDP/IP and nothing more: one thread, ALPN `mqtt`, TLS 1.3,
//! the same flow-control windows, stream limits, datagram size and idle
//! timeout, the first bidirectional stream relayed byte for byte, and no
//! buffer kept while a connection is idle (what it reads from the broker
//! goes through one buffer per thread, as in scion-quic).
//!
//!   quinn-forward LISTEN BROKER CERT_PEM KEY_PEM
//!
//! It says `{"fields":{"message":"quinn-forward serving","listen":ADDR}}` on
//! stderr once it listens (the form `bench/lines.sh` waits for).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use quinn::crypto::rustls::QuicServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// scion-quic's defaults (`QuicLimits` in src/net/quic/settings.rs).
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_UDP_PAYLOAD: u16 = 1200;
const MAX_BIDI_STREAMS: u32 = 4;
/// What one read from the broker takes at most.
const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, broker, cert, key] = args.as_slice() else {
        anyhow::bail!("usage: quinn-forward LISTEN BROKER CERT_PEM KEY_PEM");
    };
    let listen: SocketAddr = listen.parse().context("LISTEN")?;
    let broker: SocketAddr = broker.parse().context("BROKER")?;
    let config = server_config(cert, key)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(listen, broker, config))
}

fn server_config(cert: &str, key: &str) -> anyhow::Result<quinn::ServerConfig> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {cert}"))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {cert}"))?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {key}"))?;
    // ring: no C toolchain to build. rustls marks it deprecated only for
    // lacking post-quantum key exchange, which costs nothing after the
    // handshake this reference is measured on.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![b"mqtt".to_vec()];
    let mut transport = quinn::TransportConfig::default();
    transport
        .stream_receive_window(STREAM_WINDOW.into())
        .receive_window(CONNECTION_WINDOW.into())
        .max_concurrent_bidi_streams(MAX_BIDI_STREAMS.into())
        .max_concurrent_uni_streams(0u32.into())
        .max_idle_timeout(Some(IDLE_TIMEOUT.try_into()?))
        .initial_mtu(MAX_UDP_PAYLOAD)
        .mtu_discovery_config(None);
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

async fn serve(
    listen: SocketAddr,
    broker: SocketAddr,
    config: quinn::ServerConfig,
) -> anyhow::Result<()> {
    let endpoint = quinn::Endpoint::server(config, listen)?;
    eprintln!(
        r#"{{"fields":{{"message":"quinn-forward serving","listen":"{}"}}}}"#,
        endpoint.local_addr()?
    );
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(async move {
            if let Err(e) = forward(incoming, broker).await {
                eprintln!("quinn-forward: a connection ended: {e:#}");
            }
        });
    }
    Ok(())
}

/// Relays the connection's first bidirectional stream to a new TCP
/// connection to the broker, both ways, until either side ends.
async fn forward(incoming: quinn::Incoming, broker: SocketAddr) -> anyhow::Result<()> {
    let connection = incoming.await?;
    let (mut to_client, mut from_client) = connection.accept_bi().await?;
    let tcp = TcpStream::connect(broker).await?;
    tcp.set_nodelay(true)?;
    let (from_broker, mut to_broker) = tcp.into_split();
    let upstream = async {
        while let Some(chunk) = from_client.read_chunk(usize::MAX, true).await? {
            to_broker.write_all(&chunk.bytes).await?;
        }
        to_broker.shutdown().await?;
        anyhow::Ok(())
    };
    let downstream = async {
        loop {
            from_broker.readable().await?;
            let read = SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                from_broker
                    .try_read(&mut scratch)
                    .map(|n| Bytes::copy_from_slice(&scratch[..n]))
            });
            match read {
                Ok(bytes) if bytes.is_empty() => break,
                Ok(bytes) => to_client.write_chunk(bytes).await?,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            }
        }
        to_client.finish()?;
        anyhow::Ok(())
    };
    tokio::try_join!(upstream, downstream)?;
    Ok(())
}
