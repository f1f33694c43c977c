//! `mqttbridge.Properties` (MQTT 5 message properties, sent with a publish
//! or a Will and read from a received message) and `mqttbridge.Will`, as
//! Python objects over the client library's types.

use bytes::Bytes;
use mqttbridge::client::PublishProperties;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// MQTT 5 properties of an application message.
#[pyclass(module = "mqttbridge", eq)]
#[derive(Clone, Default, PartialEq)]
pub struct Properties {
    /// 1: the payload is UTF-8 text; 0: bytes.
    #[pyo3(get, set)]
    payload_format_indicator: Option<u8>,
    /// Seconds the broker keeps the message for subscribers yet to get it.
    #[pyo3(get, set)]
    message_expiry_interval: Option<u32>,
    /// MIME type of the payload.
    #[pyo3(get, set)]
    content_type: Option<String>,
    /// Topic the answer to a request should go to.
    #[pyo3(get, set)]
    response_topic: Option<String>,
    correlation_data: Option<Vec<u8>>,
    /// Name/value pairs, in order; names may repeat.
    #[pyo3(get, set)]
    user_properties: Vec<(String, String)>,
    /// Received messages: identifiers of the subscriptions that matched.
    #[pyo3(get)]
    subscription_identifiers: Vec<u32>,
    /// Topic alias (publish: 1 up to the broker's maximum; the topic is sent
    /// once per connection, the alias alone after that).
    #[pyo3(get, set)]
    topic_alias: Option<u16>,
}

#[pymethods]
impl Properties {
    #[new]
    #[pyo3(signature = (
        *, payload_format_indicator=None, message_expiry_interval=None, content_type=None,
        response_topic=None, correlation_data=None, user_properties=Vec::new(), topic_alias=None,
    ))]
    // Python keyword arguments, one per property.
    #[allow(clippy::too_many_arguments)]
    fn new(
        payload_format_indicator: Option<u8>,
        message_expiry_interval: Option<u32>,
        content_type: Option<String>,
        response_topic: Option<String>,
        correlation_data: Option<Vec<u8>>,
        user_properties: Vec<(String, String)>,
        topic_alias: Option<u16>,
    ) -> PyResult<Self> {
        if payload_format_indicator.is_some_and(|f| f > 1) {
            return Err(PyValueError::new_err(
                "payload_format_indicator: 0 (bytes) or 1 (UTF-8)",
            ));
        }
        Ok(Self {
            payload_format_indicator,
            message_expiry_interval,
            content_type,
            response_topic,
            correlation_data,
            user_properties,
            subscription_identifiers: Vec::new(),
            topic_alias,
        })
    }

    /// Opaque bytes a requester matches answers with.
    #[getter]
    fn correlation_data<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.correlation_data
            .as_deref()
            .map(|data| PyBytes::new(py, data))
    }

    #[setter]
    fn set_correlation_data(&mut self, data: Option<Vec<u8>>) {
        self.correlation_data = data;
    }

    fn __repr__(&self) -> String {
        let mut set = Vec::new();
        if let Some(v) = self.payload_format_indicator {
            set.push(format!("payload_format_indicator={v}"));
        }
        if let Some(v) = self.message_expiry_interval {
            set.push(format!("message_expiry_interval={v}"));
        }
        if let Some(v) = &self.content_type {
            set.push(format!("content_type={v:?}"));
        }
        if let Some(v) = &self.response_topic {
            set.push(format!("response_topic={v:?}"));
        }
        if let Some(v) = &self.correlation_data {
            set.push(format!("correlation_data=<{} bytes>", v.len()));
        }
        if !self.user_properties.is_empty() {
            set.push(format!("user_properties={:?}", self.user_properties));
        }
        if !self.subscription_identifiers.is_empty() {
            set.push(format!(
                "subscription_identifiers={:?}",
                self.subscription_identifiers
            ));
        }
        if let Some(v) = self.topic_alias {
            set.push(format!("topic_alias={v}"));
        }
        format!("Properties({})", set.join(", "))
    }
}

impl From<&Properties> for PublishProperties {
    fn from(p: &Properties) -> Self {
        PublishProperties {
            payload_format_utf8: p.payload_format_indicator.map(|f| f == 1),
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type.clone(),
            response_topic: p.response_topic.clone(),
            correlation_data: p.correlation_data.clone().map(Bytes::from),
            user_properties: p.user_properties.clone(),
            subscription_identifiers: Vec::new(),
            topic_alias: p.topic_alias,
        }
    }
}

impl From<&PublishProperties> for Properties {
    fn from(p: &PublishProperties) -> Self {
        Properties {
            payload_format_indicator: p.payload_format_utf8.map(u8::from),
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type.clone(),
            response_topic: p.response_topic.clone(),
            correlation_data: p.correlation_data.as_ref().map(|d| d.to_vec()),
            user_properties: p.user_properties.clone(),
            subscription_identifiers: p.subscription_identifiers.clone(),
            topic_alias: p.topic_alias,
        }
    }
}

/// The message the broker publishes for this client if its connection
/// ends without a DISCONNECT.
#[pyclass(module = "mqttbridge", frozen)]
#[derive(Clone)]
pub struct Will {
    pub(crate) will: mqttbridge::client::Will,
}

#[pymethods]
impl Will {
    #[new]
    #[pyo3(signature = (topic, payload=None, qos=0, retain=false, *, delay_interval=None, properties=None))]
    fn new(
        topic: String,
        payload: Option<&Bound<'_, PyAny>>,
        qos: u8,
        retain: bool,
        delay_interval: Option<u32>,
        properties: Option<PyRef<'_, Properties>>,
    ) -> PyResult<Self> {
        if qos > 2 {
            return Err(PyValueError::new_err(format!("qos {qos}: 0, 1 or 2")));
        }
        let payload = match payload {
            Some(payload) => crate::arguments::payload_bytes(payload)?,
            None => Vec::new(),
        };
        Ok(Self {
            will: mqttbridge::client::Will {
                topic,
                payload: Bytes::from(payload),
                qos,
                retain,
                delay_interval,
                properties: properties
                    .map(|p| PublishProperties::from(&*p))
                    .unwrap_or_default(),
            },
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Will(topic={:?}, payload={} bytes, qos={}, retain={})",
            self.will.topic,
            self.will.payload.len(),
            self.will.qos,
            if self.will.retain { "True" } else { "False" }
        )
    }
}
