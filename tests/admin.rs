//! The HTTP admin server answers ZooKeeper's AdminServer commands in JSON,
//! and bad requests to it cost nothing but their own connection.

mod common;

use common::{rt, Paddock};
use jute::CreateMode;
use paddock::client::Client;
use serde_json::Value;

/// `GET /commands/<name>`, checked to be a 200 JSON answer.
fn command(server: &Paddock, name: &str) -> Value {
    let (status, body) = server.admin_get(&format!("/commands/{name}"));
    assert_eq!(status, 200, "{name}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}: {body}"))
}

#[test]
fn commands_report_the_live_server_in_zookeepers_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    rt().block_on(async {
        let c = Client::connect(&server.addr, 30_000).await.unwrap();
        c.create("/a", b"x", CreateMode::Persistent).await.unwrap();
        c.create("/a/e", b"", CreateMode::Ephemeral).await.unwrap();
        c.get_data("/a", true).await.unwrap();
        let sid = c.session_id;

        let ruok = command(&server, "ruok");
        assert_eq!((ruok["command"].as_str(), ruok["error"].is_null()), (Some("ruok"), true), "{ruok}");

        // The same figures as mntr, as numbers, under mntr's names without zk_.
        let monitor = command(&server, "monitor");
        assert_eq!(monitor["command"], "monitor");
        assert_eq!(monitor["znode_count"].as_i64(), server.mntr("zk_znode_count"), "{monitor}");
        assert_eq!(monitor["ephemerals_count"], 1, "{monitor}");
        assert_eq!(monitor["server_state"], "standalone", "{monitor}");
        assert!(monitor["avg_latency"].is_f64(), "{monitor}");
        // Four-letter names are accepted too.
        assert_eq!(command(&server, "mntr")["command"], "monitor");

        let conns = command(&server, "connections");
        let mine = conns["connections"].as_array().unwrap().iter().find(|c| c["session_id"] == sid).cloned();
        let mine = mine.unwrap_or_else(|| panic!("session {sid:#x} not in {conns}"));
        assert_eq!(mine["last_operation"], "GETD", "{mine}");
        assert_eq!(mine["session_timeout"], 30_000, "{mine}");

        let dump = command(&server, "dump");
        assert_eq!(dump["session_id_to_ephemeral_paths"][sid.to_string()], serde_json::json!(["/a/e"]), "{dump}");
        let expiring: Vec<&Value> = dump["expiry_time_to_session_ids"].as_object().unwrap().values().collect();
        assert!(expiring.iter().any(|ids| ids.as_array().unwrap().contains(&sid.into())), "{dump}");

        let watches = command(&server, "watches");
        assert_eq!(watches["session_id_to_watched_paths"][sid.to_string()], serde_json::json!(["/a"]), "{watches}");
        let by_path = command(&server, "watches_by_path");
        assert_eq!(by_path["path_to_session_ids"]["/a"], serde_json::json!([sid]), "{by_path}");
        assert_eq!(command(&server, "watch_summary")["num_total_watches"], 1);

        // The port actually bound, not the configured 0.
        let conf = command(&server, "configuration");
        let port: u16 = server.addr.rsplit_once(':').unwrap().1.parse().unwrap();
        assert_eq!(conf["client_port"], port, "{conf}");

        let leader = command(&server, "leader");
        assert_eq!((leader["is_leader"].as_bool(), leader["leader_id"].as_u64()), (Some(true), Some(1)), "{leader}");

        let stats = command(&server, "server_stats");
        assert_eq!(stats["server_stats"]["last_processed_zxid"].as_i64(), Some(3), "{stats}");
        assert_eq!(stats["node_count"].as_i64(), server.mntr("zk_znode_count"), "{stats}");
        command(&server, "stat_reset");
        assert_eq!(command(&server, "server_stats")["server_stats"]["packets_received"], 0);
        c.close().await.unwrap();
    });
}

#[test]
fn unknown_commands_paths_and_methods_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    let unknown = command(&server, "nosuch");
    assert_eq!(unknown["error"], "Unknown command: nosuch", "{unknown}");
    let (status, list) = server.admin_get("/commands");
    assert_eq!(status, 200);
    assert!(list.contains("<a href=\"/commands/monitor\">monitor</a>"), "{list}");
    assert_eq!(server.admin_get("/elsewhere").0, 404);
    let post = server.admin_raw(b"POST /commands/ruok HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
}

#[test]
fn bad_requests_close_only_their_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    let garbage = server.admin_raw(b"\x00\xff\xfe not http at all\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 4"), "{garbage:?}");
    // A head that never ends is cut off at its limit, not buffered forever.
    let endless = server.admin_raw(&vec![b'a'; 64 * 1024]);
    assert!(endless.starts_with("HTTP/1.1 431 "), "{endless:?}");
    // A client that hangs up half-way is simply gone.
    drop(std::net::TcpStream::connect(server.admin.as_ref().unwrap()).unwrap());
    assert_eq!(command(&server, "ruok")["error"], Value::Null);
    assert!(server.four_letter("ruok").contains("imok"));
}

/// Each connection to an HTTP port holds a descriptor from the share kept
/// back for storage: past `MAX_CONNECTIONS` open at once, a new one is
/// answered 503 and closed, clients are served all the while, and the port
/// answers again once the others are gone.
#[test]
fn idle_connections_beyond_the_limit_are_refused() {
    use paddock::admin::http::MAX_CONNECTIONS;
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let server = Paddock::start(dir.path());
    let addr = server.admin.clone().expect("the admin server runs");
    let idle: Vec<_> = (0..MAX_CONNECTIONS).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    let mut beyond = std::net::TcpStream::connect(&addr).unwrap();
    beyond.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    let _ = beyond.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
    assert!(server.four_letter("ruok").contains("imok"));
    drop(idle);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.admin_raw(b"GET /commands/ruok HTTP/1.1\r\nHost: localhost\r\n\r\n").starts_with("HTTP/1.1 200 ") {
        assert!(std::time::Instant::now() < deadline, "the admin port stayed busy");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_taken_admin_port_leaves_clients_served() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let server = Paddock::start_with(dir.path(), &["--admin-port", &port]);
    assert_eq!(server.admin, None);
    assert!(server.four_letter("ruok").contains("imok"));
}

#[test]
fn prometheus_metrics_carry_the_monitor_figures() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let cfg = dir.path().join("zoo.cfg");
    let text = format!(
        "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\nmetricsProvider.httpPort={port}\n"
    );
    std::fs::write(&cfg, text).unwrap();
    let server = Paddock::start_with(&dir.path().join("data"), &["--config", cfg.to_str().unwrap()]);
    rt().block_on(async {
        let c = Client::connect(&server.addr, 30_000).await.unwrap();
        c.create("/m", b"x", CreateMode::Persistent).await.unwrap();
    });
    let addr = format!("127.0.0.1:{port}");
    let (status, body) = common::http_get(&addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    // Every sample is `name value` under its TYPE line, as Prometheus parses it.
    let mut samples = std::collections::HashMap::new();
    let mut typed = std::collections::HashSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split_whitespace().next().unwrap().to_string());
        } else if !line.starts_with('#') {
            let (name, value) = line.split_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{name}");
            assert!(typed.contains(name), "{name} has no TYPE line");
            samples.insert(name.to_string(), value.parse::<f64>().unwrap_or_else(|e| panic!("{line}: {e}")));
        }
    }
    assert_eq!(samples.get("znode_count").copied(), server.mntr("zk_znode_count").map(|n| n as f64), "{body}");
    for name in ["num_alive_connections", "watch_count", "approximate_data_size", "avg_latency", "uptime"] {
        assert!(samples.contains_key(name), "{name} missing:\n{body}");
    }
    assert_eq!(common::http_get(&addr, "/commands/ruok").0, 404);
    server.stop();
}
