//! A received application message as Python sees it.

use mqttbridge::client::PublishProperties;
use pyo3::prelude::*;

use crate::properties::Properties;
use pyo3::types::PyBytes;

/// One message from a subscription.
#[pyclass(frozen, module = "mqttbridge")]
pub struct Message {
    /// Topic name.
    #[pyo3(get)]
    topic: String,
    payload: bytes::Bytes,
    /// QoS it was delivered with (0, 1 or 2).
    #[pyo3(get)]
    qos: u8,
    /// Whether the broker sent it as a retained message.
    #[pyo3(get)]
    retain: bool,
    properties: PublishProperties,
}

impl From<mqttbridge::client::Message> for Message {
    fn from(m: mqttbridge::client::Message) -> Self {
        Self {
            topic: m.topic,
            payload: m.payload,
            qos: m.qos,
            retain: m.retain,
            properties: m.properties,
        }
    }
}

#[pymethods]
impl Message {
    /// The payload bytes.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.payload)
    }

    /// MQTT 5 properties (all unset for MQTT 3.1.1).
    #[getter]
    fn properties(&self) -> Properties {
        Properties::from(&self.properties)
    }

    fn __repr__(&self) -> String {
        format!(
            "Message(topic={:?}, payload={} bytes, qos={}, retain={})",
            self.topic,
            self.payload.len(),
            self.qos,
            if self.retain { "True" } else { "False" }
        )
    }
}
