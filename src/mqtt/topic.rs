//! Topic names and topic filters as MQTT 3.1.1 §4.7 and 5.0 §4.7 define
//! them, checked before anything is sent, so a caller hears what is wrong
//! with the topic instead of a broker's disconnect.

/// The longest topic an MQTT string can carry (two length bytes).
const MAX_TOPIC_BYTES: usize = 65_535;

/// Why a topic name or filter is not valid; the message names the topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} '{topic}': {reason}")]
pub struct TopicError {
    kind: &'static str,
    topic: String,
    reason: &'static str,
}

fn invalid(kind: &'static str, topic: &str, reason: &'static str) -> TopicError {
    TopicError {
        kind,
        topic: topic.to_string(),
        reason,
    }
}

fn check_common(kind: &'static str, topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(invalid(kind, topic, "it is empty"));
    }
    if topic.len() > MAX_TOPIC_BYTES {
        return Err(invalid(kind, topic, "it is longer than 65535 bytes"));
    }
    if topic.contains('\0') {
        return Err(invalid(kind, topic, "it contains a NUL character"));
    }
    Ok(())
}

/// A topic a PUBLISH (or a Will) is sent to: not empty, no wildcards.
pub fn check_topic_name(topic: &str) -> Result<(), TopicError> {
    check_common("topic", topic)?;
    if topic.contains(['+', '#']) {
        return Err(invalid(
            "topic",
            topic,
            "wildcards are not allowed in a PUBLISH topic",
        ));
    }
    Ok(())
}

/// A filter a SUBSCRIBE or UNSUBSCRIBE names: `+` fills one whole level,
/// `#` only the last one; `$share/{group}/{filter}` needs a group and a filter.
pub fn check_topic_filter(filter: &str) -> Result<(), TopicError> {
    check_common("topic filter", filter)?;
    let levels: Vec<&str> = filter.split('/').collect();
    for (at, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || at + 1 != levels.len()) {
            return Err(invalid(
                "topic filter",
                filter,
                "'#' must be a whole level and the last one",
            ));
        }
        if level.contains('+') && *level != "+" {
            return Err(invalid("topic filter", filter, "'+' must be a whole level"));
        }
    }
    if levels[0] == "$share" {
        let group_ok = levels
            .get(1)
            .is_some_and(|g| !g.is_empty() && !g.contains(['+', '#']));
        if !group_ok || levels.len() < 3 {
            return Err(invalid(
                "topic filter",
                filter,
                "a shared subscription is $share/<group>/<filter>",
            ));
        }
    }
    Ok(())
}

/// Whether a (valid) topic name matches a (valid) filter, as a broker
/// decides it: `+` fills one level, `#` the rest (the parent level too),
/// and a wildcard at the start does not match a topic beginning with `$`
/// (MQTT 5.0 §4.7.2).
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match (level, topic_levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (level, Some(name)) if level == name => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_topics_as_a_broker_matches_them() {
        for (filter, topic, matches) in [
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
            ("a/+", "a/b", true),
            ("a/+", "a", false),
            ("a/+/c", "a//c", true),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("#", "a/b", true),
            ("#", "$SYS/x", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("a/b/c", "a/b", false),
        ] {
            assert_eq!(topic_matches(filter, topic), matches, "{filter} vs {topic}");
        }
    }

    #[test]
    fn names_refuse_wildcards_with_a_reason_a_user_understands() {
        assert!(check_topic_name("a/b/c").is_ok());
        assert!(check_topic_name("/").is_ok());
        assert_eq!(
            check_topic_name("a/#").unwrap_err().to_string(),
            "invalid topic 'a/#': wildcards are not allowed in a PUBLISH topic"
        );
        assert!(check_topic_name("a/+/c").is_err());
        assert!(check_topic_name("").is_err());
        assert!(check_topic_name("a\0b").is_err());
    }

    #[test]
    fn filters_place_wildcards_as_the_spec_says() {
        for good in [
            "#",
            "+",
            "a/+/c",
            "a/#",
            "+/+",
            "/#",
            "$share/g/a/#",
            "$SYS/#",
        ] {
            assert!(check_topic_filter(good).is_ok(), "{good}");
        }
        for bad in [
            "a/#/c",
            "a#",
            "a/b+",
            "",
            "$share/g",
            "$share//a",
            "$share/+/a",
        ] {
            assert!(check_topic_filter(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_topic_filter("a/#/c").unwrap_err().to_string(),
            "invalid topic filter 'a/#/c': '#' must be a whole level and the last one"
        );
    }
}
