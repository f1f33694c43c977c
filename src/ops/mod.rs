//! What operators see: Prometheus metrics ([`telemetry`]), the admin HTTP
//! endpoint, [`readiness`], systemd notifications and live counts ([`gauge`]).
//!
//! Layer rule: used by every layer above, `ops` imports none of them.

pub mod admin;
pub mod gauge;
pub mod labels;
pub mod process;
pub mod readiness;
pub mod session_span;
pub mod systemd;
pub mod telemetry;
mod traffic;
