//! What a QUIC client needs to reach a proxy under test: trust in the
//! test certificates, and for SCION a stack of its own in IA132, as a
//! client process of its own would have.

use mqttbridge::net::connector::TransportOptions;
use mqttbridge::net::tls::ClientTls;
use mqttbridge::tools::certs::Certificates;
use pocketscion::util::dev_auth_token;
use pocketscion::util::topologies::{IA132, PsSetup};

/// How a client reaches a proxy serving `certs`: checked against their CA,
/// over a SCION stack of its own in IA132 when `ps` is given.
pub async fn quic_client_options(ps: Option<&PsSetup>, certs: &Certificates) -> TransportOptions {
    TransportOptions {
        tls: ClientTls {
            ca: Some(certs.ca.clone()),
            ..ClientTls::default()
        },
        server_name: Some("localhost".into()),
        scion_stack: match ps {
            Some(ps) => Some(std::sync::Arc::new(
                mqttbridge::net::scion::build_stack(
                    ps.endhost_api(IA132).unwrap(),
                    Some(dev_auth_token()),
                )
                .await
                .expect("client SCION stack"),
            )),
            None => None,
        },
        ..TransportOptions::default()
    }
}
