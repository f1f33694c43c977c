//! quiche configurations for the server and client sides: ALPN `mqtt`,
//! TLS 1.3 certificates, flow-control windows and timeouts.

use std::time::Duration;

use anyhow::Context;
use boring::ssl::{SslContextBuilder, SslFiletype, SslMethod, SslRef, SslVerifyMode};
use foreign_types::ForeignTypeRef;

use super::ALPN;
use super::server_identity::{ServerIdentity, TrustSource, VerifyReport, verify_server};
use crate::net::tls::{ClientTls, ServerTls};

/// Flow control and timing shared by both sides.
#[derive(Debug, Clone)]
pub struct QuicLimits {
    /// A connection with no traffic for this long is closed. MQTT keep-alive
    /// pings keep a live session open.
    pub idle_timeout: Duration,
    /// Receive window of the MQTT stream, in bytes.
    pub stream_window: u64,
    /// Receive window of the whole connection, in bytes.
    pub connection_window: u64,
    /// Largest UDP payload sent; 1200 fits any path, SCION headers included.
    pub max_udp_payload: usize,
}

impl Default for QuicLimits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(120),
            stream_window: 2 * 1024 * 1024,
            connection_window: 4 * 1024 * 1024,
            max_udp_payload: 1200,
        }
    }
}

fn apply_limits(config: &mut quiche::Config, limits: &QuicLimits) -> anyhow::Result<()> {
    config.set_application_protos(&[ALPN])?;
    config.set_max_idle_timeout(limits.idle_timeout.as_millis() as u64);
    config.set_max_recv_udp_payload_size(super::MAX_DATAGRAM);
    config.set_max_send_udp_payload_size(limits.max_udp_payload);
    config.set_initial_max_data(limits.connection_window);
    config.set_initial_max_stream_data_bidi_local(limits.stream_window);
    config.set_initial_max_stream_data_bidi_remote(limits.stream_window);
    config.set_initial_max_stream_data_uni(0);
    config.set_initial_max_streams_uni(0);
    // What the connection task's delayed acknowledgements keep within.
    config.set_max_ack_delay(super::delayed_ack::MAX_ACK_DELAY.as_millis() as u64);
    Ok(())
}

/// A server configuration: its certificate, and client verification when
/// `client_ca` is set (against that bundle alone).
pub fn server_config(tls: &ServerTls, limits: &QuicLimits) -> anyhow::Result<quiche::Config> {
    // rustls reads the same files first: its errors name the file and the
    // cause (a missing file, no key, a key of another certificate) where
    // BoringSSL's do not.
    crate::net::tls::server_config(tls)?;
    // The context is built here, not by quiche, whose own would also trust
    // the system's CAs for client certificates.
    let mut builder = SslContextBuilder::new(SslMethod::tls()).context("creating a TLS context")?;
    builder
        .set_certificate_chain_file(&tls.cert_chain)
        .with_context(|| format!("loading certificate chain {}", tls.cert_chain.display()))?;
    builder
        .set_private_key_file(&tls.private_key, SslFiletype::PEM)
        .with_context(|| format!("loading private key {}", tls.private_key.display()))?;
    if let Some(ca) = &tls.client_ca {
        builder
            .set_ca_file(ca)
            .with_context(|| format!("loading client CA {}", ca.display()))?;
    }
    builder.set_select_certificate_callback(|mut hello| {
        shed_handshake_config(hello.ssl_mut());
        Ok(())
    });
    let mut config =
        quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, builder)?;
    apply_limits(&mut config, limits)?;
    // MQTT needs one stream; a few more are tolerated and reset.
    config.set_initial_max_streams_bidi(4);
    config.verify_peer(tls.client_ca.is_some());
    Ok(config)
}

/// Has BoringSSL free the connection's copy of the handshake settings (its
/// certificate and key references, CA names, transport parameters, about
/// 600 bytes) when the handshake ends: an established connection never
/// reads them again.
fn shed_handshake_config(ssl: &mut SslRef) {
    // SAFETY: `ssl` is a live SSL handed to a callback of its own
    // handshake; the call only sets a flag on it.
    unsafe { boring_sys::SSL_set_shed_handshake_config(ssl.as_ptr(), 1) }
}

/// A client's configuration for one connection: the quiche settings, whom
/// the server must prove to be, and where a refusal's reason is found.
pub struct ClientConfig {
    /// The quiche settings (TLS context included).
    pub quiche: quiche::Config,
    /// What the server's certificate must name.
    pub identity: ServerIdentity,
    /// Why the server's certificate was refused, once it was.
    pub report: VerifyReport,
}

/// A client configuration for reaching `server_name` (a DNS name or an IP
/// literal, see [`ServerIdentity`]). With `tls.ca` only that bundle is
/// trusted, as mosquitto_pub's `--cafile`; without it the system's roots.
pub fn client_config(
    tls: &ClientTls,
    limits: &QuicLimits,
    server_name: &str,
) -> anyhow::Result<ClientConfig> {
    let identity = ServerIdentity::parse(server_name);
    let mut builder = SslContextBuilder::new(SslMethod::tls()).context("creating a TLS context")?;
    let trust = match &tls.ca {
        Some(ca) => {
            builder
                .set_ca_file(ca)
                .with_context(|| format!("loading CA {}", ca.display()))?;
            TrustSource::File(ca.display().to_string())
        }
        None => {
            builder
                .set_default_verify_paths()
                .context("loading the system's trusted CAs")?;
            TrustSource::System
        }
    };
    match (&tls.cert_chain, &tls.private_key) {
        (Some(cert), Some(key)) => {
            builder
                .set_certificate_chain_file(cert)
                .with_context(|| format!("loading client certificate {}", cert.display()))?;
            builder
                .set_private_key_file(key, SslFiletype::PEM)
                .with_context(|| format!("loading client key {}", key.display()))?;
            builder.check_private_key().with_context(|| {
                format!(
                    "client key {} does not match {}",
                    key.display(),
                    cert.display()
                )
            })?;
        }
        (None, None) => {}
        _ => anyhow::bail!("a client certificate needs both the chain and the private key"),
    }
    let report = if tls.insecure {
        builder.set_verify(SslVerifyMode::NONE);
        VerifyReport::default()
    } else {
        verify_server(&mut builder, identity.clone(), trust)
    };
    let mut config =
        quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, builder)?;
    apply_limits(&mut config, limits)?;
    // (quiche's verify_peer() would replace the callback set above.)
    config.set_initial_max_streams_bidi(0);
    Ok(ClientConfig {
        quiche: config,
        identity,
        report,
    })
}
