//! OpenTelemetry traces: a 3-member ensemble exports its spans over
//! OTLP/HTTP to a collector this test runs, and a write sent to a follower
//! shows as one trace: the request on the follower, its forward to the
//! leader, the leader's log write (a child across processes), and the
//! follower applying it before the reply.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{connect_retrying, rt, Ensemble};
use jute::CreateMode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use prost::Message;

/// One exported span, as the collector received it.
#[derive(Debug, Clone)]
struct Received {
    /// `service.instance.id` of the server that sent it.
    instance: String,
    service: String,
    /// `deployment.environment` and `service.version`, which the test sets
    /// through OTEL_RESOURCE_ATTRIBUTES.
    environment: String,
    version: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    name: String,
    kind: i32,
    attributes: HashMap<String, String>,
    events: Vec<String>,
}

fn text(attrs: &[KeyValue]) -> HashMap<String, String> {
    attrs
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::IntValue(i)) => i.to_string(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

/// A collector: accepts OTLP/HTTP protobuf posts on `/v1/traces` and keeps
/// their spans. Answers as an OpenTelemetry collector does (200, an empty
/// ExportTraceServiceResponse).
fn collector() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the collector");
    let addr = listener.local_addr().expect("collector address").to_string();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kept = spans.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new(stream.try_clone().expect("clone the socket"));
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut length = 0usize;
            let mut content_type = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap_or((&line, ""));
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "content-type" => content_type = value.trim().to_string(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            let read = reader.read_exact(&mut body);
            let ok = read.is_ok() && request_line.starts_with("POST /v1/traces ") && content_type == "application/x-protobuf";
            let decoded = ok.then(|| ExportTraceServiceRequest::decode(&body[..]).ok()).flatten();
            let status = if decoded.is_some() { "200 OK" } else { "400 Bad Request" };
            if let Some(request) = decoded {
                let mut kept = kept.lock().unwrap();
                for rs in request.resource_spans {
                    let resource = text(&rs.resource.map(|r| r.attributes).unwrap_or_default());
                    for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                        kept.push(Received {
                            instance: resource.get("service.instance.id").cloned().unwrap_or_default(),
                            service: resource.get("service.name").cloned().unwrap_or_default(),
                            environment: resource.get("deployment.environment").cloned().unwrap_or_default(),
                            version: resource.get("service.version").cloned().unwrap_or_default(),
                            trace_id: span.trace_id,
                            span_id: span.span_id,
                            parent_span_id: span.parent_span_id,
                            name: span.name,
                            kind: span.kind,
                            attributes: text(&span.attributes),
                            events: span.events.into_iter().map(|e| e.name).collect(),
                        });
                    }
                }
            }
            let answer = format!("HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (addr, spans)
}

/// Waits (at most 30 s) until `find` picks a span out of those received.
fn wait_for(spans: &Mutex<Vec<Received>>, what: &str, find: impl Fn(&Received) -> bool) -> Received {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(span) = spans.lock().unwrap().iter().find(|s| find(s)) {
            return span.clone();
        }
        if Instant::now() > deadline {
            let seen: Vec<_> = spans.lock().unwrap().iter().map(|s| (s.instance.clone(), s.name.clone())).collect();
            panic!("no span {what} within 30 s; received: {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// OTLP span kinds.
const KIND_INTERNAL: i32 = 1;
const KIND_SERVER: i32 = 2;
const KIND_CLIENT: i32 = 3;

#[test]
fn a_write_through_a_follower_is_one_trace_across_the_ensemble() {
    let (collector, spans) = collector();
    // This test binary starts only these servers: its environment is theirs.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"));
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
    std::env::set_var("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=paddock-test,service.version=from-env");
    let dir = tempfile::tempdir().unwrap();
    let e = Ensemble::start(dir.path(), 3);
    let leader = e.leader().expect("a leader");
    let follower = (1..=3).find(|&i| i != leader).unwrap();
    let (on_leader, on_follower) = (format!("server.{leader}"), format!("server.{follower}"));

    let czxid = rt().block_on(async {
        let c = connect_retrying(&e.addr(follower), 10_000).await;
        c.create("/traced", b"v1", CreateMode::Persistent).await.unwrap();
        let (data, stat) = c.get_data("/traced", false).await.unwrap();
        assert_eq!(data, b"v1");
        let l = connect_retrying(&e.addr(leader), 10_000).await;
        l.set_data("/traced", b"v2", -1).await.unwrap();
        stat.czxid
    });

    // The request, on the follower the client talks to.
    let create = wait_for(&spans, "create on the follower", |s| {
        s.name == "create" && s.instance == on_follower && s.attributes.get("zookeeper.path").map(String::as_str) == Some("/traced")
    });
    assert_eq!(create.kind, KIND_SERVER);
    assert_eq!(create.service, "paddock");
    assert_eq!(create.environment, "paddock-test", "OTEL_RESOURCE_ATTRIBUTES is kept beside paddock's own");
    assert_eq!(create.version, "from-env", "what OTEL_RESOURCE_ATTRIBUTES sets, paddock does not override");
    assert!(create.parent_span_id.is_empty(), "the request starts its trace");
    assert_eq!(create.attributes["zookeeper.zxid"], format!("{czxid:#x}"), "the span names the write's zxid");
    assert_eq!(create.attributes["rpc.system"], "zookeeper");
    assert!(create.attributes.contains_key("zookeeper.session_id"));

    // Its forward to the leader, on the follower.
    let forward = wait_for(&spans, "forward to leader", |s| s.name == "forward to leader" && s.parent_span_id == create.span_id);
    assert_eq!(forward.instance, on_follower);
    assert_eq!(forward.trace_id, create.trace_id);
    assert_eq!(forward.kind, KIND_CLIENT);
    assert_eq!(forward.attributes["paddock.leader"], leader.to_string());

    // The leader's log write, a child of the forward across processes.
    let log_write = wait_for(&spans, "log write on the leader", |s| s.name == "log write" && s.parent_span_id == forward.span_id);
    assert_eq!(log_write.instance, on_leader);
    assert_eq!(log_write.trace_id, create.trace_id);
    assert_eq!(log_write.events, ["proposed", "durable", "applied"], "the write's way through the leader's log");
    assert!(log_write.attributes["raft.log_index"].parse::<u64>().unwrap() > 0);

    // Back on the follower: applying it there before the reply.
    let apply = wait_for(&spans, "apply here", |s| s.name == "apply here" && s.parent_span_id == create.span_id);
    assert_eq!(apply.instance, on_follower);
    assert_eq!(apply.kind, KIND_INTERNAL);

    // A read is served where it arrives: a span with no children.
    let read = wait_for(&spans, "getData on the follower", |s| s.name == "getData" && s.instance == on_follower);
    assert_eq!(read.attributes["zookeeper.path"], "/traced");
    assert!(read.trace_id != create.trace_id);

    // A write sent to the leader goes to its log directly.
    let set = wait_for(&spans, "setData on the leader", |s| s.name == "setData" && s.instance == on_leader);
    let local = wait_for(&spans, "the leader's own log write", |s| s.name == "log write" && s.parent_span_id == set.span_id);
    assert_eq!(local.instance, on_leader);
    assert_eq!(local.trace_id, set.trace_id);

    // Sessions are traced from their creation.
    wait_for(&spans, "createSession", |s| s.name == "createSession" && s.instance == on_follower);
    drop(e);
}
