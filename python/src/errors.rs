//! How client failures reach Python: each one becomes an exception from
//! `mqttbridge._errors` (all subclasses of `MqttError`) carrying the MQTT
//! reason code, its name and the broker's reason string when it gave them.

use mqttbridge::client::ClientError;
use mqttbridge::mqtt::reason_name;
use pyo3::prelude::*;

/// Why a call failed.
#[derive(Debug)]
pub enum Failure {
    /// The client library said no.
    Client(ClientError),
    /// A call that needs a connection came before `connect()` or after
    /// `disconnect()`.
    NotConnected,
    /// The call did not finish within the client's `timeout`.
    Timeout(&'static str),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

impl From<Failure> for PyErr {
    fn from(failure: Failure) -> Self {
        Python::attach(|py| match raise(py, &failure) {
            Ok(err) | Err(err) => err,
        })
    }
}

/// The exception for `failure`; an error importing the exception classes
/// is returned as it is.
fn raise(py: Python<'_>, failure: &Failure) -> Result<PyErr, PyErr> {
    let reason_string = match failure {
        Failure::Client(
            ClientError::Refused { reason, .. } | ClientError::Rejected { reason, .. },
        ) => reason.clone(),
        _ => None,
    };
    let (class, code) = match failure {
        Failure::Client(ClientError::Invalid(_)) => ("InvalidRequest", None),
        Failure::Client(ClientError::Url(_)) => {
            return Ok(pyo3::exceptions::PyValueError::new_err(failure_text(
                failure,
            )));
        }
        Failure::Client(ClientError::Transport(_)) => ("ConnectError", None),
        Failure::Client(ClientError::Refused { code, .. }) => ("ConnectionRefused", Some(*code)),
        Failure::Client(ClientError::Rejected { code, .. }) => ("RequestRejected", Some(*code)),
        Failure::Client(ClientError::ConnectionLost) => ("ConnectionLost", None),
        Failure::Client(ClientError::Closed) | Failure::NotConnected => ("ClientClosed", None),
        Failure::Client(ClientError::Protocol(_)) => ("ProtocolError", None),
        Failure::Timeout(_) => ("RequestTimeout", None),
    };
    let class = py.import("mqttbridge._errors")?.getattr(class)?;
    let exception = class.call1((
        failure_text(failure),
        code,
        code.map(reason_name),
        reason_string,
    ))?;
    Ok(PyErr::from_value(exception))
}

fn failure_text(failure: &Failure) -> String {
    match failure {
        Failure::Client(e) => e.to_string(),
        Failure::NotConnected => "not connected: call connect() first".into(),
        Failure::Timeout(what) => format!("{what} did not finish within the client's timeout"),
    }
}
