//! The usual exchanges on a [`Connection`]: connecting, subscribing,
//! publishing with the acknowledgements each QoS needs, and receiving while
//! acknowledging. Deliberately simple (one request at a time); the full
//! client library builds on the same connection.

use anyhow::{Context, bail};
use mqtt_protocol_core::mqtt::packet::Property;

use super::Connection;
use super::packets::{self, Received};
use crate::mqtt::{Packet, packet_type_name};

/// Sends CONNECT and returns the CONNACK's return/reason code.
pub async fn connect(conn: &mut Connection, connect: &Packet) -> anyhow::Result<u8> {
    conn.send(connect).await?;
    match conn.recv().await?.context("closed before CONNACK")? {
        Packet::V3_1_1Connack(c) => Ok(c.return_code() as u8),
        Packet::V5_0Connack(c) => Ok(c.reason_code() as u8),
        other => bail!("expected CONNACK, got {}", packet_type_name(&other)),
    }
}

/// Subscribes to one filter and returns the granted code from SUBACK.
pub async fn subscribe(
    conn: &mut Connection,
    packet_id: u16,
    filter: &str,
    level: u8,
) -> anyhow::Result<u8> {
    conn.send(&packets::subscribe(
        conn.version(),
        packet_id,
        filter,
        level,
    )?)
    .await?;
    match conn.recv().await?.context("closed before SUBACK")? {
        Packet::V3_1_1Suback(s) => Ok(s.return_codes().first().map_or(0x80, |c| *c as u8)),
        Packet::V5_0Suback(s) => Ok(s.reason_codes().first().map_or(0x80, |c| *c as u8)),
        other => bail!("expected SUBACK, got {}", packet_type_name(&other)),
    }
}

/// Publishes and completes the QoS flow: PUBACK for 1, PUBREC/PUBREL/
/// PUBCOMP for 2. The connection must not be receiving other traffic.
pub async fn publish(
    conn: &mut Connection,
    topic: &str,
    payload: impl Into<Vec<u8>>,
    level: u8,
    retain: bool,
    packet_id: u16,
    properties: Vec<Property>,
) -> anyhow::Result<()> {
    let version = conn.version();
    conn.send(&packets::publish(
        version, topic, payload, level, retain, packet_id, properties,
    )?)
    .await?;
    match level {
        0 => Ok(()),
        1 => match conn.recv().await?.context("closed before PUBACK")? {
            Packet::V3_1_1Puback(_) => Ok(()),
            Packet::V5_0Puback(p) => match p.reason_code() {
                Some(code) if (code as u8) >= 0x80 => bail!("PUBACK refused: {code:?}"),
                _ => Ok(()),
            },
            other => bail!("expected PUBACK, got {}", packet_type_name(&other)),
        },
        _ => {
            match conn.recv().await?.context("closed before PUBREC")? {
                Packet::V3_1_1Pubrec(_) | Packet::V5_0Pubrec(_) => {}
                other => bail!("expected PUBREC, got {}", packet_type_name(&other)),
            }
            conn.send(&packets::pubrel(version, packet_id)?).await?;
            match conn.recv().await?.context("closed before PUBCOMP")? {
                Packet::V3_1_1Pubcomp(_) | Packet::V5_0Pubcomp(_) => Ok(()),
                other => bail!("expected PUBCOMP, got {}", packet_type_name(&other)),
            }
        }
    }
}

/// The next application message, acknowledging it (and completing QoS 2
/// handshakes) on the way. `Ok(None)` when the connection closed; other
/// packets from the broker are returned as errors naming them.
pub async fn receive(conn: &mut Connection) -> anyhow::Result<Option<Received>> {
    let version = conn.version();
    loop {
        let Some(packet) = conn.recv().await? else {
            return Ok(None);
        };
        if let Some(message) = packets::received(&packet) {
            if let Some(ack) = packets::publish_ack(version, message.qos, message.packet_id)? {
                conn.send(&ack).await?;
            }
            return Ok(Some(message));
        }
        match packet {
            Packet::V3_1_1Pubrel(p) => {
                conn.send(&packets::pubcomp(version, p.packet_id())?)
                    .await?
            }
            Packet::V5_0Pubrel(p) => {
                conn.send(&packets::pubcomp(version, p.packet_id())?)
                    .await?
            }
            other => bail!("unexpected {}", packet_type_name(&other)),
        }
    }
}
