//! The r-proxy's own gRPC client against tonic's server (hyper's HTTP/2),
//! the server the seed system's s-proxy runs. Between our r-proxy and our
//! s-proxy sits a relay made of tonic alone: a generated
//! `MqttRelayService` server that hands each stream, with its metadata both
//! ways, to the s-proxy through tonic's client. MQTT goes through at every
//! QoS level in both versions, and sessions end as promptly as without the
//! relay: the r-proxy reads the end of each call (trailers) from hyper.

use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status, Streaming};

use crate::common;
use crate::grpc_line::assert_every_qos_level;
use common::*;
use mqttbridge::line::proto::mqtt::MqttStreamMessage;
use mqttbridge::line::proto::mqtt::mqtt_relay_service_client::MqttRelayServiceClient;
use mqttbridge::line::proto::mqtt::mqtt_relay_service_server::{
    MqttRelayService, MqttRelayServiceServer,
};
use mqttbridge::mqtt::Version;
use mqttbridge::tools::mosquitto::Mosquitto;

type Envelopes = Pin<Box<dyn Stream<Item = Result<MqttStreamMessage, Status>> + Send>>;

/// Passes each call on to the s-proxy behind it, unchanged.
struct TonicRelay {
    s_proxy: Channel,
}

#[tonic::async_trait]
impl MqttRelayService for TonicRelay {
    type StreamMqttMessagesStream = Envelopes;

    async fn stream_mqtt_messages(
        &self,
        request: Request<Streaming<MqttStreamMessage>>,
    ) -> Result<Response<Envelopes>, Status> {
        let (metadata, _, inbound) = request.into_parts();
        // The r-proxy's half-close ends the call towards the s-proxy too.
        let inbound = inbound.take_while(|m| std::future::ready(m.is_ok()));
        let mut onward = Request::new(inbound.filter_map(|m| std::future::ready(m.ok())));
        *onward.metadata_mut() = metadata;
        let answer = MqttRelayServiceClient::new(self.s_proxy.clone())
            .stream_mqtt_messages(onward)
            .await?;
        let (metadata, outbound, _) = answer.into_parts();
        let mut reply = Response::new(Box::pin(outbound) as Envelopes);
        *reply.metadata_mut() = metadata;
        Ok(reply)
    }
}

/// mosquitto, our s-proxy, the tonic relay, our r-proxy.
struct ThroughTonic {
    chain: Chain,
    _relay: tokio::task::JoinHandle<()>,
}

impl ThroughTonic {
    /// The line with the relay between the proxies; the r-proxy waits up to
    /// `drain` for the end of a session to be confirmed. With `resumable`
    /// false the s-proxy grants no resumption, as the seed's does not: a
    /// session's end is then the end of its call alone (trailers), with no
    /// TERMINATE envelope before it.
    async fn start(resumable: bool, drain: Duration) -> ThroughTonic {
        let broker = Mosquitto::start("max_queued_messages 0")
            .await
            .expect("mosquitto starts (apt-get install mosquitto)");
        let s_proxy = start_s_proxy(&broker.addr().to_string(), |c| c.no_resume = !resumable).await;
        let s_channel = Endpoint::from_shared(format!("http://{}", s_proxy.addr))
            .unwrap()
            .connect_lazy();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_addr = listener.local_addr().unwrap();
        let relay = tokio::spawn(async move {
            Server::builder()
                .add_service(MqttRelayServiceServer::new(TonicRelay {
                    s_proxy: s_channel,
                }))
                .serve_with_incoming(TcpIncoming::from(listener))
                .await
                .expect("the tonic relay serves");
        });
        let r_proxy = start_r_proxy(&[format!("http://{relay_addr}")], |c| {
            c.drain_timeout_ms = drain.as_millis().to_string().parse().unwrap();
        })
        .await;
        ThroughTonic {
            chain: Chain {
                broker,
                s_proxy,
                r_proxy,
            },
            _relay: relay,
        }
    }
}

#[tokio::test]
async fn every_qos_level_through_tonic_s_server_and_sessions_end_promptly() {
    for resumable in [true, false] {
        // An end the relay did not pass on would hold each session for the
        // whole drain time, longer than `wait_idle` waits.
        let mut line = ThroughTonic::start(resumable, WAIT * 2).await;
        for version in [Version::V3_1_1, Version::V5] {
            assert_every_qos_level(&line.chain.r_proxy.addr, version).await;
            line.chain.wait_idle().await;
        }
    }
}
