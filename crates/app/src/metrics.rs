//! Prometheus metrics: names declared once here, rendered at `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// HTTP requests by method, matched route and status.
pub const HTTP_REQUESTS: &str = "switchboard_http_requests_total";
/// HTTP latency in seconds by method and matched route.
pub const HTTP_DURATION: &str = "switchboard_http_request_duration_seconds";
/// Webhooks refused because their signature did not verify, by provider.
pub const WEBHOOK_SIGNATURE_FAILURES: &str = "switchboard_webhook_signature_failures_total";
/// Webhooks accepted, by provider and outcome (`applied`, `replay`).
pub const WEBHOOKS: &str = "switchboard_webhooks_total";
/// Store call latency in seconds by operation and result.
pub const STORE_DURATION: &str = "switchboard_store_operation_duration_seconds";

/// Background job runs by job and outcome (`ok`, `error`, `lost` = the lease lapsed mid-run).
pub const JOB_RUNS: &str = "switchboard_job_runs_total";
/// Unix time of each job's last successful run on this instance.
pub const JOB_LAST_SUCCESS: &str = "switchboard_job_last_success_timestamp_seconds";
/// Live-feed events delivered to this instance's Socket.IO rooms.
pub const LIVE_EVENTS: &str = "switchboard_live_events_total";
/// Live-feed events that could not be published (Redis unreachable).
pub const LIVE_PUBLISH_FAILURES: &str = "switchboard_live_publish_failures_total";

/// The process-wide recorder (the `metrics` facade allows one), installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. by a test harness); then we still render ours.
        let _ = metrics::set_global_recorder(recorder);
        metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests by method, route and status");
        metrics::describe_histogram!(HTTP_DURATION, metrics::Unit::Seconds, "HTTP request latency");
        metrics::describe_counter!(WEBHOOK_SIGNATURE_FAILURES, "Webhooks refused for a bad signature");
        metrics::describe_counter!(WEBHOOKS, "Webhooks accepted, by provider and outcome");
        metrics::describe_histogram!(STORE_DURATION, metrics::Unit::Seconds, "Store operation latency");
        metrics::describe_counter!(JOB_RUNS, "Background job runs by job and outcome");
        metrics::describe_counter!(LIVE_EVENTS, "Live-feed events delivered to this instance's rooms");
        metrics::describe_counter!(LIVE_PUBLISH_FAILURES, "Live-feed events not published (Redis unreachable)");
        metrics::describe_gauge!(JOB_LAST_SUCCESS, metrics::Unit::Seconds, "Unix time of each job's last success");
        handle
    })
}
