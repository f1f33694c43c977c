//! `mqttbridge._native.Session`: one client connection, with each call
//! twice: blocking (for `mqttbridge.Client`) and for asyncio (`*_into`, for
//! `mqttbridge.AsyncClient`), which settles an asyncio future through
//! [`Completions`] so the runtime's threads never take the GIL. Both run on
//! one tokio runtime per process; QoS 0 publishes are queued without a
//! trip through the runtime at all.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqttbridge::client::{ClientOptions, ClientUrl, DisconnectOptions, PublishProperties};
use mqttbridge::mqtt::Version;
use mqttbridge::net::connector::TransportOptions;
use mqttbridge::net::tls::ClientTls;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arguments::{check_qos, payload_bytes, seconds, subscribe_options};
use crate::completions::{Completions, Outcome};
use crate::core::{Core, Outgoing};
use crate::errors::Failure;
use crate::message::Message;
use crate::properties::{Properties, Will};
use crate::publication::Publication;

/// How often a blocking call looks for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// A client connection; see `mqttbridge.Client` for the settings.
#[pyclass(frozen, module = "mqttbridge._native")]
pub struct Session {
    core: Arc<Core>,
    completions: Arc<Completions>,
}

#[pymethods]
impl Session {
    #[new]
    #[pyo3(signature = (
        url, *, client_id=None, version="5", clean_start=true, session_expiry=0.0,
        keep_alive=30.0, timeout=Some(30.0), reconnect=false, username=None, password=None,
        will=None, cafile=None, capath=None, insecure=false, certfile=None, keyfile=None,
        server_name=None, endhost_api=None, snap_token_file=None, queue_depth=256,
        max_in_flight=16, receive_maximum=None, maximum_packet_size=None,
        topic_alias_maximum=0, user_properties=Vec::new(),
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
        username: Option<String>,
        password: Option<&Bound<'_, PyAny>>,
        will: Option<PyRef<'_, Will>>,
        cafile: Option<PathBuf>,
        capath: Option<PathBuf>,
        insecure: bool,
        certfile: Option<PathBuf>,
        keyfile: Option<PathBuf>,
        server_name: Option<String>,
        endhost_api: Option<&str>,
        snap_token_file: Option<PathBuf>,
        queue_depth: usize,
        max_in_flight: usize,
        receive_maximum: Option<u16>,
        maximum_packet_size: Option<u32>,
        topic_alias_maximum: u16,
        user_properties: Vec<(String, String)>,
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
        if queue_depth == 0 || max_in_flight == 0 || receive_maximum == Some(0) {
            return Err(PyValueError::new_err(
                "queue_depth, max_in_flight and receive_maximum: at least 1",
            ));
        }
        if certfile.is_some() != keyfile.is_some() {
            return Err(PyValueError::new_err(
                "certfile and keyfile: give both or neither",
            ));
        }
        if version == Version::V3_1_1 && password.is_some() && username.is_none() {
            return Err(PyValueError::new_err(
                "password: MQTT 3.1.1 needs a username with it",
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
        let defaults = ClientOptions::new(url, &client_id);
        let options = ClientOptions {
            version,
            clean_start,
            session_expiry: seconds("session_expiry", session_expiry)?,
            keep_alive,
            reconnect: reconnect.then(Default::default),
            username,
            password: password.map(payload_bytes).transpose()?.map(Bytes::from),
            will: will.map(|w| w.will.clone()),
            queue_depth,
            max_in_flight,
            receive_maximum,
            maximum_packet_size: maximum_packet_size.unwrap_or(defaults.maximum_packet_size),
            topic_alias_maximum,
            user_properties,
            transport: TransportOptions {
                tls: ClientTls {
                    ca: cafile,
                    ca_dir: capath,
                    insecure,
                    cert_chain: certfile,
                    private_key: keyfile,
                },
                server_name,
                endhost_api,
                snap_token,
                ..TransportOptions::default()
            },
            ..defaults
        };
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let completions = Completions::new()
            .map_err(|e| PyValueError::new_err(format!("cannot make the wake-up socket: {e}")))?;
        Ok(Self {
            core: Arc::new(Core::new(options, timeout)),
            completions: Arc::new(completions),
        })
    }

    fn connect(&self, py: Python<'_>) -> PyResult<()> {
        blocking(py, self.core.connect())
    }

    /// Connects for asyncio: `future` settles once connected.
    fn connect_into(&self, future: Py<PyAny>) {
        let core = self.core.clone();
        self.settle(future, async move { none(core.connect().await) });
    }

    #[pyo3(signature = (topic, payload, qos=0, retain=false, properties=None))]
    fn publish(
        &self,
        py: Python<'_>,
        topic: String,
        payload: &Bound<'_, PyAny>,
        qos: u8,
        retain: bool,
        properties: Option<PyRef<'_, Properties>>,
    ) -> PyResult<()> {
        let Some(message) = self.queue_or_keep(topic, payload, qos, retain, properties)? else {
            return Ok(());
        };
        blocking(py, self.core.publish(message))
    }

    /// Starts a publish without waiting for its acknowledgement.
    #[pyo3(signature = (topic, payload, qos=0, retain=false, properties=None))]
    fn publish_nowait(
        &self,
        topic: String,
        payload: &Bound<'_, PyAny>,
        qos: u8,
        retain: bool,
        properties: Option<PyRef<'_, Properties>>,
    ) -> PyResult<Publication> {
        let Some(message) = self.queue_or_keep(topic, payload, qos, retain, properties)? else {
            return Ok(Publication::done());
        };
        let publication = Publication::in_flight();
        let outcome = publication.outcome();
        let finished = outcome.clone();
        if let Some(message) = self
            .core
            .publish_then(message, move |r| finished.finish(r))?
        {
            // The request queue is full: wait for room on the runtime.
            let core = self.core.clone();
            pyo3_async_runtimes::tokio::get_runtime()
                .spawn(async move { outcome.finish(core.publish(message).await) });
        }
        Ok(publication)
    }

    /// Publishes for asyncio: `True` when a QoS 0 message was queued at
    /// once (`future` is left alone), else `future` settles when done.
    #[pyo3(signature = (future, topic, payload, qos=0, retain=false, properties=None))]
    // Python's arguments, plus the GIL token.
    #[allow(clippy::too_many_arguments)]
    fn publish_into(
        &self,
        py: Python<'_>,
        future: Py<PyAny>,
        topic: String,
        payload: &Bound<'_, PyAny>,
        qos: u8,
        retain: bool,
        properties: Option<PyRef<'_, Properties>>,
    ) -> PyResult<bool> {
        let Some(message) = self.queue_or_keep(topic, payload, qos, retain, properties)? else {
            return Ok(true);
        };
        let completions = self.completions.clone();
        let waiting = future.clone_ref(py);
        let finished = move |result: Result<(), Failure>| {
            completions.finish(waiting, Box::new(none(result)));
        };
        if let Some(message) = self.core.publish_then(message, finished)? {
            // The request queue is full: wait for room on the runtime.
            let core = self.core.clone();
            self.settle(future, async move { none(core.publish(message).await) });
        }
        Ok(false)
    }

    #[pyo3(signature = (
        topic_filter, qos=0, no_local=false, retain_as_published=false, retain_handling=0,
        subscription_identifier=None, user_properties=Vec::new(),
    ))]
    // Python keyword arguments, one per subscribe option.
    #[allow(clippy::too_many_arguments)]
    fn subscribe(
        &self,
        py: Python<'_>,
        topic_filter: String,
        qos: u8,
        no_local: bool,
        retain_as_published: bool,
        retain_handling: u8,
        subscription_identifier: Option<u32>,
        user_properties: Vec<(String, String)>,
    ) -> PyResult<u8> {
        let options = subscribe_options(
            qos,
            no_local,
            retain_as_published,
            retain_handling,
            subscription_identifier,
            user_properties,
        )?;
        blocking(py, self.core.subscribe(topic_filter, options))
    }

    /// Subscribes for asyncio: `future` settles with the granted QoS.
    #[pyo3(signature = (
        future, topic_filter, qos=0, no_local=false, retain_as_published=false,
        retain_handling=0, subscription_identifier=None, user_properties=Vec::new(),
    ))]
    // Python keyword arguments, one per subscribe option.
    #[allow(clippy::too_many_arguments)]
    fn subscribe_into(
        &self,
        future: Py<PyAny>,
        topic_filter: String,
        qos: u8,
        no_local: bool,
        retain_as_published: bool,
        retain_handling: u8,
        subscription_identifier: Option<u32>,
        user_properties: Vec<(String, String)>,
    ) -> PyResult<()> {
        let options = subscribe_options(
            qos,
            no_local,
            retain_as_published,
            retain_handling,
            subscription_identifier,
            user_properties,
        )?;
        let core = self.core.clone();
        self.settle(future, async move {
            let result = core.subscribe(topic_filter, options).await;
            move |py: Python<'_>, _wanted: bool| -> PyResult<Py<PyAny>> {
                Ok(result?.into_pyobject(py)?.into_any().unbind())
            }
        });
        Ok(())
    }

    #[pyo3(signature = (topic_filter, user_properties=Vec::new()))]
    fn unsubscribe(
        &self,
        py: Python<'_>,
        topic_filter: String,
        user_properties: Vec<(String, String)>,
    ) -> PyResult<()> {
        blocking(py, self.core.unsubscribe(topic_filter, user_properties))
    }

    /// Unsubscribes for asyncio.
    #[pyo3(signature = (future, topic_filter, user_properties=Vec::new()))]
    fn unsubscribe_into(
        &self,
        future: Py<PyAny>,
        topic_filter: String,
        user_properties: Vec<(String, String)>,
    ) {
        let core = self.core.clone();
        self.settle(future, async move {
            none(core.unsubscribe(topic_filter, user_properties).await)
        });
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
    /// asyncio `recv` tries it before it waits).
    fn try_recv(&self) -> PyResult<Option<Message>> {
        Ok(self.core.try_recv()?)
    }

    /// Receives for asyncio: `future` settles with the next message and
    /// those already behind it (at most `max`), or an empty list when
    /// `timeout` passes first: one wake-up of the loop for a burst.
    #[pyo3(signature = (future, timeout=None, max=64))]
    fn recv_into(&self, future: Py<PyAny>, timeout: Option<f64>, max: usize) -> PyResult<()> {
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let core = self.core.clone();
        self.settle(future, async move {
            let result = core.recv_batch(timeout, max.max(1)).await;
            move |py: Python<'_>, wanted: bool| -> PyResult<Py<PyAny>> {
                if !wanted {
                    // The caller gave up waiting: the next one gets them.
                    for message in result.into_iter().flatten() {
                        core.put_back(message);
                    }
                    return Ok(py.None());
                }
                let batch = result.map_err(PyErr::from)?;
                Ok(batch.into_pyobject(py)?.into_any().unbind())
            }
        });
        Ok(())
    }

    /// The descriptor the event loop watches (`loop.add_reader`) to run
    /// `drain` when asyncio calls have finished.
    fn completion_fd(&self) -> i32 {
        self.completions.fd()
    }

    /// Settles the futures of every asyncio call finished since the last
    /// drain (run by the event loop).
    fn drain(&self, py: Python<'_>) -> PyResult<()> {
        self.completions.drain(py)
    }

    #[pyo3(signature = (session_expiry=None, reason_string=None, user_properties=Vec::new()))]
    fn disconnect(
        &self,
        py: Python<'_>,
        session_expiry: Option<f64>,
        reason_string: Option<String>,
        user_properties: Vec<(String, String)>,
    ) -> PyResult<()> {
        let options = disconnect_options(session_expiry, reason_string, user_properties)?;
        blocking(py, self.core.disconnect(options))
    }

    /// Disconnects for asyncio.
    #[pyo3(signature = (future, session_expiry=None, reason_string=None, user_properties=Vec::new()))]
    fn disconnect_into(
        &self,
        future: Py<PyAny>,
        session_expiry: Option<f64>,
        reason_string: Option<String>,
        user_properties: Vec<(String, String)>,
    ) -> PyResult<()> {
        let options = disconnect_options(session_expiry, reason_string, user_properties)?;
        let core = self.core.clone();
        self.settle(future, async move { none(core.disconnect(options).await) });
        Ok(())
    }
}

impl Session {
    /// Checks a publish; a QoS 0 one is queued at once when there is room
    /// (`None`), anything else comes back to be sent and awaited.
    fn queue_or_keep(
        &self,
        topic: String,
        payload: &Bound<'_, PyAny>,
        qos: u8,
        retain: bool,
        properties: Option<PyRef<'_, Properties>>,
    ) -> PyResult<Option<Outgoing>> {
        check_qos(qos)?;
        let message = Outgoing {
            topic,
            payload: payload_bytes(payload)?,
            qos,
            retain,
            properties: properties
                .map(|p| PublishProperties::from(&*p))
                .unwrap_or_default(),
        };
        if qos > 0 {
            return Ok(Some(message));
        }
        Ok(self.core.try_publish(message)?)
    }

    /// Runs `call` on the runtime and settles `future` with what it
    /// finishes with, through the completion queue.
    fn settle<F>(&self, future: Py<PyAny>, call: impl Future<Output = F> + Send + 'static)
    where
        F: FnOnce(Python<'_>, bool) -> PyResult<Py<PyAny>> + Send + 'static,
    {
        let completions = self.completions.clone();
        pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
            let outcome: Outcome = Box::new(call.await);
            completions.finish(future, outcome);
        });
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

/// What DISCONNECT says: a new session expiry in whole seconds (MQTT 5).
fn disconnect_options(
    session_expiry: Option<f64>,
    reason_string: Option<String>,
    user_properties: Vec<(String, String)>,
) -> PyResult<DisconnectOptions> {
    let session_expiry = session_expiry
        .map(|s| seconds("session_expiry", s))
        .transpose()?
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
    Ok(DisconnectOptions {
        session_expiry,
        reason_string,
        user_properties,
    })
}

/// The outcome of a call that returns nothing to Python.
fn none(
    result: Result<(), Failure>,
) -> impl FnOnce(Python<'_>, bool) -> PyResult<Py<PyAny>> + Send {
    move |py, _wanted| {
        result?;
        Ok(py.None())
    }
}
