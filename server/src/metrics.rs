//! The replica's Prometheus metrics: one `Metrics` value created at start-up,
//! shared by reference, rendered as text by `GET /metrics`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tierlab_protocol::ErrorCode;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub connections: Gauge,
    pub rooms: Gauge,
    pub events_in: Counter,
    pub events_out: Counter,
    /// From the append's publish on any replica to this replica queuing the
    /// event for its local members.
    pub fanout_latency: Histogram,
    pub redis_op_latency: Family<OpLabel, Histogram>,
    pub errors: Family<KindLabel, Counter>,
    pub resyncs: Counter,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~6.5 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tierlab");
        let connections = Gauge::default();
        let rooms = Gauge::default();
        let events_in = Counter::default();
        let events_out = Counter::default();
        let fanout_latency = latency_histogram();
        let redis_op_latency = Family::<OpLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let errors = Family::<KindLabel, Counter>::default();
        let resyncs = Counter::default();
        registry.register(
            "connections",
            "Open WebSocket connections",
            connections.clone(),
        );
        registry.register("rooms", "Rooms with members on this replica", rooms.clone());
        registry.register(
            "events_in",
            "Acts appended to room logs by this replica",
            events_in.clone(),
        );
        registry.register(
            "events_out",
            "Event frames queued to members on this replica",
            events_out.clone(),
        );
        registry.register(
            "fanout_latency_seconds",
            "Publish on any replica to queueing for local members",
            fanout_latency.clone(),
        );
        registry.register(
            "redis_op_latency_seconds",
            "Latency of Redis operations by kind",
            redis_op_latency.clone(),
        );
        registry.register("errors", "Errors by kind", errors.clone());
        registry.register(
            "resyncs",
            "Room feeds re-read from the log after a gap or a reconnect",
            resyncs.clone(),
        );
        Metrics {
            registry,
            connections,
            rooms,
            events_in,
            events_out,
            fanout_latency,
            redis_op_latency,
            errors,
            resyncs,
        }
    }

    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&KindLabel { kind }).inc();
    }

    pub fn error_code(&self, code: ErrorCode) {
        self.error(code.as_str());
    }

    pub fn redis_op(&self, op: &'static str, took: Duration) {
        self.redis_op_latency
            .get_or_create(&OpLabel { op })
            .observe(took.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
