//! Running a service as a process: read the settings, bind, start the admin
//! endpoint, tell systemd and `/readyz` it is serving (`/readyz` also waits
//! for the service's probes), reload on SIGHUP, and on SIGINT or SIGTERM
//! report stopping and drain.

use tracing::{error, info};

use super::frame::{Reload, Service, ServiceConfig};
use crate::net::HostPort;
use crate::ops::admin;
use crate::ops::readiness::Readiness;
use crate::ops::systemd;

/// Runs `S` until a signal stops it. `settings` reads the config (file and
/// flags) now and again on every SIGHUP; `admin` overrides the file's
/// admin address.
pub async fn run<S: Service>(
    settings: impl Fn() -> anyhow::Result<S::Config> + Send + 'static,
    admin: Option<HostPort>,
) -> anyhow::Result<()> {
    let config = settings()?;
    let admin = admin.or_else(|| config.admin().cloned());
    let service = S::bind(config).await?;
    let readiness = service.readiness();
    let reloader = service.reloader();
    on_hangup(move || reloader.apply(settings()?));
    if let Some(addr) = &admin {
        admin::serve(addr.as_str(), readiness.clone()).await?;
    }
    readiness.set(true);
    systemd::notify("READY=1");
    service.serve(shutdown_signal(readiness)).await
}

/// Re-reads the configuration on every SIGHUP; a configuration that does
/// not check out is refused and the running one kept.
fn on_hangup(mut reload: impl FnMut() -> anyhow::Result<()> + Send + 'static) {
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hangups.recv().await.is_some() {
            info!("SIGHUP: reloading the configuration");
            if let Err(e) = reload() {
                error!("reload refused, keeping the running configuration: {e:#}");
            }
        }
    });
}

/// Completes on SIGINT or SIGTERM, telling systemd and `/readyz` that the
/// service is stopping.
pub async fn shutdown_signal(readiness: Readiness) {
    wait_for_signal().await;
    info!("shutting down");
    readiness.set(false);
    systemd::notify("STOPPING=1");
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = ctrl_c.await;
        return;
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
