//! The PUBLISH a session sends: checked against the topic rules and what
//! the broker granted (maximum QoS, retain, topic aliases, packet size),
//! with the topic replaced by its alias once the broker knows it.

use bytes::Bytes;

use super::driver::Driver;
use super::options::ClientError;
use super::packets;
use super::properties::{PublishProperties, topic_alias};
use crate::mqtt::{self, Packet, Version};

impl Driver {
    /// The encoded PUBLISH, checked against the topic rules and what the
    /// broker granted (maximum QoS, retain, topic aliases, packet size).
    pub(super) fn publish_bytes(
        &mut self,
        topic: &str,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
        properties: &PublishProperties,
        id: u16,
    ) -> Result<Bytes, ClientError> {
        mqtt::check_topic_name(topic)?;
        let granted = &self.link.connected;
        if qos > granted.maximum_qos {
            return Err(ClientError::Invalid(format!(
                "QoS {qos}: the broker takes QoS up to {}",
                granted.maximum_qos
            )));
        }
        if retain && !granted.retain_available {
            return Err(ClientError::Invalid(
                "the broker does not keep retained messages".into(),
            ));
        }
        let version = self.options.version;
        let mut list = Vec::new();
        let mut topic_sent = topic;
        if version == Version::V5 {
            list = properties.to_list()?;
            if let Some(alias) = properties.topic_alias {
                let maximum = granted.topic_alias_maximum;
                if alias == 0 || alias > maximum {
                    return Err(ClientError::Invalid(format!(
                        "topic alias {alias}: the broker allows aliases 1 to {maximum}"
                    )));
                }
                list.push(topic_alias(alias)?);
                // The alias alone, once the broker knows it, unless the
                // packet may be sent again on a later connection.
                let known = self.aliases_out.get(&alias).is_some_and(|t| t == topic);
                if known && (qos == 0 || !self.options.keeps_session()) {
                    topic_sent = "";
                } else {
                    self.aliases_out.insert(alias, topic.to_string());
                }
            }
        } else if !properties.is_empty() {
            return Err(ClientError::Invalid(
                "message properties need MQTT 5 (this connection speaks 3.1.1)".into(),
            ));
        }
        let packet = packets::publish(version, topic_sent, payload, qos, retain, id, list)?;
        let bytes = encoded(&packet);
        if let Some(maximum) = granted.maximum_packet_size
            && bytes.len() > maximum as usize
        {
            return Err(ClientError::Invalid(format!(
                "the PUBLISH is {} bytes; the broker takes packets up to {maximum}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }
}

/// The packet's bytes.
pub(super) fn encoded(packet: &Packet) -> Bytes {
    let mut buf = bytes::BytesMut::new();
    mqtt::encode(packet, &mut buf);
    buf.freeze()
}
