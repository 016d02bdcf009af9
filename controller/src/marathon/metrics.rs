//! Metrics of the calls the operator makes to Marathon.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// `mesos_operator_marathon_requests_total{endpoint, code}` and
/// `mesos_operator_marathon_request_duration_seconds{endpoint}`. `endpoint` is the route
/// template (`PUT /v2/apps/{id}`), never an app id, so the label set stays small.
#[derive(Clone)]
pub struct CallMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl CallMetrics {
    pub fn new() -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "marathon_requests_total",
                "Requests to Marathon, by endpoint and HTTP status code (\"error\" when no answer came).",
            ),
            &["endpoint", "code"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "marathon_request_duration_seconds",
                "Time a request to Marathon takes, by endpoint.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["endpoint"],
        )
        .expect("valid metric");
        Self { requests, duration }
    }

    /// Registers the families; a second registration in the same registry is ignored.
    pub fn register(&self, registry: &Registry) {
        for c in [
            Box::new(self.requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(self.duration.clone()),
        ] {
            if let Err(e) = registry.register(c) {
                tracing::debug!(error = %e, "Marathon call metrics already registered");
            }
        }
    }

    pub fn observe(&self, endpoint: &str, code: Option<u16>, took: Duration) {
        let code = code.map_or_else(|| "error".to_string(), |c| c.to_string());
        self.requests.with_label_values(&[endpoint, &code]).inc();
        self.duration
            .with_label_values(&[endpoint])
            .observe(took.as_secs_f64());
    }

    /// Requests counted so far for `endpoint` and `code` (for tests).
    pub fn count(&self, endpoint: &str, code: &str) -> u64 {
        self.requests.with_label_values(&[endpoint, code]).get()
    }
}

impl Default for CallMetrics {
    fn default() -> Self {
        Self::new()
    }
}
