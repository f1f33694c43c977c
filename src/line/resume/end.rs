//! Which end of a resumable line a link is: the r-proxy's (the edge) or
//! the s-proxy's (the cloud).

use crate::line::proto::mqtt::MessageDirection;

/// Which end of the line: it decides what happens to pings in a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The r-proxy: answers its client's PINGREQ itself during a gap.
    Edge,
    /// The s-proxy: pings the broker on the client's behalf during a gap
    /// and keeps the answers to itself.
    Cloud,
}

impl End {
    /// The direction of the envelopes this end sends.
    pub fn direction(self) -> MessageDirection {
        match self {
            End::Edge => MessageDirection::ClientToBroker,
            End::Cloud => MessageDirection::BrokerToClient,
        }
    }
}
