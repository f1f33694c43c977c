//! Python's arguments as the client library takes them: payloads, QoS,
//! durations in seconds and subscribe options, each refused with a
//! `ValueError` or `TypeError` that names what is wrong.

use std::time::Duration;

use mqttbridge::client::{RetainHandling, SubscribeOptions};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};

/// Subscribe options from Python's keyword arguments.
pub fn subscribe_options(
    qos: u8,
    no_local: bool,
    retain_as_published: bool,
    retain_handling: u8,
    subscription_identifier: Option<u32>,
    user_properties: Vec<(String, String)>,
) -> PyResult<SubscribeOptions> {
    check_qos(qos)?;
    Ok(SubscribeOptions {
        qos,
        no_local,
        retain_as_published,
        retain_handling: RetainHandling::try_from(retain_handling)
            .map_err(PyValueError::new_err)?,
        subscription_identifier,
        user_properties,
    })
}

/// `str` (sent as UTF-8), `bytes` or `bytearray`.
pub fn payload_bytes(payload: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(text) = payload.cast::<PyString>() {
        Ok(text.to_cow()?.as_bytes().to_vec())
    } else if let Ok(bytes) = payload.cast::<PyBytes>() {
        Ok(bytes.as_bytes().to_vec())
    } else if let Ok(array) = payload.cast::<PyByteArray>() {
        Ok(array.to_vec())
    } else {
        Err(PyTypeError::new_err("payload: str, bytes or bytearray"))
    }
}

pub fn check_qos(qos: u8) -> PyResult<()> {
    if qos > 2 {
        return Err(PyValueError::new_err(format!("qos {qos}: 0, 1 or 2")));
    }
    Ok(())
}

/// A duration in seconds from Python: finite and not negative.
pub fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| PyValueError::new_err(format!("{name} {value}: seconds, 0 or more")))
}
