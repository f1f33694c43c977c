//! What a session has in flight and how it is finished: requests waiting
//! for the broker's answer, completed by acknowledgements, and sent again
//! after a reconnect when the broker kept the session (PUBLISH with DUP
//! set and its packet id, PUBREL where PUBREC had arrived, pending
//! (un)subscriptions), as MQTT 3.1.1 §4.4 and 5.0 §4.4 require.

use bytes::Bytes;
use tracing::debug;

use super::driver::Driver;
use super::options::{Ack, ClientError};
use super::packets;
use super::session::Done;

/// The DUP flag in a PUBLISH's first byte.
const DUP: u8 = 0x08;

/// A request waiting for the broker's answer; `sent` numbers requests in
/// the order they went out (packet ids wrap around, so they cannot tell).
pub(super) enum Pending {
    Publish {
        sent: u64,
        qos: u8,
        done: Done,
        /// The encoded PUBLISH, kept to send again when the session is
        /// kept.
        resend: Option<Bytes>,
        /// PUBREC arrived and PUBREL went out (QoS 2).
        released: bool,
    },
    Subscribe {
        sent: u64,
        done: Done,
        resend: Bytes,
    },
    Unsubscribe {
        sent: u64,
        done: Done,
        resend: Bytes,
    },
}

impl Pending {
    fn sent(&self) -> u64 {
        match self {
            Pending::Publish { sent, .. }
            | Pending::Subscribe { sent, .. }
            | Pending::Unsubscribe { sent, .. } => *sent,
        }
    }

    pub(super) fn fail(self, error: fn() -> ClientError) {
        let done = match self {
            Pending::Publish { done, .. }
            | Pending::Subscribe { done, .. }
            | Pending::Unsubscribe { done, .. } => done,
        };
        done.send(Err(error()));
    }
}

impl Driver {
    /// After a reconnect: subscriptions again when the broker lost the
    /// session, then everything still in flight, in the order it was first
    /// sent (MQTT 3.1.1 §4.6, 5.0 §4.6).
    pub(super) async fn restore(&mut self) -> Result<(), ClientError> {
        let session_present = self.link.connected.session_present;
        if !session_present {
            self.awaiting_pubrel.clear();
            let subscriptions = self.subscriptions.clone();
            for (filter, options) in subscriptions {
                let id = self.allocate_id();
                let packet = packets::subscribe_with(self.options.version, id, &filter, &options)?;
                self.link.write(&packet).await?;
            }
        }
        let mut ids: Vec<u16> = self.pending.keys().copied().collect();
        ids.sort_unstable_by_key(|id| self.pending.get(id).map(Pending::sent));
        for id in ids {
            let again = match self.pending.get_mut(&id) {
                Some(Pending::Publish {
                    released: true,
                    resend: Some(_),
                    ..
                }) if session_present => {
                    let pubrel = packets::pubrel(self.options.version, id)?;
                    self.link.write(&pubrel).await?;
                    continue;
                }
                Some(Pending::Publish {
                    resend: Some(bytes),
                    released,
                    ..
                }) => {
                    *released = false;
                    let mut again = bytes.to_vec();
                    if session_present {
                        again[0] |= DUP;
                    }
                    Bytes::from(again)
                }
                Some(Pending::Subscribe { resend, .. } | Pending::Unsubscribe { resend, .. }) => {
                    resend.clone()
                }
                Some(Pending::Publish { resend: None, .. }) | None => continue,
            };
            debug!(packet_id = id, "sending again after reconnect");
            self.link.write_bytes(&again).await?;
        }
        Ok(())
    }

    pub(super) async fn pubrec(
        &mut self,
        id: u16,
        ack: Result<Ack, ClientError>,
    ) -> Result<(), ClientError> {
        match (ack, self.pending.get_mut(&id)) {
            (Ok(_), Some(Pending::Publish { released, .. })) => {
                *released = true;
                self.link
                    .write(&packets::pubrel(self.options.version, id)?)
                    .await
            }
            (Err(e), Some(_)) => {
                self.complete_publish(id, 2, Err(e));
                Ok(())
            }
            // PUBREC for an id we do not have in flight: answer so the
            // broker can finish (MQTT 5: reason "packet identifier not found").
            (_, _) => {
                self.link
                    .write(&packets::pubrel(self.options.version, id)?)
                    .await
            }
        }
    }

    pub(super) fn complete_publish(
        &mut self,
        id: u16,
        expected_qos: u8,
        ack: Result<Ack, ClientError>,
    ) {
        if let Some(Pending::Publish { qos, done, .. }) = self.pending.remove(&id) {
            let result = if qos != expected_qos {
                Err(ClientError::Protocol(format!(
                    "acknowledgement for QoS {expected_qos}, message was QoS {qos}"
                )))
            } else {
                ack
            };
            done.send(result);
        }
    }

    pub(super) fn complete(&mut self, id: u16, ack: Result<Ack, ClientError>) {
        match self.pending.remove(&id) {
            Some(Pending::Subscribe { done, .. } | Pending::Unsubscribe { done, .. }) => {
                done.send(ack);
            }
            Some(other) => {
                // An id in use by a publish: not this answer's.
                self.pending.insert(id, other);
            }
            None => {}
        }
    }
}
