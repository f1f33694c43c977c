//! MQTT 5 properties <-> protobuf `Property`, one for one and in order.

use bytes::Bytes;
use mqtt_protocol_core::mqtt::packet::{self as mp, PayloadFormat, Property};

use super::{ConvertError, invalid, u8_field, u16_field};
use crate::line::proto::mqttv5::{
    Property as PbProperty, UserProperty, property::PropertyType as Pb,
};

/// Properties as protobuf, in wire order.
pub fn to_proto(props: &[Property]) -> Vec<PbProperty> {
    props
        .iter()
        .map(|p| PbProperty {
            property_type: Some(property_to_proto(p)),
        })
        .collect()
}

fn property_to_proto(p: &Property) -> Pb {
    match p {
        Property::PayloadFormatIndicator(v) => Pb::PayloadFormatIndicator(v.val() != 0),
        Property::MessageExpiryInterval(v) => Pb::MessageExpiryInterval(v.val()),
        Property::ContentType(v) => Pb::ContentType(v.val().to_owned()),
        Property::ResponseTopic(v) => Pb::ResponseTopic(v.val().to_owned()),
        Property::CorrelationData(v) => Pb::CorrelationData(Bytes::copy_from_slice(v.val())),
        Property::SubscriptionIdentifier(v) => Pb::SubscriptionIdentifier(v.val()),
        Property::SessionExpiryInterval(v) => Pb::SessionExpiryInterval(v.val()),
        Property::AssignedClientIdentifier(v) => Pb::AssignedClientIdentifier(v.val().to_owned()),
        Property::ServerKeepAlive(v) => Pb::ServerKeepAlive(v.val().into()),
        Property::AuthenticationMethod(v) => Pb::AuthenticationMethod(v.val().to_owned()),
        Property::AuthenticationData(v) => Pb::AuthenticationData(Bytes::copy_from_slice(v.val())),
        Property::RequestProblemInformation(v) => Pb::RequestProblemInformation(v.val() != 0),
        Property::WillDelayInterval(v) => Pb::WillDelayInterval(v.val()),
        Property::RequestResponseInformation(v) => Pb::RequestResponseInformation(v.val() != 0),
        Property::ResponseInformation(v) => Pb::ResponseInformation(v.val().to_owned()),
        Property::ServerReference(v) => Pb::ServerReference(v.val().to_owned()),
        Property::ReasonString(v) => Pb::ReasonString(v.val().to_owned()),
        Property::ReceiveMaximum(v) => Pb::ReceiveMaximum(v.val().into()),
        Property::TopicAliasMaximum(v) => Pb::TopicAliasMaximum(v.val().into()),
        Property::TopicAlias(v) => Pb::TopicAlias(v.val().into()),
        Property::MaximumQos(v) => Pb::MaximumQos(v.val().into()),
        Property::RetainAvailable(v) => Pb::RetainAvailable(v.val() != 0),
        Property::UserProperty(v) => Pb::UserProperty(UserProperty {
            key: v.key().to_owned(),
            value: v.val().to_owned(),
        }),
        Property::MaximumPacketSize(v) => Pb::MaximumPacketSize(v.val()),
        Property::WildcardSubscriptionAvailable(v) => {
            Pb::WildcardSubscriptionAvailable(v.val() != 0)
        }
        Property::SubscriptionIdentifierAvailable(v) => {
            Pb::SubscriptionIdentifiersAvailable(v.val() != 0)
        }
        Property::SharedSubscriptionAvailable(v) => Pb::SharedSubscriptionAvailable(v.val() != 0),
    }
}

/// Properties from protobuf, each value checked against its MQTT type.
pub fn from_proto(props: Vec<PbProperty>) -> Result<Vec<Property>, ConvertError> {
    props
        .into_iter()
        .map(|p| {
            p.property_type
                .ok_or(ConvertError::Invalid("property"))
                .and_then(property_from_proto)
        })
        .collect()
}

fn property_from_proto(p: Pb) -> Result<Property, ConvertError> {
    let flag = |b: bool| u8::from(b);
    Ok(match p {
        Pb::PayloadFormatIndicator(v) => {
            let format = if v {
                PayloadFormat::String
            } else {
                PayloadFormat::Binary
            };
            Property::PayloadFormatIndicator(
                mp::PayloadFormatIndicator::new(format)
                    .map_err(invalid("payload_format_indicator"))?,
            )
        }
        Pb::MessageExpiryInterval(v) => Property::MessageExpiryInterval(
            mp::MessageExpiryInterval::new(v).map_err(invalid("message_expiry_interval"))?,
        ),
        Pb::ContentType(v) => {
            Property::ContentType(mp::ContentType::new(v).map_err(invalid("content_type"))?)
        }
        Pb::ResponseTopic(v) => {
            Property::ResponseTopic(mp::ResponseTopic::new(v).map_err(invalid("response_topic"))?)
        }
        Pb::CorrelationData(v) => Property::CorrelationData(
            mp::CorrelationData::new(v.to_vec()).map_err(invalid("correlation_data"))?,
        ),
        Pb::SubscriptionIdentifier(v) => Property::SubscriptionIdentifier(
            mp::SubscriptionIdentifier::new(v).map_err(invalid("subscription_identifier"))?,
        ),
        Pb::SessionExpiryInterval(v) => Property::SessionExpiryInterval(
            mp::SessionExpiryInterval::new(v).map_err(invalid("session_expiry_interval"))?,
        ),
        Pb::AssignedClientIdentifier(v) => Property::AssignedClientIdentifier(
            mp::AssignedClientIdentifier::new(v).map_err(invalid("assigned_client_identifier"))?,
        ),
        Pb::ServerKeepAlive(v) => Property::ServerKeepAlive(
            mp::ServerKeepAlive::new(u16_field(v, "server_keep_alive")?)
                .map_err(invalid("server_keep_alive"))?,
        ),
        Pb::AuthenticationMethod(v) => Property::AuthenticationMethod(
            mp::AuthenticationMethod::new(v).map_err(invalid("authentication_method"))?,
        ),
        Pb::AuthenticationData(v) => Property::AuthenticationData(
            mp::AuthenticationData::new(v.to_vec()).map_err(invalid("authentication_data"))?,
        ),
        Pb::RequestProblemInformation(v) => Property::RequestProblemInformation(
            mp::RequestProblemInformation::new(flag(v))
                .map_err(invalid("request_problem_information"))?,
        ),
        Pb::WillDelayInterval(v) => Property::WillDelayInterval(
            mp::WillDelayInterval::new(v).map_err(invalid("will_delay_interval"))?,
        ),
        Pb::RequestResponseInformation(v) => Property::RequestResponseInformation(
            mp::RequestResponseInformation::new(flag(v))
                .map_err(invalid("request_response_information"))?,
        ),
        Pb::ResponseInformation(v) => Property::ResponseInformation(
            mp::ResponseInformation::new(v).map_err(invalid("response_information"))?,
        ),
        Pb::ServerReference(v) => Property::ServerReference(
            mp::ServerReference::new(v).map_err(invalid("server_reference"))?,
        ),
        Pb::ReasonString(v) => {
            Property::ReasonString(mp::ReasonString::new(v).map_err(invalid("reason_string"))?)
        }
        Pb::ReceiveMaximum(v) => Property::ReceiveMaximum(
            mp::ReceiveMaximum::new(u16_field(v, "receive_maximum")?)
                .map_err(invalid("receive_maximum"))?,
        ),
        Pb::TopicAliasMaximum(v) => Property::TopicAliasMaximum(
            mp::TopicAliasMaximum::new(u16_field(v, "topic_alias_maximum")?)
                .map_err(invalid("topic_alias_maximum"))?,
        ),
        Pb::TopicAlias(v) => Property::TopicAlias(
            mp::TopicAlias::new(u16_field(v, "topic_alias")?).map_err(invalid("topic_alias"))?,
        ),
        Pb::MaximumQos(v) => Property::MaximumQos(
            mp::MaximumQos::new(u8_field(v, "maximum_qos")?).map_err(invalid("maximum_qos"))?,
        ),
        Pb::RetainAvailable(v) => Property::RetainAvailable(
            mp::RetainAvailable::new(flag(v)).map_err(invalid("retain_available"))?,
        ),
        Pb::UserProperty(v) => Property::UserProperty(
            mp::UserProperty::new(v.key, v.value).map_err(invalid("user_property"))?,
        ),
        Pb::MaximumPacketSize(v) => Property::MaximumPacketSize(
            mp::MaximumPacketSize::new(v).map_err(invalid("maximum_packet_size"))?,
        ),
        Pb::WildcardSubscriptionAvailable(v) => Property::WildcardSubscriptionAvailable(
            mp::WildcardSubscriptionAvailable::new(flag(v))
                .map_err(invalid("wildcard_subscription_available"))?,
        ),
        Pb::SubscriptionIdentifiersAvailable(v) => Property::SubscriptionIdentifierAvailable(
            mp::SubscriptionIdentifierAvailable::new(flag(v))
                .map_err(invalid("subscription_identifiers_available"))?,
        ),
        Pb::SharedSubscriptionAvailable(v) => Property::SharedSubscriptionAvailable(
            mp::SharedSubscriptionAvailable::new(flag(v))
                .map_err(invalid("shared_subscription_available"))?,
        ),
    })
}
