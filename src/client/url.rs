//! A client URL with its user information: `scheme://user:password@host:port/...`
//! splits into the endpoint to open (`net::connector::Endpoint`) and the
//! percent-decoded user name and password the CONNECT carries.

use percent_encoding::percent_decode_str;

use crate::net::connector::Endpoint;

/// A parsed client URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientUrl {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// User name from `user@` or `user:password@`.
    pub username: Option<String>,
    /// Password from `user:password@` (also `:password@`, MQTT 5 only).
    pub password: Option<String>,
}

impl std::str::FromStr for ClientUrl {
    type Err = String;
    fn from_str(url: &str) -> Result<Self, String> {
        let Some((scheme, rest)) = url.split_once("://") else {
            // The endpoint parser words the error.
            return url.parse().map(|endpoint| ClientUrl {
                endpoint,
                username: None,
                password: None,
            });
        };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (username, password, rest) = match rest[..authority_end].rfind('@') {
            None => (None, None, rest),
            Some(at) => {
                let userinfo = &rest[..at];
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(decode(password, "password")?)),
                    None => (userinfo, None),
                };
                let user = (!user.is_empty())
                    .then(|| decode(user, "user name"))
                    .transpose()?;
                (user, password, &rest[at + 1..])
            }
        };
        let endpoint = format!("{scheme}://{rest}").parse()?;
        Ok(ClientUrl {
            endpoint,
            username,
            password,
        })
    }
}

fn decode(part: &str, what: &str) -> Result<String, String> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| format!("the URL's {what} is not UTF-8 once percent-decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> ClientUrl {
        url.parse().unwrap()
    }

    #[test]
    fn user_information_is_split_off_and_percent_decoded() {
        let url = parse("tcp://alice:p%40ss%3Aw0rd@broker.example:1883");
        assert_eq!(url.endpoint, Endpoint::Tcp("broker.example:1883".into()));
        assert_eq!(url.username.as_deref(), Some("alice"));
        assert_eq!(url.password.as_deref(), Some("p@ss:w0rd"));

        let url = parse("wss://bob@host:443/mqtt");
        assert_eq!(
            url.endpoint,
            Endpoint::Wss("host:443".into(), "/mqtt".into())
        );
        assert_eq!(url.username.as_deref(), Some("bob"));
        assert_eq!(url.password, None);

        let url = parse("mqtts://:secret@[::1]:8883");
        assert_eq!(url.endpoint, Endpoint::Tls("[::1]:8883".into()));
        assert_eq!(url.username, None);
        assert_eq!(url.password.as_deref(), Some("secret"));
    }

    #[test]
    fn urls_without_user_information_are_unchanged() {
        let url = parse("ws://host:9001/path@with-at");
        assert_eq!(
            url.endpoint,
            Endpoint::Ws("host:9001".into(), "/path@with-at".into())
        );
        assert_eq!(url.username, None);
        assert!(
            parse("scion-quic://[1-ff00:0:110,10.0.0.1]:4433")
                .username
                .is_none()
        );
        assert!("tcp://alice@".parse::<ClientUrl>().is_err());
        assert!("tcp://a:%ff@h:1".parse::<ClientUrl>().is_err());
    }
}
