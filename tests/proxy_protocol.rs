//! With `proxy_protocol = true`, the broker connection starts with a PROXY
//! v2 header naming the MQTT client's address, carried from r-proxy to
//! s-proxy in gRPC metadata.

use crate::common;

use common::*;
use mqttbridge::client::{Connection, packets};
use mqttbridge::mqtt::Version;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn broker_sees_the_client_address_in_a_proxy_v2_header() {
    // A test listener in place of the broker, to read what arrives first.
    let broker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let broker_addr = broker.local_addr().unwrap();
    let s_proxy = start_s_proxy(&broker_addr.to_string(), |c| c.proxy_protocol = true).await;
    let r_proxy = start_r_proxy(&[format!("http://{}", s_proxy.addr)], |_| {}).await;

    let client = tokio::net::TcpStream::connect(&r_proxy.addr).await.unwrap();
    let client_addr = client.local_addr().unwrap();
    let mut conn = Connection::over(Box::new(client), Version::V5);
    conn.send(&packets::connect(Version::V5, "proxied", true, 30).unwrap())
        .await
        .unwrap();

    let mut seen = accept_past_probes(&broker).await;
    let mut header = [0u8; 28];
    bounded("PROXY header", seen.read_exact(&mut header))
        .await
        .unwrap();
    assert_eq!(&header[..12], b"\r\n\r\n\0\r\nQUIT\n", "PROXY v2 signature");
    assert_eq!(header[12], 0x21, "version 2, PROXY");
    assert_eq!(header[13], 0x11, "TCP over IPv4");
    assert_eq!(&header[16..20], &[127, 0, 0, 1]);
    assert_eq!(
        u16::from_be_bytes([header[24], header[25]]),
        client_addr.port(),
        "client port"
    );
    assert_eq!(
        u16::from_be_bytes([header[26], header[27]]),
        broker_addr.port(),
        "broker port"
    );
    let mut first = [0u8; 1];
    seen.read_exact(&mut first).await.unwrap();
    assert_eq!(first[0], 0x10, "then the client's CONNECT");
}
