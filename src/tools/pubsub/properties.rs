//! `-D COMMAND PROPERTY VALUE [VALUE]`: MQTT 5 properties named as
//! mosquitto_pub/sub name them, sorted by the packet they go on.

use bytes::Bytes;

use crate::client::{DisconnectOptions, PublishProperties};

/// Every `-D` given, by packet.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PropertyFlags {
    /// CONNECT: session expiry interval in seconds.
    pub session_expiry: Option<u32>,
    /// CONNECT: receive maximum.
    pub receive_maximum: Option<u16>,
    /// CONNECT: maximum packet size.
    pub maximum_packet_size: Option<u32>,
    /// CONNECT: topic alias maximum.
    pub topic_alias_maximum: Option<u16>,
    /// CONNECT: user properties.
    pub connect_user_properties: Vec<(String, String)>,
    /// PUBLISH properties.
    pub publish: PublishProperties,
    /// Will properties.
    pub will: PublishProperties,
    /// Will delay interval in seconds.
    pub will_delay: Option<u32>,
    /// SUBSCRIBE: subscription identifier.
    pub subscription_identifier: Option<u32>,
    /// SUBSCRIBE: user properties.
    pub subscribe_user_properties: Vec<(String, String)>,
    /// UNSUBSCRIBE (`sub -U`): user properties.
    pub unsubscribe_user_properties: Vec<(String, String)>,
    /// DISCONNECT: session expiry interval and user properties.
    pub disconnect: DisconnectOptions,
}

impl PropertyFlags {
    /// Sorts the `-D` values (all of them in a row, as the command line
    /// gives them: three per property, four for `user-property`), checking
    /// each property is one its packet takes.
    pub fn parse(values: &[String]) -> Result<Self, String> {
        let mut parsed = Self::default();
        let mut rest = values;
        while !rest.is_empty() {
            let len = match rest.get(1) {
                Some(property) if property == "user-property" => 4,
                _ => 3,
            };
            let (flag, after) = rest.split_at(len.min(rest.len()));
            parsed.add(flag)?;
            rest = after;
        }
        Ok(parsed)
    }

    fn add(&mut self, flag: &[String]) -> Result<(), String> {
        let [command, property, value, rest @ ..] = flag else {
            return Err("-D needs a command, a property and a value".into());
        };
        let shown = flag.join(" ");
        let pair = || match rest {
            [second] => Ok((value.clone(), second.clone())),
            _ => Err(format!(
                "-D {shown}: user-property takes a name and a value"
            )),
        };
        let message = match command.as_str() {
            "publish" => Some(&mut self.publish),
            "will" => Some(&mut self.will),
            _ => None,
        };
        match (command.as_str(), property.as_str()) {
            (_, "user-property") => {
                let pair = pair()?;
                match command.as_str() {
                    "connect" => self.connect_user_properties.push(pair),
                    "subscribe" => self.subscribe_user_properties.push(pair),
                    "unsubscribe" => self.unsubscribe_user_properties.push(pair),
                    "disconnect" => self.disconnect.user_properties.push(pair),
                    "publish" => self.publish.user_properties.push(pair),
                    "will" => self.will.user_properties.push(pair),
                    _ => return Err(unsupported(&shown, command, property)),
                }
            }
            ("connect", "session-expiry-interval") => {
                self.session_expiry = Some(number(&shown, value)?);
            }
            ("connect", "receive-maximum") => {
                self.receive_maximum = Some(number(&shown, value)?);
            }
            ("connect", "maximum-packet-size") => {
                self.maximum_packet_size = Some(number(&shown, value)?);
            }
            ("connect", "topic-alias-maximum") => {
                self.topic_alias_maximum = Some(number(&shown, value)?);
            }
            ("disconnect", "session-expiry-interval") => {
                self.disconnect.session_expiry = Some(number(&shown, value)?);
            }
            ("will", "will-delay-interval") => self.will_delay = Some(number(&shown, value)?),
            ("subscribe", "subscription-identifier") => {
                self.subscription_identifier = Some(number(&shown, value)?);
            }
            ("publish", "topic-alias") => self.publish.topic_alias = Some(number(&shown, value)?),
            ("publish" | "will", _) => {
                let Some(message) = message else {
                    unreachable!("publish and will have message properties")
                };
                match property.as_str() {
                    "payload-format-indicator" => {
                        let format: u8 = number(&shown, value)?;
                        if format > 1 {
                            return Err(format!("-D {shown}: use 0 (bytes) or 1 (UTF-8)"));
                        }
                        message.payload_format_utf8 = Some(format == 1);
                    }
                    "message-expiry-interval" => {
                        message.message_expiry_interval = Some(number(&shown, value)?);
                    }
                    "content-type" => message.content_type = Some(value.clone()),
                    "response-topic" => message.response_topic = Some(value.clone()),
                    "correlation-data" => {
                        message.correlation_data = Some(Bytes::from(value.clone().into_bytes()));
                    }
                    _ => return Err(unsupported(&shown, command, property)),
                }
            }
            ("connect" | "subscribe" | "unsubscribe" | "disconnect", _) => {
                return Err(unsupported(&shown, command, property));
            }
            _ => {
                return Err(format!(
                    "-D {shown}: unknown command `{command}` (connect, publish, subscribe, unsubscribe, disconnect, will)"
                ));
            }
        }
        Ok(())
    }
}

fn unsupported(shown: &str, command: &str, property: &str) -> String {
    format!("-D {shown}: `{property}` is not a property `{command}` takes here")
}

fn number<T: std::str::FromStr>(shown: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("-D {shown}: `{value}` is not a number in range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(list: &[&[&str]]) -> Result<PropertyFlags, String> {
        let owned: Vec<String> = list
            .iter()
            .flat_map(|f| f.iter().map(|s| s.to_string()))
            .collect();
        PropertyFlags::parse(&owned)
    }

    #[test]
    fn mosquitto_property_names_land_on_their_packets() {
        let parsed = flags(&[
            &["publish", "user-property", "k", "v"],
            &["publish", "content-type", "text/plain"],
            &["publish", "payload-format-indicator", "1"],
            &["publish", "correlation-data", "abc"],
            &["publish", "topic-alias", "3"],
            &["connect", "session-expiry-interval", "60"],
            &["connect", "receive-maximum", "10"],
            &["will", "will-delay-interval", "5"],
            &["will", "message-expiry-interval", "30"],
            &["subscribe", "subscription-identifier", "9"],
            &["unsubscribe", "user-property", "u", "1"],
            &["disconnect", "session-expiry-interval", "0"],
            &["disconnect", "user-property", "why", "done"],
        ])
        .unwrap();
        assert_eq!(
            parsed.publish.user_properties,
            vec![("k".into(), "v".into())]
        );
        assert_eq!(parsed.publish.content_type.as_deref(), Some("text/plain"));
        assert_eq!(parsed.publish.payload_format_utf8, Some(true));
        assert_eq!(
            parsed.publish.correlation_data.as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(parsed.publish.topic_alias, Some(3));
        assert_eq!(parsed.session_expiry, Some(60));
        assert_eq!(parsed.receive_maximum, Some(10));
        assert_eq!(parsed.will_delay, Some(5));
        assert_eq!(parsed.will.message_expiry_interval, Some(30));
        assert_eq!(parsed.subscription_identifier, Some(9));
        assert_eq!(
            parsed.unsubscribe_user_properties,
            vec![("u".into(), "1".into())]
        );
        assert_eq!(parsed.disconnect.session_expiry, Some(0));
        assert_eq!(
            parsed.disconnect.user_properties,
            vec![("why".into(), "done".into())]
        );
    }

    #[test]
    fn wrong_properties_are_named_in_the_error() {
        for (flag, says) in [
            (
                &["publish", "receive-maximum", "1"][..],
                "not a property `publish` takes",
            ),
            (
                &["publish", "user-property", "k"],
                "takes a name and a value",
            ),
            (
                &["connect", "receive-maximum", "70000"],
                "not a number in range",
            ),
            (&["fetch", "content-type", "x"], "unknown command"),
            (
                &["disconnect", "content-type", "x"],
                "not a property `disconnect` takes",
            ),
            (
                &["publish", "content-type"],
                "needs a command, a property and a value",
            ),
        ] {
            let err = flags(&[flag]).unwrap_err();
            assert!(err.contains(says), "{flag:?}: {err}");
        }
    }
}
