//! `mqttbridge._native.Session`: one client connection, with each call
//! twice: blocking (for `mqttbridge.Client`) and as an awaitable (for
//! `mqttbridge.AsyncClient`). Both run on one tokio runtime per process.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mqttbridge::client::{ClientOptions, ClientUrl};
use mqttbridge::mqtt::Version;
use mqttbridge::net::connector::TransportOptions;
use mqttbridge::net::tls::ClientTls;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};

use crate::core::Core;
use crate::errors::Failure;
use crate::message::Message;

/// How often a blocking call looks for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// A client connection; see `mqttbridge.Client` for the settings.
#[pyclass(frozen, module = "mqttbridge._native")]
pub struct Session {
    core: Arc<Core>,
}

#[pymethods]
impl Session {
    #[new]
    #[pyo3(signature = (
        url, *, client_id=None, version="5", clean_start=true, session_expiry=0.0,
        keep_alive=30.0, timeout=Some(30.0), reconnect=false, cafile=None, insecure=false,
        certfile=None, keyfile=None, server_name=None, endhost_api=None, snap_token_file=None,
        queue_depth=256, max_in_flight=16,
    ))]
    // Python keyword arguments, one per setting.
    #[allow(clippy::too_many_arguments)]
    fn new(
        url: &str,
        client_id: Option<String>,
        version: &str,
        clean_start: bool,
        session_expiry: f64,
        keep_alive: f64,
        timeout: Option<f64>,
        reconnect: bool,
        cafile: Option<PathBuf>,
        insecure: bool,
        certfile: Option<PathBuf>,
        keyfile: Option<PathBuf>,
        server_name: Option<String>,
        endhost_api: Option<&str>,
        snap_token_file: Option<PathBuf>,
        queue_depth: usize,
        max_in_flight: usize,
    ) -> PyResult<Self> {
        url.parse::<ClientUrl>().map_err(PyValueError::new_err)?;
        let version = match version {
            "5" | "5.0" => Version::V5,
            "3.1.1" | "311" => Version::V3_1_1,
            other => {
                return Err(PyValueError::new_err(format!(
                    "version `{other}`: use \"5\" or \"3.1.1\""
                )));
            }
        };
        let keep_alive = seconds("keep_alive", keep_alive)?;
        if keep_alive > Duration::from_secs(u64::from(u16::MAX)) {
            return Err(PyValueError::new_err("keep_alive: at most 65535 seconds"));
        }
        if queue_depth == 0 || max_in_flight == 0 {
            return Err(PyValueError::new_err(
                "queue_depth and max_in_flight: at least 1",
            ));
        }
        if certfile.is_some() != keyfile.is_some() {
            return Err(PyValueError::new_err(
                "certfile and keyfile: give both or neither",
            ));
        }
        let endhost_api = endhost_api
            .map(|api| {
                url::Url::parse(api)
                    .map_err(|e| PyValueError::new_err(format!("endhost_api `{api}`: {e}")))
            })
            .transpose()?;
        let snap_token = snap_token_file
            .as_deref()
            .map(mqttbridge::net::scion::read_token)
            .transpose()
            .map_err(|e| PyValueError::new_err(format!("{e:#}")))?;
        let client_id =
            client_id.unwrap_or_else(|| format!("mqttbridge-py-{:08x}", rand::random::<u32>()));
        let options = ClientOptions {
            version,
            clean_start,
            session_expiry: seconds("session_expiry", session_expiry)?,
            keep_alive,
            reconnect: reconnect.then(Default::default),
            queue_depth,
            max_in_flight,
            transport: TransportOptions {
                tls: ClientTls {
                    ca: cafile,
                    ca_dir: None,
                    insecure,
                    cert_chain: certfile,
                    private_key: keyfile,
                },
                server_name,
                endhost_api,
                snap_token,
                ..TransportOptions::default()
            },
            ..ClientOptions::new(url, &client_id)
        };
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        Ok(Self {
            core: Arc::new(Core::new(options, timeout)),
        })
    }

    fn connect(&self, py: Python<'_>) -> PyResult<()> {
        blocking(py, self.core.connect())
    }

    fn connect_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        awaitable(py, async move { core.connect().await })
    }

    #[pyo3(signature = (topic, payload, qos=0, retain=false))]
    fn publish(
        &self,
        py: Python<'_>,
        topic: String,
        payload: &Bound<'_, PyAny>,
        qos: u8,
        retain: bool,
    ) -> PyResult<()> {
        let payload = payload_bytes(payload)?;
        check_qos(qos)?;
        blocking(py, self.core.publish(topic, payload, qos, retain))
    }

    #[pyo3(signature = (topic, payload, qos=0, retain=false))]
    fn publish_async<'py>(
        &self,
        py: Python<'py>,
        topic: String,
        payload: &Bound<'_, PyAny>,
        qos: u8,
        retain: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let payload = payload_bytes(payload)?;
        check_qos(qos)?;
        let core = self.core.clone();
        awaitable(py, async move {
            core.publish(topic, payload, qos, retain).await
        })
    }

    #[pyo3(signature = (topic_filter, qos=0))]
    fn subscribe(&self, py: Python<'_>, topic_filter: String, qos: u8) -> PyResult<u8> {
        check_qos(qos)?;
        blocking(py, self.core.subscribe(topic_filter, qos))
    }

    #[pyo3(signature = (topic_filter, qos=0))]
    fn subscribe_async<'py>(
        &self,
        py: Python<'py>,
        topic_filter: String,
        qos: u8,
    ) -> PyResult<Bound<'py, PyAny>> {
        check_qos(qos)?;
        let core = self.core.clone();
        awaitable(py, async move { core.subscribe(topic_filter, qos).await })
    }

    fn unsubscribe(&self, py: Python<'_>, topic_filter: String) -> PyResult<()> {
        blocking(py, self.core.unsubscribe(topic_filter))
    }

    fn unsubscribe_async<'py>(
        &self,
        py: Python<'py>,
        topic_filter: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        awaitable(py, async move { core.unsubscribe(topic_filter).await })
    }

    #[pyo3(signature = (timeout=None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Message>> {
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        // A message already here costs no trip through the runtime.
        if let Some(message) = self.core.try_recv()? {
            return Ok(Some(message));
        }
        blocking(py, self.core.recv(timeout))
    }

    /// A message that is here already, or `None`, without waiting (the
    /// asyncio `recv` tries it before it awaits).
    fn try_recv(&self) -> PyResult<Option<Message>> {
        Ok(self.core.try_recv()?)
    }

    #[pyo3(signature = (timeout=None))]
    fn recv_async<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let core = self.core.clone();
        awaitable(py, async move { core.recv(timeout).await })
    }

    fn disconnect(&self, py: Python<'_>) -> PyResult<()> {
        blocking(py, self.core.disconnect())
    }

    fn disconnect_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        awaitable(py, async move { core.disconnect().await })
    }
}

/// Runs `call` on the runtime with the GIL released, looking for signals
/// (Ctrl-C) every [`SIGNAL_CHECK`]; a signal drops the call and raises.
fn blocking<T: Send>(
    py: Python<'_>,
    call: impl Future<Output = Result<T, Failure>> + Send,
) -> PyResult<T> {
    let runtime = pyo3_async_runtimes::tokio::get_runtime();
    let mut call = std::pin::pin!(call);
    loop {
        // The timer is made inside the runtime: an async block, not a call.
        let step = py.detach(|| {
            runtime.block_on(async { tokio::time::timeout(SIGNAL_CHECK, call.as_mut()).await })
        });
        match step {
            Ok(result) => return result.map_err(PyErr::from),
            Err(_) => py.check_signals()?,
        }
    }
}

/// `call` as a Python awaitable on the running asyncio loop.
fn awaitable<'py, T>(
    py: Python<'py>,
    call: impl Future<Output = Result<T, Failure>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, async move { call.await.map_err(PyErr::from) })
}

/// `str` (sent as UTF-8), `bytes` or `bytearray`.
fn payload_bytes(payload: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
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

fn check_qos(qos: u8) -> PyResult<()> {
    if qos > 2 {
        return Err(PyValueError::new_err(format!("qos {qos}: 0, 1 or 2")));
    }
    Ok(())
}

/// A duration in seconds from Python: finite and not negative.
fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| PyValueError::new_err(format!("{name} {value}: seconds, 0 or more")))
}
