//! MQTT 5 properties as a client user sets and reads them: the properties
//! of an application message (on PUBLISH and on the Will), subscribe
//! options, and the Will itself. Converted to and from the codec's
//! property lists here and nowhere else; MQTT 3.1.1 connections carry none
//! of them (the Will's topic, payload, QoS and retain excepted).

use bytes::Bytes;
use mqtt_protocol_core::mqtt::packet::{
    ContentType, CorrelationData, MessageExpiryInterval, PayloadFormat, PayloadFormatIndicator,
    Property, ResponseTopic, SessionExpiryInterval, SubscriptionIdentifier, TopicAlias,
    UserProperty, WillDelayInterval,
};
use mqtt_protocol_core::mqtt::result_code::MqttError;

/// Properties of an application message (MQTT 5.0 §3.3.2.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// Payload format: `Some(true)` says the payload is UTF-8 text.
    pub payload_format_utf8: Option<bool>,
    /// Seconds the broker keeps the message for subscribers yet to get it.
    pub message_expiry_interval: Option<u32>,
    /// MIME type of the payload.
    pub content_type: Option<String>,
    /// Topic a request's answer should go to.
    pub response_topic: Option<String>,
    /// Opaque bytes a requester matches answers with.
    pub correlation_data: Option<Bytes>,
    /// Application name/value pairs, in order; names may repeat.
    pub user_properties: Vec<(String, String)>,
    /// On received messages: the identifiers of the subscriptions that
    /// matched. Ignored when publishing (a client may not send them).
    pub subscription_identifiers: Vec<u32>,
    /// Topic alias (1 up to the broker's topic alias maximum). When
    /// publishing, the client sends the topic once per connection and the
    /// alias alone afterwards; on received messages, the alias the broker
    /// used (the topic is always filled in).
    pub topic_alias: Option<u16>,
}

impl PublishProperties {
    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The codec's property list for a PUBLISH the client sends (without
    /// subscription identifiers or topic alias: the session adds the alias).
    pub fn to_list(&self) -> Result<Vec<Property>, MqttError> {
        let mut list = Vec::new();
        if let Some(utf8) = self.payload_format_utf8 {
            let format = if utf8 {
                PayloadFormat::String
            } else {
                PayloadFormat::Binary
            };
            list.push(Property::PayloadFormatIndicator(
                PayloadFormatIndicator::new(format)?,
            ));
        }
        if let Some(seconds) = self.message_expiry_interval {
            list.push(Property::MessageExpiryInterval(MessageExpiryInterval::new(
                seconds,
            )?));
        }
        if let Some(content_type) = &self.content_type {
            list.push(Property::ContentType(ContentType::new(content_type)?));
        }
        if let Some(topic) = &self.response_topic {
            list.push(Property::ResponseTopic(ResponseTopic::new(topic)?));
        }
        if let Some(data) = &self.correlation_data {
            list.push(Property::CorrelationData(CorrelationData::new(
                data.to_vec(),
            )?));
        }
        for (name, value) in &self.user_properties {
            list.push(Property::UserProperty(UserProperty::new(name, value)?));
        }
        Ok(list)
    }

    /// The properties of a received PUBLISH (other properties ignored).
    pub fn from_list(list: &[Property]) -> Self {
        let mut properties = Self::default();
        for property in list {
            match property {
                Property::PayloadFormatIndicator(p) => {
                    properties.payload_format_utf8 = Some(p.val() == 1);
                }
                Property::MessageExpiryInterval(p) => {
                    properties.message_expiry_interval = Some(p.val());
                }
                Property::ContentType(p) => properties.content_type = Some(p.val().to_string()),
                Property::ResponseTopic(p) => {
                    properties.response_topic = Some(p.val().to_string());
                }
                Property::CorrelationData(p) => {
                    properties.correlation_data = Some(Bytes::copy_from_slice(p.val()));
                }
                Property::UserProperty(p) => properties
                    .user_properties
                    .push((p.key().to_string(), p.val().to_string())),
                Property::SubscriptionIdentifier(p) => {
                    properties.subscription_identifiers.push(p.val());
                }
                Property::TopicAlias(p) => properties.topic_alias = Some(p.val()),
                _ => {}
            }
        }
        properties
    }
}

/// The TopicAlias property.
pub(super) fn topic_alias(alias: u16) -> Result<Property, MqttError> {
    Ok(Property::TopicAlias(TopicAlias::new(alias)?))
}

/// How the broker treats retained messages when a subscription is made
/// (MQTT 5.0 §3.8.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RetainHandling {
    /// Send retained messages at every subscribe (0).
    #[default]
    SendAtSubscribe,
    /// Send them only if the subscription did not exist (1).
    SendAtNewSubscribe,
    /// Never send retained messages for this subscribe (2).
    DoNotSend,
}

impl TryFrom<u8> for RetainHandling {
    type Error = String;
    fn try_from(value: u8) -> Result<Self, String> {
        match value {
            0 => Ok(Self::SendAtSubscribe),
            1 => Ok(Self::SendAtNewSubscribe),
            2 => Ok(Self::DoNotSend),
            other => Err(format!("retain handling {other}: use 0, 1 or 2")),
        }
    }
}

/// How to subscribe: QoS and the MQTT 5 subscription options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Maximum QoS to receive with (0, 1 or 2).
    pub qos: u8,
    /// Do not receive this connection's own publishes (MQTT 5).
    pub no_local: bool,
    /// Keep the retain flag of forwarded messages as published (MQTT 5).
    pub retain_as_published: bool,
    /// When retained messages are sent (MQTT 5).
    pub retain_handling: RetainHandling,
    /// Identifier the broker puts on every message this subscription
    /// delivers (MQTT 5; 1 to 268,435,455).
    pub subscription_identifier: Option<u32>,
    /// Application name/value pairs sent with the SUBSCRIBE (MQTT 5).
    pub user_properties: Vec<(String, String)>,
}

impl SubscribeOptions {
    /// Plain subscription at `qos`.
    pub fn qos(qos: u8) -> Self {
        Self {
            qos: qos.min(2),
            ..Self::default()
        }
    }

    /// The SUBSCRIBE's properties.
    pub(super) fn to_list(&self) -> Result<Vec<Property>, MqttError> {
        let mut list = Vec::new();
        if let Some(id) = self.subscription_identifier {
            list.push(Property::SubscriptionIdentifier(
                SubscriptionIdentifier::new(id)?,
            ));
        }
        for (name, value) in &self.user_properties {
            list.push(Property::UserProperty(UserProperty::new(name, value)?));
        }
        Ok(list)
    }
}

/// What a client's DISCONNECT says (MQTT 5.0 §3.14.2.2; MQTT 3.1.1's
/// DISCONNECT carries nothing, so these are not sent there).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisconnectOptions {
    /// A new session expiry interval in seconds; not allowed (a protocol
    /// error) when the session was opened with an interval of 0.
    pub session_expiry: Option<u32>,
    /// Why the client leaves, for the broker's logs.
    pub reason_string: Option<String>,
    /// Application name/value pairs.
    pub user_properties: Vec<(String, String)>,
}

impl DisconnectOptions {
    /// The DISCONNECT's properties.
    pub(super) fn to_list(&self) -> Result<Vec<Property>, MqttError> {
        let mut list = Vec::new();
        if let Some(seconds) = self.session_expiry {
            list.push(Property::SessionExpiryInterval(SessionExpiryInterval::new(
                seconds,
            )?));
        }
        if let Some(reason) = &self.reason_string {
            list.push(Property::ReasonString(
                mqtt_protocol_core::mqtt::packet::ReasonString::new(reason)?,
            ));
        }
        for (name, value) in &self.user_properties {
            list.push(Property::UserProperty(UserProperty::new(name, value)?));
        }
        Ok(list)
    }
}

/// The message the broker publishes for the client when its connection
/// ends without a DISCONNECT (MQTT 3.1.1 §3.1.2.5, 5.0 §3.1.3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Will {
    /// Topic it is published to.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
    /// Its QoS.
    pub qos: u8,
    /// Whether it is retained.
    pub retain: bool,
    /// MQTT 5: seconds the broker waits before publishing it (a reconnect
    /// within that time cancels it).
    pub delay_interval: Option<u32>,
    /// MQTT 5: the message's properties (topic alias and subscription
    /// identifiers do not apply).
    pub properties: PublishProperties,
}

impl Will {
    /// The Will properties of the CONNECT.
    pub(super) fn property_list(&self) -> Result<Vec<Property>, MqttError> {
        let mut list = self.properties.to_list()?;
        if let Some(delay) = self.delay_interval {
            list.push(Property::WillDelayInterval(WillDelayInterval::new(delay)?));
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_properties_survive_the_codec_list_both_ways() {
        let properties = PublishProperties {
            payload_format_utf8: Some(true),
            message_expiry_interval: Some(60),
            content_type: Some("text/plain".into()),
            response_topic: Some("replies/1".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\x01")),
            user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            ..Default::default()
        };
        let list = properties.to_list().unwrap();
        assert_eq!(PublishProperties::from_list(&list), properties);
        assert!(PublishProperties::default().is_empty());
        assert!(!properties.is_empty());
    }
}
