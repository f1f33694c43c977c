//! An upstream host name with several addresses (a Kubernetes headless
//! Service, DNS round robin): the r-proxy balances across every address,
//! resolves the name again, and keeps open sessions where they are when an
//! address goes. Real name resolution: the processes run in a network
//! namespace whose `/etc/hosts` lists two s-proxies under one name, on
//! 127.0.0.1 and 127.0.0.2; the broker runs on this host.

use crate::common;

use common::*;
use mqttbridge::client::exchange;
use mqttbridge::tools::mosquitto::Mosquitto;

const NAME: &str = "s-proxies.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_with_two_addresses_is_two_s_proxies() {
    let netns = Netns::create();
    netns.set_hosts(&format!(
        "127.0.0.1 localhost\n127.0.0.1 {NAME}\n127.0.0.2 {NAME}\n"
    ));
    let inside = Dialer::Netns(netns.name.clone());
    let broker_port = free_port();
    let broker = Mosquitto::start(&format!("listener {broker_port} {}", netns.host_ip))
        .await
        .unwrap();
    let broker_addr = format!("{}:{broker_port}", netns.host_ip);
    let port = free_port();
    let mut s_proxies = Vec::new();
    for ip in ["127.0.0.1", "127.0.0.2"] {
        let listen = format!("{ip}:{port}");
        let args = ["s-proxy", "--listen", &listen, "--broker", &broker_addr];
        s_proxies.push(ModeProcess::start_in(inside.clone(), &args).await);
    }
    let r_listen = format!("127.0.0.1:{}", free_port());
    let upstream = format!("http://{NAME}:{port}");
    let r_proxy = ModeProcess::start_in(
        inside.clone(),
        &[
            "r-proxy",
            "--listen",
            &r_listen,
            "--upstream",
            &upstream,
            "--upstream-resolve-ms",
            "200",
            "--upstream-probe-ms",
            "200",
        ],
    )
    .await;
    let opened = "mqttbridge_sessions_opened_total{mode=\"s-proxy\"}";
    let mut clients = Vec::new();
    for i in 0..4 {
        clients.push(connected_via(&inside, &r_listen, &format!("spread-{i}")).await);
    }
    for s_proxy in &s_proxies {
        assert_eq!(
            s_proxy.metric(opened).await,
            2.0,
            "two sessions on each address"
        );
    }

    // The name drops 127.0.0.1: new sessions all go to 127.0.0.2, the two
    // on 127.0.0.1 carry on.
    netns.set_hosts(&format!("127.0.0.1 localhost\n127.0.0.2 {NAME}\n"));
    r_proxy.log_field("s-proxy address removed", "addr").await;
    for i in 0..2 {
        clients.push(connected_via(&inside, &r_listen, &format!("later-{i}")).await);
    }
    assert_eq!(s_proxies[0].metric(opened).await, 2.0);
    assert_eq!(s_proxies[1].metric(opened).await, 4.0);
    let active = "mqttbridge_sessions_active{mode=\"s-proxy\"}";
    assert_eq!(
        s_proxies[0].metric(active).await,
        2.0,
        "the sessions on the dropped address stay"
    );
    for (i, conn) in clients.iter_mut().enumerate() {
        let id = u16::try_from(i + 1).unwrap();
        bounded(
            "publish",
            exchange::publish(conn, "still/here", "x", 1, false, id, vec![]),
        )
        .await
        .unwrap();
    }
    drop(broker);
}
