//! The QUIC driver over real SCION: an in-process pocketscion network with
//! two ASes, the server in one, the client in the other.

use crate::common;

use std::time::Duration;

use common::bounded;
use mqttbridge::net::quic::{QuicLimits, QuicListener, client_config, dial, server_config};
use mqttbridge::net::tls::{ClientTls, ServerTls};
use mqttbridge::tools::certs;
use pocketscion::util::dev_auth_token;
use pocketscion::util::topologies::{
    IA132, IA212, PsSetup, UnderlayType, minimal::minimal_topology,
};
use scion_stack::stack::{ScionStack, ScionStackBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn stack(ps: &PsSetup, isd_as: sciparse::identifier::isd_asn::IsdAsn) -> ScionStack {
    ScionStackBuilder::new()
        .with_endhost_api(ps.endhost_api(isd_as).expect("endhost API"))
        .with_auth_token(dev_auth_token())
        .build()
        .await
        .expect("SCION stack")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_over_scion() {
    scion_sdk_utils::rustls::select_ring_crypto_provider();
    let ps = minimal_topology(UnderlayType::Snap).await;
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
    let limits = QuicLimits::default();

    let server_stack = stack(&ps, IA212).await;
    let server_socket = server_stack.bind(None).await.unwrap();
    let tls = ServerTls {
        cert_chain: certs.server_cert.clone(),
        private_key: certs.server_key.clone(),
        client_ca: None,
    };
    let mut listener = QuicListener::new(
        server_socket,
        server_config(&tls, &limits).unwrap(),
        10,
        4,
        Duration::from_secs(30),
    )
    .unwrap();
    let server_addr = listener.local_addr();
    let server = tokio::spawn(async move {
        let mut accepted = listener.accept().await.unwrap();
        let mut data = Vec::new();
        accepted.stream.read_to_end(&mut data).await.unwrap();
        accepted.stream.write_all(&data).await.unwrap();
        accepted.stream.shutdown().await.unwrap();
        (accepted.peer, listener)
    });

    let client_stack = stack(&ps, IA132).await;
    let client_socket = client_stack.bind(None).await.unwrap();
    let client_addr = client_socket.local_addr();
    let config = client_config(
        &ClientTls {
            ca: Some(certs.ca.clone()),
            ..ClientTls::default()
        },
        &limits,
        "localhost",
    )
    .unwrap();
    let stream = bounded(
        "dial over SCION",
        dial(client_socket, server_addr, config, Duration::from_secs(10)),
    )
    .await
    .expect("handshake over SCION");
    let (mut rd, mut wr) = tokio::io::split(stream);
    let sent: Vec<u8> = (0..1024 * 1024).map(|i| (i % 253) as u8).collect();
    let expected = sent.clone();
    tokio::spawn(async move {
        wr.write_all(&sent).await.unwrap();
        wr.shutdown().await.unwrap();
    });
    let mut echoed = Vec::new();
    bounded("echo over SCION", rd.read_to_end(&mut echoed))
        .await
        .unwrap();
    assert!(echoed == expected, "1 MiB back intact over SCION");
    let (peer, _listener) = bounded("server", server).await.unwrap();
    assert_eq!(peer.isd_asn(), IA132, "server sees the client's ISD-AS");
    assert_eq!(peer, client_addr);
}
