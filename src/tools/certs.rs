//! Generates a private CA with a server and a client certificate (PEM files),
//! for the demo, the tests and trying mutual TLS without outside tools.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// The PEM files of a generated CA, server and client.
#[derive(Debug, Clone)]
pub struct Certificates {
    /// The CA certificate both sides trust.
    pub ca: PathBuf,
    /// Server certificate (for `server_names`) and key.
    pub server_cert: PathBuf,
    /// Server private key.
    pub server_key: PathBuf,
    /// Client certificate and key, for mutual TLS.
    pub client_cert: PathBuf,
    /// Client private key.
    pub client_key: PathBuf,
}

/// Writes a fresh CA, a server certificate valid for `server_names` and a
/// client certificate into `dir`.
pub fn generate(dir: &Path, server_names: &[&str]) -> anyhow::Result<Certificates> {
    Ok(generate_with_clients(dir, server_names, &[])?.0)
}

/// [`generate`], and one more client certificate from the same CA for each
/// of `clients` (`client-NAME.pem` and `.key`; returned in that order): peers
/// that the CA equally admits but that are not the same.
pub fn generate_with_clients(
    dir: &Path,
    server_names: &[&str],
    clients: &[&str],
) -> anyhow::Result<(Certificates, Vec<(PathBuf, PathBuf)>)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mqttbridge development CA");
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let names: Vec<String> = server_names.iter().map(|s| s.to_string()).collect();
    let mut server_params = CertificateParams::new(names)?;
    server_params.distinguished_name.push(
        DnType::CommonName,
        server_names.first().copied().unwrap_or("server"),
    );
    let server_key = KeyPair::generate()?;
    let server_cert = server_params.signed_by(&server_key, &issuer)?;

    let mut client_params = CertificateParams::new(vec!["mqttbridge-client".to_string()])?;
    client_params
        .distinguished_name
        .push(DnType::CommonName, "mqttbridge client");
    let client_key = KeyPair::generate()?;
    let client_cert = client_params.signed_by(&client_key, &issuer)?;

    let write = |name: &str, pem: String| -> anyhow::Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    let mut extra = Vec::new();
    for name in clients {
        let mut params = CertificateParams::new(vec![name.to_string()])?;
        params.distinguished_name.push(DnType::CommonName, *name);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        extra.push((
            write(&format!("client-{name}.pem"), cert.pem())?,
            write(&format!("client-{name}.key"), key.serialize_pem())?,
        ));
    }
    let certificates = Certificates {
        ca: write("ca.pem", ca_cert.pem())?,
        server_cert: write("server.pem", server_cert.pem())?,
        server_key: write("server.key", server_key.serialize_pem())?,
        client_cert: write("client.pem", client_cert.pem())?,
        client_key: write("client.key", client_key.serialize_pem())?,
    };
    Ok((certificates, extra))
}

/// Flags of `certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write ca.pem, server.pem/.key and client.pem/.key into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Names the server certificate is valid for (repeatable).
    #[arg(long = "name", default_value = "localhost")]
    pub names: Vec<String>,
}

/// `certs`: writes the files and prints their paths.
pub fn run(args: &CertsArgs) -> anyhow::Result<()> {
    let names: Vec<&str> = args.names.iter().map(String::as_str).collect();
    let certs = generate(&args.out, &names)?;
    for path in [
        &certs.ca,
        &certs.server_cert,
        &certs.server_key,
        &certs.client_cert,
        &certs.client_key,
    ] {
        println!("{}", path.display());
    }
    Ok(())
}
