//! The gRPC hop made safe to expose: TLS with server verification, mutual
//! TLS, bearer tokens, and no plaintext unauthenticated s-proxy on a
//! non-loopback address unless `insecure = true`.

use crate::common;

use common::*;
use mqttbridge::client::{Connection, exchange, packets};
use mqttbridge::mqtt::Version;
use mqttbridge::service::Service;
use mqttbridge::service::s_proxy::SProxy;
use mqttbridge::service::s_proxy::SProxyConfig;
use mqttbridge::tools::certs::{self, Certificates};
use mqttbridge::tools::mosquitto::Mosquitto;

fn pki() -> (tempfile::TempDir, Certificates) {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::generate(dir.path(), &["localhost"]).unwrap();
    (dir, certs)
}

/// The CONNACK code a v5 client gets through `r_proxy`.
async fn connack(r_proxy: &str) -> u8 {
    let mut conn = Connection::open(r_proxy, Version::V5).await.unwrap();
    bounded(
        "CONNACK",
        exchange::connect(
            &mut conn,
            &packets::connect(Version::V5, "sec", true, 30).unwrap(),
        ),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn mutual_tls_lets_the_right_r_proxy_in_only() {
    let broker = Mosquitto::start("").await.unwrap();
    let (_dir, certs) = pki();
    let (_other_dir, other) = pki();
    let s_proxy = start_s_proxy(&broker.addr().to_string(), |c| {
        c.tls_cert = Some(certs.server_cert.clone());
        c.tls_key = Some(certs.server_key.clone());
        c.client_ca = Some(certs.ca.clone());
    })
    .await;
    let url = format!("https://localhost:{}", s_proxy.addr.port());

    // Right CA, right client certificate: through.
    let good = start_r_proxy(std::slice::from_ref(&url), |c| {
        c.upstream_ca = Some(certs.ca.clone());
        c.upstream_cert = Some(certs.client_cert.clone());
        c.upstream_key = Some(certs.client_key.clone());
    })
    .await;
    let mut client = connected(&good.addr, Version::V5, "tls-ok").await;
    bounded(
        "suback over TLS",
        exchange::subscribe(&mut client, 1, "tls", 1),
    )
    .await
    .unwrap();

    // No client certificate: the s-proxy refuses the TLS handshake.
    let no_cert = start_r_proxy(std::slice::from_ref(&url), |c| {
        c.upstream_ca = Some(certs.ca.clone());
    })
    .await;
    assert_eq!(connack(&no_cert.addr).await, 0x88);

    // A client certificate from another CA: refused too.
    let wrong_cert = start_r_proxy(std::slice::from_ref(&url), |c| {
        c.upstream_ca = Some(certs.ca.clone());
        c.upstream_cert = Some(other.client_cert.clone());
        c.upstream_key = Some(other.client_key.clone());
    })
    .await;
    assert_eq!(connack(&wrong_cert.addr).await, 0x88);

    // The r-proxy does not trust the s-proxy's certificate: it refuses.
    let untrusting = start_r_proxy(&[url], |c| {
        c.upstream_ca = Some(other.ca.clone());
        c.upstream_cert = Some(certs.client_cert.clone());
        c.upstream_key = Some(certs.client_key.clone());
    })
    .await;
    assert_eq!(connack(&untrusting.addr).await, 0x88);
}

#[tokio::test]
async fn bearer_token_is_required_when_configured() {
    let broker = Mosquitto::start("").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let accepted = dir.path().join("tokens");
    std::fs::write(
        &accepted,
        "# r-proxies allowed in\nedge-site-1-secret\nedge-site-2-secret\n",
    )
    .unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "guess\n").unwrap();
    let own = dir.path().join("own");
    std::fs::write(&own, "edge-site-2-secret\n").unwrap();

    let s_proxy = start_s_proxy(&broker.addr().to_string(), |c| {
        c.auth_token_file = Some(accepted.clone());
    })
    .await;
    let url = format!("http://{}", s_proxy.addr);
    let with_token = start_r_proxy(std::slice::from_ref(&url), |c| {
        c.auth_token_file = Some(own.clone())
    })
    .await;
    assert_eq!(connack(&with_token.addr).await, 0);
    let with_wrong = start_r_proxy(std::slice::from_ref(&url), |c| {
        c.auth_token_file = Some(wrong.clone())
    })
    .await;
    assert_eq!(connack(&with_wrong.addr).await, 0x88);
    let without = start_r_proxy(&[url], |_| {}).await;
    assert_eq!(connack(&without.addr).await, 0x88);
}

#[tokio::test]
async fn no_open_relay_on_a_public_address() {
    let plain = |listen: &str| SProxyConfig {
        listen: listen.parse().unwrap(),
        ..SProxyConfig::default()
    };
    let err = SProxy::bind(plain("0.0.0.0:0"))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("without authentication") && err.contains("insecure"),
        "{err}"
    );
    assert!(
        SProxy::bind(plain("127.0.0.1:0")).await.is_ok(),
        "loopback is fine"
    );
    assert!(
        SProxy::bind(SProxyConfig {
            insecure: true,
            ..plain("0.0.0.0:0")
        })
        .await
        .is_ok(),
        "insecure = true opts in"
    );
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "t\n").unwrap();
    assert!(
        SProxy::bind(SProxyConfig {
            auth_token_file: Some(tokens),
            ..plain("0.0.0.0:0")
        })
        .await
        .is_ok(),
        "a token makes it authenticated"
    );
}
