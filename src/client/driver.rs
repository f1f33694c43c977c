//! The background task of a client session: one loop per connection that
//! writes requests, matches acknowledgements to the requests waiting for
//! them, hands received messages over, and reconnects when allowed.
//!
//! When the broker keeps the session (`ClientOptions::keeps_session`), a
//! lost connection does not fail what is in flight: after the reconnect,
//! unacknowledged PUBLISH packets are sent again with their packet ids and
//! DUP set, PUBREL where PUBREC had arrived, as MQTT 3.1.1 §4.4 and 5.0
//! §4.4 require; pending (un)subscriptions are sent again too.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tracing::debug;

use super::acks::{self, Answer};
use super::handshake::{Connected, Credentials};
use super::inflight::Pending;
use super::link::Link;
use super::options::{Ack, ClientError, ClientOptions, Message, Reconnect};
use super::outgoing::encoded;
use super::packets;
use super::properties::{PublishProperties, SubscribeOptions};
use super::session::Request;
use crate::mqtt::{self, Packet};
use crate::net::connector::Endpoint;

/// Why a connection's loop ended.
enum End {
    /// The application disconnected or dropped every handle.
    Closed,
    /// The connection failed.
    Lost,
}

pub(super) struct Driver {
    pub(super) options: ClientOptions,
    pub(super) endpoint: Endpoint,
    pub(super) credentials: Credentials,
    pub(super) link: Link,
    pub(super) requests: mpsc::Receiver<Request>,
    pub(super) messages: mpsc::Sender<Message>,
    /// What the current connection's CONNACK granted, for the handles.
    pub(super) connected: watch::Sender<Connected>,
    pub(super) pending: HashMap<u16, Pending>,
    /// QoS 2 messages delivered, waiting for PUBREL (not delivered twice).
    pub(super) awaiting_pubrel: HashSet<u16>,
    /// Filters to restore after a reconnect without a session.
    pub(super) subscriptions: Vec<(String, SubscribeOptions)>,
    /// Topic aliases this connection has told the broker.
    pub(super) aliases_out: HashMap<u16, String>,
    /// Topic aliases the broker has told this connection.
    pub(super) aliases_in: HashMap<u16, String>,
    pub(super) next_id: u16,
    /// How many requests have gone out (orders what is resent).
    pub(super) sent: u64,
}

impl Driver {
    pub(super) async fn run(mut self) {
        loop {
            match self.serve_link().await {
                End::Closed => return,
                End::Lost => {
                    self.aliases_out.clear();
                    self.aliases_in.clear();
                    let policy = self.options.reconnect.clone();
                    if !self.options.keeps_session() || policy.is_none() {
                        self.awaiting_pubrel.clear();
                        for (_, pending) in self.pending.drain() {
                            pending.fail(|| ClientError::ConnectionLost);
                        }
                    }
                    let Some(policy) = policy else {
                        return;
                    };
                    if !self.reconnect(&policy).await {
                        for (_, pending) in self.pending.drain() {
                            pending.fail(|| ClientError::Closed);
                        }
                        return;
                    }
                }
            }
        }
    }

    /// Reconnects with exponential backoff and restores the session; false
    /// when every handle of the client was dropped.
    async fn reconnect(&mut self, policy: &Reconnect) -> bool {
        let mut wait = policy.initial_backoff;
        loop {
            tokio::time::sleep(wait).await;
            if self.requests.is_closed() {
                // Every handle is gone: nobody to reconnect for.
                return false;
            }
            let clean_start = !self.options.keeps_session();
            match Link::open(
                &self.endpoint,
                &self.options,
                &self.credentials,
                clean_start,
            )
            .await
            {
                Ok(link) => {
                    self.link = link;
                    self.connected.send_replace(self.link.connected.clone());
                    if self.restore().await.is_ok() {
                        debug!(
                            session_present = self.link.connected.session_present,
                            "reconnected"
                        );
                        return true;
                    }
                    debug!("connection lost while restoring the session");
                }
                Err(e) => debug!(error = %e, "reconnect failed"),
            }
            wait = (wait * 2).min(policy.max_backoff);
        }
    }

    fn next_sent(&mut self) -> u64 {
        self.sent += 1;
        self.sent
    }

    pub(super) fn allocate_id(&mut self) -> u16 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            if !self.pending.contains_key(&id) {
                return id;
            }
        }
    }

    /// The keep-alive in force: the broker's server keep alive, else ours.
    fn keep_alive(&self) -> Duration {
        self.link
            .connected
            .server_keep_alive
            .map_or(self.options.keep_alive, |s| Duration::from_secs(s.into()))
    }

    async fn serve_link(&mut self) -> End {
        let version = self.options.version;
        let keep_alive = self.keep_alive();
        let mut last_sent = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        let mut tick = tokio::time::interval((keep_alive / 2).max(Duration::from_millis(100)));
        loop {
            let can_send = self.pending.len() < self.link.max_in_flight;
            tokio::select! {
                request = self.requests.recv(), if can_send => {
                    let Some(request) = request else {
                        // Every handle dropped: leave politely.
                        let _ = self.link.write(&packets::disconnect(version)).await;
                        let _ = self.link.writer.shutdown().await;
                        return End::Closed;
                    };
                    last_sent = Instant::now();
                    match self.send_request(request).await {
                        Ok(true) => {}
                        Ok(false) => return End::Closed,
                        Err(_) => return End::Lost,
                    }
                }
                packet = self.link.read(version) => {
                    match packet {
                        Ok(Some(packet)) => {
                            ping_sent = None;
                            if let Err(e) = self.handle_incoming(packet).await {
                                debug!(error = %e, "connection ends");
                                return End::Lost;
                            }
                        }
                        Ok(None) | Err(_) => return End::Lost,
                    }
                }
                _ = tick.tick() => {
                    if let Some(sent) = ping_sent
                        && sent.elapsed() > keep_alive
                    {
                        debug!("no PINGRESP in time");
                        return End::Lost;
                    }
                    if !keep_alive.is_zero() && ping_sent.is_none() && last_sent.elapsed() >= keep_alive {
                        if self.link.write(&packets::pingreq(version)).await.is_err() {
                            return End::Lost;
                        }
                        last_sent = Instant::now();
                        ping_sent = Some(last_sent);
                    }
                }
            }
        }
    }

    /// Writes a request; `Ok(false)` after a DISCONNECT. A request that
    /// cannot be sent fails alone; an error ends the connection.
    async fn send_request(&mut self, request: Request) -> Result<bool, ClientError> {
        match request {
            Request::Publish {
                topic,
                payload,
                qos,
                retain,
                properties,
                done,
            } => {
                let id = if qos > 0 { self.allocate_id() } else { 0 };
                let bytes = match self.publish_bytes(&topic, payload, qos, retain, &properties, id)
                {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        done.send(Err(e));
                        return Ok(true);
                    }
                };
                if qos == 0 {
                    let written = self.link.write_bytes(&bytes).await;
                    done.send(match &written {
                        Ok(()) => Ok(Ack::default()),
                        Err(_) => Err(ClientError::ConnectionLost),
                    });
                    return written.map(|()| true);
                }
                // In flight from here on, even if this write fails: a kept
                // session sends it again after the reconnect.
                let resend = self.options.keeps_session().then(|| bytes.clone());
                let sent = self.next_sent();
                self.pending.insert(
                    id,
                    Pending::Publish {
                        sent,
                        qos,
                        done,
                        resend,
                        released: false,
                    },
                );
                self.link.write_bytes(&bytes).await?;
            }
            Request::Subscribe {
                filter,
                options,
                done,
            } => {
                let id = self.allocate_id();
                let packet = mqtt::check_topic_filter(&filter)
                    .map_err(ClientError::from)
                    .and_then(|()| {
                        Ok(packets::subscribe_with(
                            self.options.version,
                            id,
                            &filter,
                            &options,
                        )?)
                    });
                let bytes = match packet {
                    Ok(packet) => encoded(&packet),
                    Err(e) => {
                        done.send(Err(e));
                        return Ok(true);
                    }
                };
                self.subscriptions.retain(|(f, _)| f != &filter);
                self.subscriptions.push((filter, options));
                let sent = self.next_sent();
                self.pending.insert(
                    id,
                    Pending::Subscribe {
                        sent,
                        done,
                        resend: bytes.clone(),
                    },
                );
                self.link.write_bytes(&bytes).await?;
            }
            Request::Unsubscribe {
                filter,
                user_properties,
                done,
            } => {
                let id = self.allocate_id();
                let packet = mqtt::check_topic_filter(&filter)
                    .map_err(ClientError::from)
                    .and_then(|()| {
                        let version = self.options.version;
                        Ok(packets::unsubscribe(
                            version,
                            id,
                            &filter,
                            &user_properties,
                        )?)
                    });
                let bytes = match packet {
                    Ok(packet) => encoded(&packet),
                    Err(e) => {
                        done.send(Err(e));
                        return Ok(true);
                    }
                };
                self.subscriptions.retain(|(f, _)| f != &filter);
                let sent = self.next_sent();
                self.pending.insert(
                    id,
                    Pending::Unsubscribe {
                        sent,
                        done,
                        resend: bytes.clone(),
                    },
                );
                self.link.write_bytes(&bytes).await?;
            }
            Request::Disconnect { options, done } => {
                if self.options.session_expiry.is_zero()
                    && options.session_expiry.is_some_and(|s| s > 0)
                {
                    // MQTT 5.0 §3.14.2.2.2: a protocol error the broker
                    // would answer by dropping the connection.
                    let _ = done.send(Err(ClientError::Invalid(
                        "session expiry at DISCONNECT: the session was opened with \
                         an expiry of 0, which cannot be raised when leaving"
                            .into(),
                    )));
                    return Ok(true);
                }
                let packet = match packets::disconnect_with(self.options.version, &options) {
                    Ok(packet) => packet,
                    Err(e) => {
                        let _ = done.send(Err(e.into()));
                        return Ok(true);
                    }
                };
                let result = self.link.write(&packet).await;
                let _ = self.link.writer.shutdown().await;
                // Wait for the server to close its side too: then everything
                // written before DISCONNECT has arrived. Over QUIC, a process
                // exiting right after writing would lose what was not yet
                // acknowledged (a QoS 0 publish, the DISCONNECT itself).
                let linger = tokio::time::Instant::now() + self.options.close_timeout;
                while let Ok(Ok(Some(_))) =
                    tokio::time::timeout_at(linger, self.link.reader.next()).await
                {}
                for (_, pending) in self.pending.drain() {
                    pending.fail(|| ClientError::Closed);
                }
                let _ = done.send(result);
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn handle_incoming(&mut self, packet: Packet) -> Result<(), ClientError> {
        let version = self.options.version;
        if let Some(received) = packets::received(&packet) {
            let duplicate = received.qos == 2 && self.awaiting_pubrel.contains(&received.packet_id);
            let ack = packets::publish_ack(version, received.qos, received.packet_id)?;
            if received.qos == 2 {
                self.awaiting_pubrel.insert(received.packet_id);
            }
            if !duplicate {
                self.deliver(received).await?;
            }
            if let Some(ack) = ack {
                self.link.write(&ack).await?;
            }
            return Ok(());
        }
        match acks::answer(packet) {
            Answer::Publish { id, qos, ack } => self.complete_publish(id, qos, ack),
            Answer::Received { id, ack } => return self.pubrec(id, ack).await,
            Answer::Release { id } => {
                self.awaiting_pubrel.remove(&id);
                return self.link.write(&packets::pubcomp(version, id)?).await;
            }
            Answer::Subscribe { id, ack } | Answer::Unsubscribe { id, ack } => {
                self.complete(id, ack);
            }
            Answer::Pong => {}
            Answer::Disconnect { code, reason } => {
                debug!(code, reason, "broker sent DISCONNECT");
                return Err(ClientError::ConnectionLost);
            }
            Answer::Other(name) => debug!(packet = name, "unexpected packet ignored"),
        }
        Ok(())
    }

    async fn deliver(&mut self, received: packets::Received) -> Result<(), ClientError> {
        let properties = PublishProperties::from_list(&received.properties);
        let mut topic = received.topic;
        if let Some(alias) = properties.topic_alias {
            if alias == 0 || alias > self.options.topic_alias_maximum {
                return Err(ClientError::Protocol(format!(
                    "the broker used topic alias {alias}, above our maximum {}",
                    self.options.topic_alias_maximum
                )));
            }
            if topic.is_empty() {
                topic = self.aliases_in.get(&alias).cloned().ok_or_else(|| {
                    ClientError::Protocol(format!("the broker used unknown topic alias {alias}"))
                })?;
            } else {
                self.aliases_in.insert(alias, topic.clone());
            }
        } else if topic.is_empty() {
            return Err(ClientError::Protocol(
                "PUBLISH without topic or topic alias".into(),
            ));
        }
        let message = Message {
            topic,
            payload: Bytes::from(received.payload),
            qos: received.qos,
            retain: received.retain,
            duplicate: received.dup,
            packet_id: received.packet_id,
            properties,
        };
        // Waits while the application is behind: backpressure, not drops.
        // An application that dropped its receiver simply gets no messages.
        let _ = self.messages.send(message).await;
        Ok(())
    }
}
