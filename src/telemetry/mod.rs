//! OpenTelemetry traces of client requests, following a write from the
//! server its client is connected to, to the leader and back.
//!
//! Off unless the standard OpenTelemetry variables name a collector
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`);
//! then spans go there as OTLP over HTTP/protobuf, in batches, from a thread
//! of their own (`OTEL_BSP_*`), sampled as `OTEL_TRACES_SAMPLER` says. When
//! off, a [`Span`] is an empty value and every call on it does nothing, so
//! the request path pays one branch.
//!
//! The spans of one request (attribute names in [`attr`]):
//!
//! - the request itself (`create`, `setData`, `getData`...; kind server), on
//!   the server the client is connected to, from the request's arrival to
//!   its reply being queued;
//! - for a write on the leader, `log write`: from entering the leader's
//!   queue to its outcome, with the events `proposed` (the log entry it
//!   shares with others, and how many), `durable` (the leader's fsync of
//!   that entry) and `applied`;
//! - for a write on a follower, `forward to leader` (kind client) until the
//!   leader's answer arrives; the leader's `log write` is its child, across
//!   the process boundary (the context travels with the forwarded write, see
//!   [`TraceParent`]); then `apply here`: once the reply's turn comes (after
//!   the session's earlier requests), the wait for the follower to apply the
//!   write, so that the client then reads its own write.

mod otlp_http;

use std::sync::OnceLock;

pub use opentelemetry::trace::SpanKind;

use opentelemetry::trace::{
    SpanContext, SpanId, Status, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use serde::{Deserialize, Serialize};

/// The tracer, once [`init`] found a collector to export to.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Attribute names on paddock's spans.
pub mod attr {
    /// The ZooKeeper session, in hex as ZooKeeper logs it.
    pub const SESSION: &str = "zookeeper.session_id";
    /// The request's xid within its session.
    pub const XID: &str = "zookeeper.xid";
    /// The znode the request names.
    pub const PATH: &str = "zookeeper.path";
    /// The zxid of the reply (of the write's transaction, for a write).
    pub const ZXID: &str = "zookeeper.zxid";
    /// The ZooKeeper error code of the reply, when not 0.
    pub const ERROR: &str = "zookeeper.error";
    /// The member a follower forwarded the write to.
    pub const LEADER: &str = "paddock.leader";
    /// The Raft log index of the entry that carries the write.
    pub const LOG_INDEX: &str = "raft.log_index";
    /// How many transactions share that entry (and its fsync).
    pub const BATCH_SIZE: &str = "paddock.batch_size";
}

/// Why tracing could not be set up as the environment asks.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The environment asks for an export paddock does not offer.
    #[error("{0}")]
    Unsupported(String),
    /// The OTLP exporter refused its settings (e.g. a malformed endpoint).
    #[error("OpenTelemetry exporter: {0}")]
    Exporter(String),
}

/// Running telemetry: flushes what is buffered when shut down.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Exports the spans still buffered and stops the exporting thread.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!("OpenTelemetry: spans left unexported at shutdown: {e}");
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// Starts exporting traces if the environment names an OTLP collector;
/// `instance` tells this server from the others of its ensemble
/// (`service.instance.id`, e.g. `server.2`).
pub fn init(instance: &str) -> Result<Option<Telemetry>, TelemetryError> {
    let endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
    let Some(endpoint) = endpoint.filter(|_| !disabled) else { return Ok(None) };
    if let Some(exporter) = env("OTEL_TRACES_EXPORTER").filter(|v| v != "otlp") {
        return Err(TelemetryError::Unsupported(format!("OTEL_TRACES_EXPORTER={exporter}: paddock exports traces with otlp only")));
    }
    let protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"));
    if let Some(protocol) = protocol.filter(|p| p != "http/protobuf") {
        return Err(TelemetryError::Unsupported(format!(
            "OTLP protocol {protocol}: paddock sends OTLP over HTTP with protobuf bodies only \
             (http/protobuf, a collector's port 4318)"
        )));
    }
    otlp_http::check_endpoint(&endpoint).map_err(TelemetryError::Unsupported)?;
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(otlp_http::Client)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    // The builder reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES;
    // paddock's own values only fill in what they leave out.
    let given = env("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default();
    let given: Vec<&str> = given.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, _)| k.trim()).collect();
    let ours = [
        ("service.name", "paddock".to_string()),
        ("service.instance.id", instance.to_string()),
        ("service.version", env!("CARGO_PKG_VERSION").to_string()),
    ];
    let mut resource = opentelemetry_sdk::Resource::builder();
    for (key, value) in ours {
        let named_by_env = key == "service.name" && env("OTEL_SERVICE_NAME").is_some();
        if !named_by_env && !given.contains(&key) {
            resource = resource.with_attribute(KeyValue::new(key, value));
        }
    }
    let resource = resource.build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let _ = TRACER.set(provider.tracer("paddock"));
    tracing::info!(%endpoint, "exporting OpenTelemetry traces (OTLP/HTTP)");
    Ok(Some(Telemetry { provider }))
}

/// A span's identity as it travels between members with a forwarded write
/// (W3C trace context: trace id, parent span id, flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceParent {
    /// The trace's id.
    pub trace_id: u128,
    /// The id of the span the receiver's span is a child of.
    pub span_id: u64,
    /// W3C trace flags (bit 0: sampled).
    pub flags: u8,
}

/// One span of a traced request, or nothing (tracing off, or this request
/// not sampled): then every method does nothing. Ends when its last clone
/// is dropped, or at [`Span::end`].
#[derive(Clone, Default)]
pub struct Span(Option<Context>);

impl Span {
    /// No span.
    #[inline]
    pub fn none() -> Span {
        Span(None)
    }

    /// A client request's span (`op`: its op code), the root of its trace;
    /// none if tracing is off or the sampler leaves this one out.
    #[inline]
    pub fn request(op: i32, session_id: i64, xid: i32) -> Span {
        match TRACER.get() {
            None => Span(None),
            Some(tracer) => Span::start_request(tracer, op, session_id, xid),
        }
    }

    /// `request` with tracing on: kept out of line, so the request path
    /// carries only the check above when it is off.
    #[cold]
    #[inline(never)]
    fn start_request(tracer: &SdkTracer, op: i32, session_id: i64, xid: i32) -> Span {
        let op = jute::OpCode::from_i32(op).map_or("unknown", jute::OpCode::name);
        let attrs = vec![
            KeyValue::new("rpc.system", "zookeeper"),
            KeyValue::new("rpc.method", op),
            KeyValue::new(attr::SESSION, format!("{session_id:#x}")),
            KeyValue::new(attr::XID, i64::from(xid)),
        ];
        let span = tracer.span_builder(op).with_kind(SpanKind::Server).with_attributes(attrs).start(tracer);
        Span::sampled(Context::new().with_span(span))
    }

    /// A span inside this one (none if this is none).
    pub fn child(&self, name: &'static str, kind: SpanKind) -> Span {
        let (Some(tracer), Some(cx)) = (TRACER.get(), &self.0) else { return Span(None) };
        let span = tracer.span_builder(name).with_kind(kind).start_with_context(tracer, cx);
        Span(Some(cx.with_span(span)))
    }

    /// A span whose parent is on another member (`parent`, sent with a
    /// forwarded write); none with tracing off here.
    pub fn remote_child(name: &'static str, parent: TraceParent) -> Span {
        let Some(tracer) = TRACER.get() else { return Span(None) };
        let remote = SpanContext::new(
            TraceId::from_bytes(parent.trace_id.to_be_bytes()),
            SpanId::from_bytes(parent.span_id.to_be_bytes()),
            TraceFlags::new(parent.flags),
            true,
            TraceState::NONE,
        );
        let cx = Context::new().with_remote_span_context(remote);
        let span = tracer.span_builder(name).with_kind(SpanKind::Server).start_with_context(tracer, &cx);
        Span::sampled(cx.with_span(span))
    }

    /// Keeps a new span only if it is sampled: the rest of its trace is
    /// then never built.
    fn sampled(cx: Context) -> Span {
        Span(Some(cx).filter(|cx| cx.span().span_context().is_sampled()))
    }

    /// True if this is a span (tracing on and this request sampled).
    #[inline]
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Sets an attribute.
    pub fn set(&self, key: &'static str, value: impl Into<Value>) {
        if let Some(cx) = &self.0 {
            cx.span().set_attribute(KeyValue::new(key, value));
        }
    }

    /// Records an event now.
    pub fn event(&self, name: &'static str, attributes: Vec<KeyValue>) {
        if let Some(cx) = &self.0 {
            cx.span().add_event(name, attributes);
        }
    }

    /// Marks the span failed, with why.
    pub fn fail(&self, why: impl Into<String>) {
        if let Some(cx) = &self.0 {
            cx.span().set_status(Status::error(why.into()));
        }
    }

    /// Records the znode a request names.
    #[inline]
    pub fn path(&self, path: Option<&str>) {
        if let (Some(path), true) = (path, self.is_on()) {
            self.set(attr::PATH, path.to_string());
        }
    }

    /// Records the reply: its zxid, and its error code unless 0. An error
    /// such as NoNode is an answer, not a failure of the span.
    #[inline]
    pub fn reply(&self, zxid: i64, err: i32) {
        if self.is_on() {
            self.set(attr::ZXID, format!("{zxid:#x}"));
            if err != 0 {
                self.set(attr::ERROR, jute::ErrorCode::from_i32(err).map_or("unknown", |e| e.name()));
            }
        }
    }

    /// Ends the span now (other clones then record nothing more).
    #[inline]
    pub fn end(self) {
        if let Some(cx) = self.0 {
            cx.span().end();
        }
    }

    /// What a member needs to continue this trace (none unless sampled).
    pub fn parent(&self) -> Option<TraceParent> {
        let cx = self.0.as_ref()?;
        let span = cx.span();
        let sc = span.span_context();
        Some(TraceParent {
            trace_id: u128::from_be_bytes(sc.trace_id().to_bytes()),
            span_id: u64::from_be_bytes(sc.span_id().to_bytes()),
            flags: sc.trace_flags().to_u8(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_nothing_while_tracing_is_off() {
        // No collector configured in unit tests: nothing is built.
        let span = Span::request(jute::OpCode::Create.code(), 1, 1);
        assert!(!span.is_on());
        assert!(span.parent().is_none());
        assert!(!span.child("forward to leader", SpanKind::Client).is_on());
        let parent = TraceParent { trace_id: 1, span_id: 2, flags: 1 };
        assert!(!Span::remote_child("log write", parent).is_on());
    }
}
