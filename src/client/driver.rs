//! The background task of a client session: one loop per connection that
//! writes requests, matches acknowledgements to the requests waiting for
//! them, hands received messages over, and reconnects when allowed.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use super::packets;
use crate::mqtt::{Packet, Version, packet_type_name};
use crate::net::connector::Endpoint;

use super::link::Link;
use super::options::{ClientError, ClientOptions, Message, Reconnect};
use super::session::Request;

/// A request waiting for the broker's answer.
pub(super) enum Pending {
    Publish {
        qos: u8,
        done: oneshot::Sender<Result<(), ClientError>>,
    },
    Subscribe {
        done: oneshot::Sender<Result<u8, ClientError>>,
    },
    Unsubscribe {
        done: oneshot::Sender<Result<(), ClientError>>,
    },
}

impl Pending {
    pub(super) fn fail(self, error: fn() -> ClientError) {
        match self {
            Pending::Publish { done, .. } => drop(done.send(Err(error()))),
            Pending::Subscribe { done } => drop(done.send(Err(error()))),
            Pending::Unsubscribe { done } => drop(done.send(Err(error()))),
        }
    }
}

/// Why a connection's loop ended.
pub(super) enum End {
    /// The application disconnected or dropped every handle.
    Closed,
    /// The connection failed.
    Lost,
}

pub(super) struct Driver {
    pub(super) options: ClientOptions,
    pub(super) endpoint: Endpoint,
    pub(super) link: Link,
    pub(super) requests: mpsc::Receiver<Request>,
    pub(super) messages: mpsc::Sender<Message>,
    pub(super) pending: HashMap<u16, Pending>,
    /// QoS 2 messages delivered, waiting for PUBREL (not delivered twice).
    pub(super) awaiting_pubrel: HashSet<u16>,
    /// Filters to restore after a reconnect without a session.
    pub(super) subscriptions: Vec<(String, u8)>,
    pub(super) next_id: u16,
}

impl Driver {
    pub(super) async fn run(mut self) {
        loop {
            match self.serve_link().await {
                End::Closed => return,
                End::Lost => {
                    for (_, pending) in self.pending.drain() {
                        pending.fail(|| ClientError::ConnectionLost);
                    }
                    let Some(reconnect) = self.options.reconnect.clone() else {
                        return;
                    };
                    if !self.reconnect(&reconnect).await {
                        return;
                    }
                }
            }
        }
    }

    /// Reconnects with exponential backoff; false when the application is gone.
    pub(super) async fn reconnect(&mut self, policy: &Reconnect) -> bool {
        let mut wait = policy.initial_backoff;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.messages.closed() => return false,
            }
            match Link::open(&self.endpoint, &self.options).await {
                Ok(link) => {
                    self.link = link;
                    if !self.link.session_present {
                        let subscriptions = self.subscriptions.clone();
                        for (filter, qos) in subscriptions {
                            let id = self.allocate_id();
                            let Ok(packet) =
                                packets::subscribe(self.options.version, id, &filter, qos)
                            else {
                                continue;
                            };
                            if self.link.write(&packet).await.is_err() {
                                break;
                            }
                        }
                    }
                    debug!("reconnected");
                    return true;
                }
                Err(e) => {
                    debug!(error = %e, "reconnect failed");
                    wait = (wait * 2).min(policy.max_backoff);
                }
            }
        }
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

    pub(super) async fn serve_link(&mut self) -> End {
        let version = self.options.version;
        let keep_alive = self.options.keep_alive;
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
                            if self.handle_incoming(packet).await.is_err() {
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
                        let ping = match version {
                            Version::V3_1_1 => Packet::V3_1_1Pingreq(mqtt_protocol_core::mqtt::packet::v3_1_1::Pingreq::new()),
                            Version::V5 => Packet::V5_0Pingreq(mqtt_protocol_core::mqtt::packet::v5_0::Pingreq::new()),
                        };
                        if self.link.write(&ping).await.is_err() {
                            return End::Lost;
                        }
                        last_sent = Instant::now();
                        ping_sent = Some(last_sent);
                    }
                }
            }
        }
    }

    /// Writes a request; `Ok(false)` after a DISCONNECT.
    pub(super) async fn send_request(&mut self, request: Request) -> Result<bool, ClientError> {
        let version = self.options.version;
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
                let packet =
                    match packets::publish(version, &topic, payload, qos, retain, id, properties) {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = done.send(Err(e.into()));
                            return Ok(true);
                        }
                    };
                self.link.write(&packet).await?;
                if qos == 0 {
                    let _ = done.send(Ok(()));
                } else {
                    self.pending.insert(id, Pending::Publish { qos, done });
                }
            }
            Request::Subscribe { filter, qos, done } => {
                let id = self.allocate_id();
                let packet = match packets::subscribe(version, id, &filter, qos) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = done.send(Err(e.into()));
                        return Ok(true);
                    }
                };
                self.link.write(&packet).await?;
                self.subscriptions.retain(|(f, _)| f != &filter);
                self.subscriptions.push((filter, qos));
                self.pending.insert(id, Pending::Subscribe { done });
            }
            Request::Unsubscribe { filter, done } => {
                let id = self.allocate_id();
                let packet = match packets::unsubscribe(version, id, &filter) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = done.send(Err(e.into()));
                        return Ok(true);
                    }
                };
                self.link.write(&packet).await?;
                self.subscriptions.retain(|(f, _)| f != &filter);
                self.pending.insert(id, Pending::Unsubscribe { done });
            }
            Request::Disconnect { done } => {
                let result = self.link.write(&packets::disconnect(version)).await;
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

    pub(super) async fn handle_incoming(&mut self, packet: Packet) -> Result<(), ClientError> {
        let version = self.options.version;
        if let Some(received) = packets::received(&packet) {
            let duplicate = received.qos == 2 && self.awaiting_pubrel.contains(&received.packet_id);
            if let Some(ack) = packets::publish_ack(version, received.qos, received.packet_id)? {
                if received.qos == 2 {
                    self.awaiting_pubrel.insert(received.packet_id);
                }
                if !duplicate {
                    self.deliver(received).await?;
                }
                return self.link.write(&ack).await;
            }
            return self.deliver(received).await;
        }
        match packet {
            Packet::V3_1_1Puback(p) => self.complete_publish(p.packet_id(), 1, 0),
            Packet::V5_0Puback(p) => {
                self.complete_publish(p.packet_id(), 1, p.reason_code().map_or(0, |c| c as u8))
            }
            Packet::V3_1_1Pubrec(p) => return self.pubrec(p.packet_id(), 0).await,
            Packet::V5_0Pubrec(p) => {
                return self
                    .pubrec(p.packet_id(), p.reason_code().map_or(0, |c| c as u8))
                    .await;
            }
            Packet::V3_1_1Pubcomp(p) => self.complete_publish(p.packet_id(), 2, 0),
            Packet::V5_0Pubcomp(p) => {
                self.complete_publish(p.packet_id(), 2, p.reason_code().map_or(0, |c| c as u8))
            }
            Packet::V3_1_1Pubrel(p) => {
                self.awaiting_pubrel.remove(&p.packet_id());
                return self
                    .link
                    .write(&packets::pubcomp(version, p.packet_id())?)
                    .await;
            }
            Packet::V5_0Pubrel(p) => {
                self.awaiting_pubrel.remove(&p.packet_id());
                return self
                    .link
                    .write(&packets::pubcomp(version, p.packet_id())?)
                    .await;
            }
            Packet::V3_1_1Suback(s) => {
                let code = s.return_codes().first().map_or(0x80, |c| *c as u8);
                self.complete_subscribe(s.packet_id(), code);
            }
            Packet::V5_0Suback(s) => {
                let code = s.reason_codes().first().map_or(0x80, |c| *c as u8);
                self.complete_subscribe(s.packet_id(), code);
            }
            Packet::V3_1_1Unsuback(u) => self.complete_unsubscribe(u.packet_id(), 0),
            Packet::V5_0Unsuback(u) => {
                let code = u.reason_codes().first().map_or(0, |c| *c as u8);
                self.complete_unsubscribe(u.packet_id(), code);
            }
            Packet::V3_1_1Pingresp(_) | Packet::V5_0Pingresp(_) => {}
            Packet::V5_0Disconnect(d) => {
                debug!(reason = ?d.reason_code(), "broker sent DISCONNECT");
                return Err(ClientError::ConnectionLost);
            }
            other => debug!(
                packet = packet_type_name(&other),
                "unexpected packet ignored"
            ),
        }
        Ok(())
    }

    pub(super) async fn deliver(&mut self, received: packets::Received) -> Result<(), ClientError> {
        let message = Message {
            topic: received.topic,
            payload: Bytes::from(received.payload),
            qos: received.qos,
            retain: received.retain,
            properties: received.properties,
        };
        // Waits while the application is behind: backpressure, not drops.
        // An application that dropped its receiver simply gets no messages.
        let _ = self.messages.send(message).await;
        Ok(())
    }

    pub(super) async fn pubrec(&mut self, id: u16, code: u8) -> Result<(), ClientError> {
        if code >= 0x80 {
            self.complete_publish(id, 2, code);
            return Ok(());
        }
        self.link
            .write(&packets::pubrel(self.options.version, id)?)
            .await
    }

    pub(super) fn complete_publish(&mut self, id: u16, expected_qos: u8, code: u8) {
        if let Some(Pending::Publish { qos, done }) = self.pending.remove(&id) {
            let result = if qos != expected_qos {
                Err(ClientError::Protocol(format!(
                    "acknowledgement for QoS {expected_qos}, message was QoS {qos}"
                )))
            } else if code >= 0x80 {
                Err(ClientError::Rejected(code))
            } else {
                Ok(())
            };
            let _ = done.send(result);
        }
    }

    pub(super) fn complete_subscribe(&mut self, id: u16, code: u8) {
        if let Some(Pending::Subscribe { done }) = self.pending.remove(&id) {
            let _ = done.send(if code >= 0x80 {
                Err(ClientError::Rejected(code))
            } else {
                Ok(code)
            });
        }
    }

    pub(super) fn complete_unsubscribe(&mut self, id: u16, code: u8) {
        if let Some(Pending::Unsubscribe { done }) = self.pending.remove(&id) {
            let _ = done.send(if code >= 0x80 {
                Err(ClientError::Rejected(code))
            } else {
                Ok(())
            });
        }
    }
}
