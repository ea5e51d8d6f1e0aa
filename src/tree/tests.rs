//! Tests of the tree's transaction semantics against what ZooKeeper 3.8 does.

use super::*;

fn ctx(zxid: i64) -> TxnContext {
    TxnContext { zxid, time_ms: 1_000 + zxid, session_id: 0 }
}

fn create(tree: &mut DataTree, zxid: i64, path: &str, sequential: bool) -> TxnOutcome {
    let op = CreateOp { path: path.into(), data: Some(b"d".to_vec()), acl: AclEntry::open(), kind: CreateKind::Persistent, sequential };
    tree.apply(ctx(zxid), &Txn::Create(op), &mut Changes::default())
}

fn created_path(outcome: TxnOutcome) -> String {
    match outcome {
        TxnOutcome::Created { path, .. } => path,
        other => panic!("expected a create, got {other:?}"),
    }
}

#[test]
fn builtin_nodes_exist() {
    let tree = DataTree::new();
    for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        assert!(tree.get(p).is_some(), "{p}");
    }
}

#[test]
fn builtin_cversions_match_zookeeper() {
    // ZooKeeper 3.8 reports 2 x creations - children: -1 for a fresh `/`,
    // -2 for `/zookeeper`; each child created or deleted adds one.
    let mut tree = DataTree::new();
    assert_eq!(tree.get("/").unwrap().wire_stat().cversion, -1);
    assert_eq!(tree.get("/zookeeper").unwrap().wire_stat().cversion, -2);
    assert_eq!(tree.get("/zookeeper/quota").unwrap().wire_stat().cversion, 0);
    create(&mut tree, 1, "/a", false);
    assert_eq!(created_path(create(&mut tree, 2, "/s", true)), "/s0000000001");
    tree.apply(ctx(3), &Txn::Delete { path: "/a".into(), version: -1 }, &mut Changes::default());
    let root = tree.get("/").unwrap().wire_stat();
    assert_eq!((root.cversion, root.num_children), (2, 2));
}

#[test]
fn sequential_suffix_counts_creations_only() {
    let mut tree = DataTree::new();
    create(&mut tree, 1, "/p", false);
    assert_eq!(created_path(create(&mut tree, 2, "/p/a", true)), "/p/a0000000000");
    create(&mut tree, 3, "/p/x", false);
    let out = tree.apply(ctx(4), &Txn::Delete { path: "/p/x".into(), version: -1 }, &mut Changes::default());
    assert_eq!(out, TxnOutcome::Deleted);
    assert_eq!(created_path(create(&mut tree, 5, "/p/a", true)), "/p/a0000000002");
    let p = tree.get("/p").unwrap().wire_stat();
    assert_eq!(p.cversion, 4);
    assert_eq!(p.num_children, 2);
    assert_eq!(p.pzxid, 5);
}

#[test]
fn stat_bookkeeping_and_versions() {
    let mut tree = DataTree::new();
    create(&mut tree, 7, "/n", false);
    let set = Txn::SetData { path: "/n".into(), data: Some(b"hello".to_vec()), version: 0 };
    let out = tree.apply(ctx(8), &set, &mut Changes::default());
    let TxnOutcome::Stat(stat) = out else { panic!("{out:?}") };
    assert_eq!((stat.czxid, stat.mzxid, stat.version, stat.data_length), (7, 8, 1, 5));
    assert_eq!(stat.ctime, 1_007);
    assert_eq!(stat.mtime, 1_008);
    let stale = tree.apply(ctx(9), &set, &mut Changes::default());
    assert_eq!(stale, TxnOutcome::Error(ZkError::BadVersion.raw()));
    assert_eq!(create(&mut tree, 10, "/n", false), TxnOutcome::Error(ZkError::NodeExists.raw()));
    assert_eq!(create(&mut tree, 11, "/missing/x", false), TxnOutcome::Error(ZkError::NoNode.raw()));
    assert_eq!(create(&mut tree, 12, "bad", false), TxnOutcome::Error(jute::ErrorCode::BadArguments.code()));
}

#[test]
fn failed_multi_changes_nothing_and_reports_per_op() {
    let mut tree = DataTree::new();
    create(&mut tree, 1, "/m", false);
    let before = tree.get("/m").unwrap().wire_stat();
    let ops = vec![
        Txn::Create(CreateOp { path: "/m/a".into(), data: None, acl: AclEntry::open(), kind: CreateKind::Persistent, sequential: true }),
        Txn::SetData { path: "/m".into(), data: Some(b"x".to_vec()), version: 0 },
        Txn::Check { path: "/m".into(), version: 7 },
        Txn::Delete { path: "/m".into(), version: -1 },
    ];
    let mut changes = Changes::default();
    let out = tree.apply(ctx(2), &Txn::Multi(ops), &mut changes);
    assert_eq!(
        out,
        TxnOutcome::Multi(vec![
            TxnOutcome::Error(0),
            TxnOutcome::Error(0),
            TxnOutcome::Error(ZkError::BadVersion.raw()),
            TxnOutcome::Error(ZkError::RuntimeInconsistency.raw()),
        ])
    );
    assert!(changes.triggers.is_empty());
    assert_eq!(tree.get("/m").unwrap().wire_stat(), before);
    assert_eq!(tree.get("/m").unwrap().data(), Some(&b"d"[..]));
    // The rolled-back sequential create did not consume a suffix.
    assert_eq!(created_path(create(&mut tree, 3, "/m/a", true)), "/m/a0000000000");
}

#[test]
fn closing_a_session_deletes_its_ephemerals() {
    let mut tree = DataTree::new();
    let out = tree.apply(ctx(1), &Txn::CreateSession { timeout_ms: 10_000, passwd: vec![1; 16] }, &mut Changes::default());
    let TxnOutcome::SessionCreated { session_id, .. } = out else { panic!("{out:?}") };
    let op = CreateOp { path: "/e".into(), data: None, acl: AclEntry::open(), kind: CreateKind::Ephemeral, sequential: false };
    let c = TxnContext { zxid: 2, time_ms: 5, session_id };
    assert!(matches!(tree.apply(c, &Txn::Create(op.clone()), &mut Changes::default()), TxnOutcome::Created { .. }));
    assert_eq!(tree.get("/e").unwrap().wire_stat().ephemeral_owner, session_id);
    let child = CreateOp { path: "/e/c".into(), ..op.clone() };
    let c3 = TxnContext { zxid: 3, ..c };
    assert_eq!(tree.apply(c3, &Txn::Create(child), &mut Changes::default()), TxnOutcome::Error(ZkError::NoChildrenForEphemerals.raw()));
    let mut changes = Changes::default();
    tree.apply(TxnContext { zxid: 4, ..c }, &Txn::CloseSession, &mut changes);
    assert!(tree.get("/e").is_none());
    assert!(tree.session(session_id).is_none());
    assert!(changes.triggers.contains(&Trigger::open(Event::Deleted, "/e")));
    // A closed session can no longer create ephemerals.
    let late = tree.apply(TxnContext { zxid: 5, ..c }, &Txn::Create(op), &mut Changes::default());
    assert_eq!(late, TxnOutcome::Error(ZkError::SessionExpired.raw()));
}

#[test]
fn containers_and_ttl_nodes_are_reaped_only_when_due() {
    let mut tree = DataTree::new();
    let mk = |path: &str, kind| Txn::Create(CreateOp { path: path.into(), data: None, acl: AclEntry::open(), kind, sequential: false });
    let c = |zxid, time_ms| TxnContext { zxid, time_ms, session_id: 0 };
    tree.apply(c(1, 1_000), &mk("/c", CreateKind::Container), &mut Changes::default());
    tree.apply(c(2, 1_000), &mk("/t", CreateKind::Ttl(500)), &mut Changes::default());
    // A fresh container has never had children: it stays.
    assert!(!tree.is_reapable("/c", 5_000));
    assert_eq!(tree.get("/c").unwrap().wire_stat().ephemeral_owner, 0);
    tree.apply(c(3, 1_000), &mk("/c/x", CreateKind::Persistent), &mut Changes::default());
    assert!(!tree.is_reapable("/c", 5_000));
    tree.apply(c(4, 1_000), &Txn::Delete { path: "/c/x".into(), version: -1 }, &mut Changes::default());
    assert!(tree.is_reapable("/c", 5_000));
    // TTL: not before mtime + ttl.
    assert!(!tree.is_reapable("/t", 1_400));
    let mut due = tree.reapable(1_600);
    due.sort();
    assert_eq!(due, vec!["/c".to_string(), "/t".to_string()]);
    // Reap re-checks at apply time: a TTL node touched since is kept.
    tree.apply(c(5, 1_550), &Txn::SetData { path: "/t".into(), data: Some(vec![1]), version: -1 }, &mut Changes::default());
    assert_eq!(tree.apply(c(6, 1_600), &Txn::Reap { path: "/t".into() }, &mut Changes::default()), TxnOutcome::Nothing);
    assert_eq!(tree.apply(c(7, 2_100), &Txn::Reap { path: "/t".into() }, &mut Changes::default()), TxnOutcome::Deleted);
    assert_eq!(tree.apply(c(8, 2_100), &Txn::Reap { path: "/c".into() }, &mut Changes::default()), TxnOutcome::Deleted);
    assert!(tree.get("/c").is_none() && tree.get("/t").is_none());
}

/// Every node's path as the tree rebuilds it, sorted.
fn all_paths(tree: &DataTree) -> Vec<String> {
    let mut paths = Vec::new();
    tree.walk(|path, node| {
        assert_eq!(tree.get(path).map(|n| n as *const Node), Some(node as *const Node), "{path}");
        paths.push(path.to_string());
    });
    paths.sort();
    paths
}

#[test]
fn paths_are_rebuilt_from_names_and_parents() {
    let mut tree = DataTree::new();
    for (zxid, p) in ["/a", "/a/b", "/a/b/c", "/ab", "/a/bc"].into_iter().enumerate() {
        create(&mut tree, zxid as i64 + 1, p, false);
    }
    let expected = ["/", "/a", "/a/b", "/a/b/c", "/a/bc", "/ab", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"];
    assert_eq!(all_paths(&tree), expected);
    assert_eq!(tree.child_names(tree.get("/a").unwrap()), ["b", "bc"]);
    let mut changes = Changes::default();
    tree.apply(ctx(9), &Txn::SetData { path: "/a/b/c".into(), data: None, version: -1 }, &mut changes);
    assert_eq!(changes.nodes.iter().filter_map(|id| tree.path_of(*id)).collect::<Vec<_>>(), ["/a/b/c"]);
    for bad in ["", "a", "//", "/a/", "/a//b", "/a/b/c/d", "/b"] {
        assert!(tree.get(bad).is_none(), "{bad:?}");
    }
}

#[test]
fn a_failed_multi_puts_deleted_parents_and_children_back_in_place() {
    let mut tree = DataTree::new();
    for (zxid, p) in ["/p", "/p/q", "/p/q/r", "/p/s"].into_iter().enumerate() {
        create(&mut tree, zxid as i64 + 1, p, false);
    }
    let before = all_paths(&tree);
    let stats: Vec<_> = before.iter().map(|p| tree.get(p).unwrap().wire_stat()).collect();
    let mk = |path: &str| {
        Txn::Create(CreateOp { path: path.into(), data: None, acl: AclEntry::open(), kind: CreateKind::Persistent, sequential: false })
    };
    // The deleted nodes' ids are reused by the creates before the failure.
    let ops = vec![
        Txn::Delete { path: "/p/q/r".into(), version: -1 },
        Txn::Delete { path: "/p/q".into(), version: -1 },
        mk("/x"),
        mk("/p/q2"),
        Txn::Check { path: "/p".into(), version: 99 },
    ];
    let out = tree.apply(ctx(10), &Txn::Multi(ops), &mut Changes::default());
    assert!(matches!(out, TxnOutcome::Multi(ref r) if r[4] == TxnOutcome::Error(ZkError::BadVersion.raw())), "{out:?}");
    assert_eq!(all_paths(&tree), before);
    assert_eq!(before.iter().map(|p| tree.get(p).unwrap().wire_stat()).collect::<Vec<_>>(), stats);
    assert_eq!(tree.child_names(tree.get("/p").unwrap()), ["q", "s"]);
    // The restored nodes are linked under the right parents.
    create(&mut tree, 11, "/p/q/r/t", false);
    assert!(tree.get("/p/q/r/t").is_some());
    assert_eq!(tree.get("/p/q").unwrap().wire_stat().num_children, 1);
}

fn put(tree: &mut DataTree, zxid: i64, path: &str, data: &[u8]) -> TxnOutcome {
    let op =
        CreateOp { path: path.into(), data: Some(data.to_vec()), acl: AclEntry::open(), kind: CreateKind::Persistent, sequential: false };
    tree.apply(ctx(zxid), &Txn::Create(op), &mut Changes::default())
}

fn data_of(tree: &DataTree, path: &str) -> String {
    String::from_utf8_lossy(tree.get(path).and_then(|n| n.data()).unwrap_or_default()).into_owned()
}

#[test]
fn quota_usage_is_kept_as_zookeeper_keeps_it() {
    // What zkCli's `setquota -n 5 /q` writes, then what ZooKeeper 3.8 shows.
    let mut tree = DataTree::new();
    put(&mut tree, 1, "/q", b"hello");
    put(&mut tree, 2, "/q/a", b"1");
    put(&mut tree, 3, "/zookeeper/quota/q", b"");
    put(&mut tree, 4, "/zookeeper/quota/q/zookeeper_limits", b"count=5,bytes=-1");
    let created = put(&mut tree, 5, "/zookeeper/quota/q/zookeeper_stats", b"c=0");
    let stats = "/zookeeper/quota/q/zookeeper_stats";
    assert_eq!(data_of(&tree, stats), "count=2,bytes=6");
    // The create's answer describes the data sent, as ZooKeeper's does.
    assert!(matches!(created, TxnOutcome::Created { ref stat, .. } if stat.data_length == 3), "{created:?}");
    put(&mut tree, 6, "/q/b", b"xyz");
    assert_eq!(data_of(&tree, stats), "count=3,bytes=9");
    let set = Txn::SetData { path: "/q/a".into(), data: Some(b"1234".to_vec()), version: -1 };
    tree.apply(ctx(7), &set, &mut Changes::default());
    assert_eq!(data_of(&tree, stats), "count=3,bytes=12");
    tree.apply(ctx(8), &Txn::Delete { path: "/q/b".into(), version: -1 }, &mut Changes::default());
    assert_eq!(data_of(&tree, stats), "count=2,bytes=9");
    // Only the data changes: the stats node's Stat stays as created.
    let stat = tree.get(stats).unwrap().wire_stat();
    assert_eq!((stat.version, stat.mzxid), (0, 5));
    // Outside the quota'd path nothing is counted.
    put(&mut tree, 9, "/other", b"zz");
    assert_eq!(data_of(&tree, stats), "count=2,bytes=9");
    // A failed multi leaves the usage as it was.
    let ok = Txn::Create(CreateOp {
        path: "/q/c".into(),
        data: Some(b"cc".to_vec()),
        acl: AclEntry::open(),
        kind: CreateKind::Persistent,
        sequential: false,
    });
    let bad = Txn::Delete { path: "/q/missing".into(), version: -1 };
    tree.apply(ctx(10), &Txn::Multi(vec![ok, bad]), &mut Changes::default());
    assert_eq!(data_of(&tree, stats), "count=2,bytes=9");
}

#[test]
fn a_change_counts_towards_the_deepest_quota_above_it() {
    let mut tree = DataTree::new();
    put(&mut tree, 1, "/q", b"");
    put(&mut tree, 2, "/q/a", b"");
    for (zxid, dir) in [(3, "/zookeeper/quota/q"), (4, "/zookeeper/quota/q/a")] {
        put(&mut tree, zxid, dir, b"");
    }
    for (zxid, quota) in [(5, "/zookeeper/quota/q"), (7, "/zookeeper/quota/q/a")] {
        put(&mut tree, zxid, &format!("{quota}/zookeeper_limits"), b"count=-1,bytes=100");
        put(&mut tree, zxid + 1, &format!("{quota}/zookeeper_stats"), b"");
    }
    // Each stats node started from its own subtree.
    assert_eq!(data_of(&tree, "/zookeeper/quota/q/zookeeper_stats"), "count=2,bytes=0");
    assert_eq!(data_of(&tree, "/zookeeper/quota/q/a/zookeeper_stats"), "count=1,bytes=0");
    put(&mut tree, 9, "/q/a/x", b"four");
    assert_eq!(data_of(&tree, "/zookeeper/quota/q/zookeeper_stats"), "count=2,bytes=0");
    assert_eq!(data_of(&tree, "/zookeeper/quota/q/a/zookeeper_stats"), "count=2,bytes=4");
}

#[test]
fn an_import_loads_only_into_a_fresh_tree_and_continues_its_zxids() {
    use txn::ImportChunk;
    let node = |zxid: i64, kind: NodeKind| StoredNode::new(Some(b"z".to_vec()), AclEntry::open(), kind, zxid, 5);
    let first = ImportChunk {
        first: true,
        nodes: vec![("/a".into(), node(0x1_0000_0002, NodeKind::Persistent))],
        sessions: vec![],
        last_zxid: None,
    };
    let session = SessionInfo { timeout_ms: 30_000, passwd: vec![1; 16], ephemerals: BTreeSet::new() };
    let last = ImportChunk {
        first: false,
        nodes: vec![("/a/e".into(), node(0x1_0000_0003, NodeKind::Ephemeral(77)))],
        sessions: vec![(77, session)],
        last_zxid: Some(0x1_0000_0009),
    };
    // A tree that applied anything refuses the first part.
    let mut used = DataTree::new();
    create(&mut used, 1, "/x", false);
    assert!(matches!(used.apply(ctx(2), &Txn::Import(first.clone()), &mut Changes::default()), TxnOutcome::Error(_)));
    assert!(used.get("/a").is_none());

    let mut tree = DataTree::new();
    let mut changes = Changes::default();
    assert_eq!(tree.apply(ctx(1), &Txn::Import(first), &mut changes), TxnOutcome::Nothing);
    assert_eq!(tree.apply(ctx(2), &Txn::Import(last), &mut changes), TxnOutcome::Nothing);
    assert_eq!(changes.nodes.len(), 2, "both nodes are persisted");
    assert_eq!(changes.sessions, vec![77]);
    // The next epoch, as ZooKeeper's after an election.
    assert_eq!(tree.last_zxid(), 0x2_0000_0000);
    assert_eq!(tree.get("/a").unwrap().stat.czxid, 0x1_0000_0002);
    // The ephemeral belongs to its session: closing it deletes the node.
    let close = TxnContext { zxid: 0x2_0000_0001, time_ms: 9, session_id: 77 };
    tree.apply(close, &Txn::CloseSession, &mut Changes::default());
    assert!(tree.get("/a/e").is_none());
    assert_eq!(tree.get("/a").unwrap().stat.pzxid, 0x2_0000_0001);
    // A second import (another member's, late) is refused: it would mix.
    let again = ImportChunk { first: true, nodes: vec![], sessions: vec![], last_zxid: Some(1) };
    assert!(matches!(tree.apply(ctx(0x2_0000_0002), &Txn::Import(again.clone()), &mut Changes::default()), TxnOutcome::Error(_)));
    // Sessions opened before an import do not stop it.
    let mut sessions_only = DataTree::new();
    let open = Txn::CreateSession { timeout_ms: 5_000, passwd: vec![0; 16] };
    sessions_only.apply(ctx(1), &open, &mut Changes::default());
    assert_eq!(sessions_only.apply(ctx(2), &Txn::Import(again), &mut Changes::default()), TxnOutcome::Nothing);
}
