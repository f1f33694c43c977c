//! The admin HTTP endpoint of every mode: `/metrics` (Prometheus text
//! format), `/healthz` (the process answers) and `/readyz` (200 while the
//! mode serves and what it forwards to answers, else 503 saying why; see
//! [`Readiness`]).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::ops::readiness::Readiness;
use crate::ops::telemetry::METRICS;

/// Binds the admin endpoint on `addr` and serves it in the background.
pub async fn serve(addr: &str, readiness: Readiness) -> anyhow::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on admin address {addr}: {e}"))?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(readiness);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "admin endpoint stopped");
        }
    });
    tracing::info!(admin = %local, "admin endpoint serving /metrics /healthz /readyz");
    Ok(local)
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        METRICS.render(),
    )
}

async fn ready(State(readiness): State<Readiness>) -> impl IntoResponse {
    match readiness.check() {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}
