//! The native half of the `mqttbridge` Python package: the mqttbridge
//! client library (MQTT 3.1.1 and 5.0 over TCP, QUIC and QUIC over SCION)
//! as `mqttbridge._native`. The package's Python half
//! (`python/mqttbridge/`) wraps it as `Client` and `AsyncClient`.

mod arguments;
mod completions;
mod core;
mod errors;
mod message;
mod properties;
mod publication;
mod session;

use pyo3::prelude::*;

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<session::Session>()?;
    module.add_class::<message::Message>()?;
    module.add_class::<properties::Properties>()?;
    module.add_class::<properties::Will>()?;
    module.add_class::<publication::Publication>()?;
    Ok(())
}
