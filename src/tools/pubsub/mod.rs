//! `mqttbridge pub` and `mqttbridge sub`: command-line clients that take
//! mosquitto_pub's and mosquitto_sub's flags and exit codes, on the client
//! library, over every transport it opens.

mod args;
mod format;
mod options;
mod properties;
mod publish;
mod subscribe;

use std::process::ExitCode;

pub use args::{ClientArgs, PubArgs, SessionArgs, SubArgs};
pub(crate) use options::options;
pub use publish::publish;
pub use subscribe::subscribe;

use crate::client::ClientError;

/// mosquitto_sub's exit code when `-W` runs out.
const TIMED_OUT: u8 = 27;

/// Why `pub` or `sub` stops early.
#[derive(Debug, thiserror::Error)]
enum Stop {
    /// `-W` ran out before `-C` messages came.
    #[error("timed out after {0} s")]
    TimedOut(u64),
    /// A client call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Anything else (flags, files, stdin).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The exit code for how a command ended, as mosquitto's clients choose
/// it: 0, the CONNACK's reason code when the broker refused, 27 when `-W`
/// ran out, 1 for other errors (printed on stderr).
fn exit_code(result: Result<(), Stop>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(stop) => {
            eprintln!("Error: {stop:#}");
            match stop {
                Stop::TimedOut(_) => ExitCode::from(TIMED_OUT),
                Stop::Client(ClientError::Refused { code, .. }) => ExitCode::from(code),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
