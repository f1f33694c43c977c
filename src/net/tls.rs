//! TLS settings in one place: which files a server or a client uses
//! ([`ServerTls`], [`ClientTls`]), read into rustls configurations for the
//! TCP-based transports (tls and wss listeners, mqtts and wss connectors,
//! the broker connector, the s-proxy's gRPC server). QUIC reads the same
//! settings into BoringSSL (`quic::settings`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme,
};

/// The server's certificate and, for mutual TLS, the CA client
/// certificates must chain to.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// PEM certificate chain.
    pub cert_chain: PathBuf,
    /// PEM private key.
    pub private_key: PathBuf,
    /// PEM CA bundle; when set, clients must present a certificate it signed.
    pub client_ca: Option<PathBuf>,
}

/// How a client checks the server and, optionally, proves itself.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM CA bundle the server certificate must chain to; `None` uses the
    /// system's roots.
    pub ca: Option<PathBuf>,
    /// Directory of PEM CA certificates (every `.pem`/`.crt` file in it),
    /// besides or instead of `ca`.
    pub ca_dir: Option<PathBuf>,
    /// Skip server verification (testing only).
    pub insecure: bool,
    /// PEM client certificate chain for mutual TLS.
    pub cert_chain: Option<PathBuf>,
    /// PEM client private key for mutual TLS.
    pub private_key: Option<PathBuf>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The certificates of a PEM file, in order.
pub fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", path.display()))
}

/// The private key of a PEM file.
pub fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).with_context(|| format!("reading key {}", path.display()))
}

/// The CAs of a PEM bundle, or the system's roots when there is none.
/// The CAs of one PEM file.
fn ca_roots(ca: &Path) -> anyhow::Result<RootCertStore> {
    roots(&ClientTls {
        ca: Some(ca.to_path_buf()),
        ..ClientTls::default()
    })
}

/// The CAs a client trusts: `ca`, the files in `ca_dir`, else the system's.
fn roots(tls: &ClientTls) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let mut files: Vec<PathBuf> = tls.ca.iter().cloned().collect();
    if let Some(dir) = &tls.ca_dir {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| {
                path.extension()
                    .is_some_and(|ext| ext == "pem" || ext == "crt")
            })
            .collect();
        anyhow::ensure!(
            !found.is_empty(),
            "{} holds no .pem or .crt CA certificates",
            dir.display()
        );
        found.sort();
        files.extend(found);
    }
    if files.is_empty() {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
    }
    for file in &files {
        for cert in read_chain(file)? {
            roots
                .add(cert)
                .with_context(|| format!("adding a CA of {}", file.display()))?;
        }
    }
    Ok(roots)
}

/// A rustls server configuration; with `client_ca`, clients must present a
/// certificate it signed.
pub fn server_config(tls: &ServerTls) -> anyhow::Result<ServerConfig> {
    let chain = read_chain(&tls.cert_chain)?;
    let key = read_key(&tls.private_key)?;
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &tls.client_ca {
        Some(ca) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(Arc::new(ca_roots(ca)?), provider())
                .build()?,
        ),
        None => builder.with_no_client_auth(),
    };
    builder.with_single_cert(chain, key).map_err(|e| match e {
        tokio_rustls::rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
            "{} is not the key of the certificate {}",
            tls.private_key.display(),
            tls.cert_chain.display()
        ),
        e => anyhow::anyhow!(
            "server certificate {} and key {}: {e}",
            tls.cert_chain.display(),
            tls.private_key.display()
        ),
    })
}

/// A rustls client configuration: the CA bundle (or the system's roots),
/// and a client certificate when both its files are given.
pub fn client_config(tls: &ClientTls) -> anyhow::Result<ClientConfig> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = if tls.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider())))
    } else {
        builder.with_root_certificates(roots(tls)?)
    };
    match (&tls.cert_chain, &tls.private_key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(read_chain(cert)?, read_key(key)?)
            .context("client certificate and key"),
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => anyhow::bail!("a client certificate needs both its certificate and its key file"),
    }
}

/// The name a client checks the server's certificate for: a DNS name, or
/// an IP address checked against the certificate's IP addresses.
pub fn server_name(name: &str) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(name.trim_matches(['[', ']']).to_string())
        .map_err(|_| anyhow::anyhow!("`{name}` is not a valid TLS server name"))
}

/// `--insecure`: accepts any server certificate (testing only), still
/// checking the handshake's signatures.
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        tokio_rustls::rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        tokio_rustls::rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
