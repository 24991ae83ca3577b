//! Prometheus metrics of the manager.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of per-operation metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    /// keygen, sign, delete, aux.
    pub operation: String,
    /// ok or an error code.
    pub outcome: String,
}

/// Labels of per-operation latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpKind {
    /// keygen, sign, delete, aux.
    pub operation: String,
}

/// Every metric the manager exports.
pub struct Metrics {
    registry: Registry,
    /// Operations by kind and outcome.
    pub operations: Family<OpLabels, Counter>,
    /// Operation latency in seconds.
    pub latency: Family<OpKind, Histogram>,
    /// Nodes currently connected and authenticated.
    pub nodes_connected: Gauge,
    /// WebSocket connections refused (bad auth, not a member, bad frames).
    pub ws_refused: Counter,
    /// Presignatures ready per key.
    pub presignatures_ready: Family<KeyLabel, Gauge>,
    /// Presignatures generated.
    pub presignatures_generated: Counter,
    /// Signatures made from a presignature (one round).
    pub presignatures_used: Counter,
    /// Presignature signings that failed and fell back to full signing.
    pub presignature_fallbacks: Counter,
    /// API requests refused 401, by reason (missing, invalid, expired).
    pub auth_failures: Family<ReasonLabel, Counter>,
    /// State batches answered from the cache of verified signatures.
    pub signature_cache_hits: Counter,
}

/// Label of the authentication-failure counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// missing, invalid or expired.
    pub reason: String,
}

/// Label of per-key metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabel {
    /// Key id.
    pub key_id: String,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cohort_manager");
        let operations = Family::<OpLabels, Counter>::default();
        let latency = Family::<OpKind, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ])
        });
        let nodes_connected = Gauge::default();
        let ws_refused = Counter::default();
        registry.register(
            "operations",
            "Operations by kind and outcome",
            operations.clone(),
        );
        registry.register("operation_seconds", "Operation latency", latency.clone());
        registry.register(
            "nodes_connected",
            "Authenticated node connections",
            nodes_connected.clone(),
        );
        registry.register("ws_refused", "Refused node connections", ws_refused.clone());
        let presignatures_ready = Family::<KeyLabel, Gauge>::default();
        let presignatures_generated = Counter::default();
        let presignatures_used = Counter::default();
        let presignature_fallbacks = Counter::default();
        registry.register(
            "presignatures_ready",
            "Presignatures ready per key",
            presignatures_ready.clone(),
        );
        registry.register(
            "presignatures_generated",
            "Presignatures generated",
            presignatures_generated.clone(),
        );
        registry.register(
            "presignatures_used",
            "Signatures made from a presignature",
            presignatures_used.clone(),
        );
        registry.register(
            "presignature_fallbacks",
            "Presignature signings that fell back to full signing",
            presignature_fallbacks.clone(),
        );
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        let signature_cache_hits = Counter::default();
        registry.register(
            "auth_failures",
            "API requests refused 401, by reason",
            auth_failures.clone(),
        );
        registry.register(
            "signature_cache_hits",
            "State batches answered from the signature cache",
            signature_cache_hits.clone(),
        );
        Metrics {
            auth_failures,
            signature_cache_hits,
            presignatures_ready,
            presignatures_generated,
            presignatures_used,
            presignature_fallbacks,
            registry,
            operations,
            latency,
            nodes_connected,
            ws_refused,
        }
    }

    /// Counts one finished operation; `outcome` is `ok` or the error code's name.
    pub fn record(&self, operation: cohort_wire::OpKind, outcome: &str, seconds: f64) {
        self.operations
            .get_or_create(&OpLabels {
                operation: operation.as_str().into(),
                outcome: outcome.into(),
            })
            .inc();
        self.latency
            .get_or_create(&OpKind {
                operation: operation.as_str().into(),
            })
            .observe(seconds);
    }

    /// Counts one refused API request.
    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    /// Text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
