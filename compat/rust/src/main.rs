//! zookeeper-client 0.9 (an async Rust client written from the protocol, not
//! a binding of the C or Java client) against one server:
//!
//!     paddock-compat-rust HOST:PORT
//!
//! One line per check, `PASS rust.name` or `FAIL rust.name: reason`; exit 0
//! when all pass. Every check holds on the real ZooKeeper 3.8 too.

use std::future::Future;
use std::time::Duration;

use zk::{Acls, AddWatchMode, Client, CreateMode, Error, EventType, MultiReadResult, MultiWriteResult};
use zookeeper_client as zk;

type Checked = Result<(), String>;

/// Fails the check with `what` unless `cond` holds.
fn ensure(cond: bool, what: impl Into<String>) -> Checked {
    if cond {
        Ok(())
    } else {
        Err(what.into())
    }
}

/// Turns a client error into the check's failure, saying which call it was.
fn at<T>(call: &str, r: Result<T, Error>) -> Result<T, String> {
    r.map_err(|e| format!("{call}: {e}"))
}

/// Waits for a watch event or a reply for at most 10 s.
async fn within<T>(what: &str, f: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(Duration::from_secs(10), f).await.map_err(|_| format!("{what}: nothing within 10 s"))
}

struct Ctx {
    server: String,
    root: String,
    a: Client,
    b: Client,
}

impl Ctx {
    fn path(&self, rel: &str) -> String {
        format!("{}{rel}", self.root)
    }
}

fn open() -> zk::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

async fn crud(c: &Ctx) -> Checked {
    let p = c.path("/crud");
    let (stat, _) = at("create", c.a.create(&p, b"one", &open()).await)?;
    ensure(stat.version == 0 && stat.data_length == 3, format!("create's stat {stat:?}"))?;
    ensure(matches!(c.a.create(&p, b"", &open()).await, Err(Error::NodeExists)), "a second create is NodeExists")?;
    let (data, _) = at("get_data", c.b.get_data(&p).await)?;
    ensure(data == b"one", "data read back")?;
    let stat = at("set_data", c.a.set_data(&p, b"two", Some(0)).await)?;
    ensure(stat.version == 1, "set bumps the version")?;
    ensure(matches!(c.a.set_data(&p, b"x", Some(0)).await, Err(Error::BadVersion)), "a stale set is BadVersion")?;
    at("create child", c.a.create(&c.path("/crud/kid"), b"", &open()).await)?;
    ensure(matches!(c.a.delete(&p, None).await, Err(Error::NotEmpty)), "deleting a parent is NotEmpty")?;
    at("delete child", c.a.delete(&c.path("/crud/kid"), None).await)?;
    at("delete", c.a.delete(&p, Some(1)).await)?;
    ensure(matches!(c.b.get_data(&p).await, Err(Error::NoNode)), "gone after delete")?;
    ensure(at("check_stat", c.b.check_stat(&p).await)?.is_none(), "exists says no")
}

async fn sequential_ephemeral(c: &Ctx) -> Checked {
    let dir = c.path("/seq");
    at("create dir", c.a.create(&dir, b"", &open()).await)?;
    let mode = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    let mut seqs = vec![];
    for _ in 0..3 {
        let (_, seq) = at("create seq", c.a.create(&format!("{dir}/n-"), b"", &mode).await)?;
        seqs.push(seq.to_string());
    }
    ensure(seqs == ["0000000000", "0000000001", "0000000002"], format!("sequence numbers {seqs:?}"))?;
    let mut kids = at("list_children", c.b.list_children(&dir).await)?;
    kids.sort();
    ensure(kids == ["n-0000000000", "n-0000000001", "n-0000000002"], format!("children {kids:?}"))?;
    let mut mine = at("list_ephemerals", c.a.list_ephemerals(&c.root).await)?;
    mine.sort();
    ensure(mine.len() == 3 && mine[0] == format!("{dir}/n-0000000000"), format!("getEphemerals {mine:?}"))?;
    let n = at("count_descendants_number", c.b.count_descendants_number(&dir).await)?;
    ensure(n == 3, format!("getAllChildrenNumber {n}"))?;
    let (_, stat) = at("get_data", c.b.get_data(&format!("{dir}/n-0000000000")).await)?;
    ensure(stat.ephemeral_owner == c.a.session_id().0, "the ephemeral's owner is the session")
}

async fn oneshot_watches(c: &Ctx) -> Checked {
    let p = c.path("/w");
    let (stat, created) = at("check_and_watch_stat", c.b.check_and_watch_stat(&p).await)?;
    ensure(stat.is_none(), "not there yet")?;
    at("create", c.a.create(&p, b"1", &open()).await)?;
    let ev = within("created event", created.changed()).await?;
    ensure(ev.event_type == EventType::NodeCreated && ev.path == p, format!("{ev:?}"))?;
    let (_, _, data_watch) = at("get_and_watch_data", c.b.get_and_watch_data(&p).await)?;
    let (_, _, child_watch) = at("get_and_watch_children", c.b.get_and_watch_children(&p).await)?;
    at("set_data", c.a.set_data(&p, b"2", None).await)?;
    let ev = within("data event", data_watch.changed()).await?;
    ensure(ev.event_type == EventType::NodeDataChanged && ev.path == p, format!("{ev:?}"))?;
    at("create child", c.a.create(&c.path("/w/k"), b"", &open()).await)?;
    let ev = within("child event", child_watch.changed()).await?;
    ensure(ev.event_type == EventType::NodeChildrenChanged && ev.path == p, format!("{ev:?}"))
}

async fn persistent_recursive_watch(c: &Ctx) -> Checked {
    let p = c.path("/rec");
    at("create", c.a.create(&p, b"", &open()).await)?;
    let mut w = at("watch", c.b.watch(&p, AddWatchMode::PersistentRecursive).await)?;
    at("create child", c.a.create(&c.path("/rec/a"), b"", &open()).await)?;
    at("create grandchild", c.a.create(&c.path("/rec/a/b"), b"", &open()).await)?;
    at("set grandchild", c.a.set_data(&c.path("/rec/a/b"), b"x", None).await)?;
    at("delete grandchild", c.a.delete(&c.path("/rec/a/b"), None).await)?;
    let mut seen = vec![];
    for _ in 0..4 {
        let ev = within("recursive event", w.changed()).await?;
        seen.push((ev.event_type, ev.path.trim_start_matches(&c.root).to_string()));
    }
    let want = [
        (EventType::NodeCreated, "/rec/a"),
        (EventType::NodeCreated, "/rec/a/b"),
        (EventType::NodeDataChanged, "/rec/a/b"),
        (EventType::NodeDeleted, "/rec/a/b"),
    ];
    ensure(seen.iter().map(|(t, p)| (*t, p.as_str())).eq(want), format!("events {seen:?}"))?;
    at("remove watch", w.remove().await)
}

async fn multi(c: &Ctx) -> Checked {
    let p = c.path("/m");
    at("create", c.a.create(&p, b"", &open()).await)?;
    let mut w = c.a.new_multi_writer();
    at("add_check_version", w.add_check_version(&p, 0))?;
    at("add_create", w.add_create(&c.path("/m/x"), b"x", &open()))?;
    at("add_set_data", w.add_set_data(&p, b"m", Some(0)))?;
    at("add_delete", w.add_delete(&c.path("/m/x"), None))?;
    let results = w.commit().await.map_err(|e| format!("commit: {e:?}"))?;
    ensure(results.len() == 4, format!("{results:?}"))?;
    ensure(matches!(&results[1], MultiWriteResult::Create { path, .. } if *path == c.path("/m/x")), format!("{results:?}"))?;
    ensure(matches!(&results[2], MultiWriteResult::SetData { stat } if stat.version == 1), format!("{results:?}"))?;
    // A failed multi applies nothing, and says which op failed.
    let mut w = c.a.new_multi_writer();
    at("add_create", w.add_create(&c.path("/m/y"), b"", &open()))?;
    at("add_check_version", w.add_check_version(&p, 0))?;
    match w.commit().await {
        Err(zk::MultiWriteError::OperationFailed { index: 1, source: Error::BadVersion }) => {}
        other => return Err(format!("the failing multi gave {other:?}")),
    }
    ensure(at("check_stat", c.b.check_stat(&c.path("/m/y")).await)?.is_none(), "nothing applied")?;
    // multiRead (op 22): one answer per read, errors in place.
    let mut r = c.b.new_multi_reader();
    at("add_get_data", r.add_get_data(&p))?;
    at("add_get_children", r.add_get_children(&p))?;
    at("add_get_data", r.add_get_data(&c.path("/m/none")))?;
    let results = at("multi read", r.commit().await)?;
    ensure(matches!(&results[0], MultiReadResult::Data { data, .. } if data == b"m"), format!("{results:?}"))?;
    ensure(matches!(&results[1], MultiReadResult::Children { children } if children.is_empty()), format!("{results:?}"))?;
    ensure(matches!(&results[2], MultiReadResult::Error { err: Error::NoNode }), format!("{results:?}"))
}

async fn chroot(c: &Ctx) -> Checked {
    at("create", c.a.create(&c.path("/jail"), b"", &open()).await)?;
    let jailed = Client::connect(&format!("{}{}", c.server, c.path("/jail"))).await.map_err(|e| format!("connect: {e}"))?;
    let (_, _, w) = at("get_and_watch_children", jailed.get_and_watch_children("/").await)?;
    let (_, seq) = at("create", jailed.create("/s-", b"", &CreateMode::PersistentSequential.with_acls(Acls::anyone_all())).await)?;
    let ev = within("child event", w.changed()).await?;
    ensure(ev.path == "/", format!("the event's path is relative to the chroot: {ev:?}"))?;
    ensure(at("check_stat", c.a.check_stat(&c.path(&format!("/jail/s-{seq}"))).await)?.is_some(), "the node is inside the chroot")
}

async fn acl_and_auth(c: &Ctx) -> Checked {
    let owner = Client::connector().auth("digest".into(), b"rust:secret".to_vec()).connect(&c.server).await;
    let owner = owner.map_err(|e| format!("connect with auth: {e}"))?;
    let users = at("whoami", owner.list_auth_users().await)?;
    ensure(users.iter().any(|u| *u == zk::AuthUser::new("digest", "rust")), format!("whoAmI {users:?}"))?;
    let p = c.path("/private");
    at("create", owner.create(&p, b"s", &CreateMode::Persistent.with_acls(Acls::creator_all())).await)?;
    at("get_data", owner.get_data(&p).await)?;
    ensure(matches!(c.b.get_data(&p).await, Err(Error::NoAuth)), "another session gets NoAuth")?;
    let (acl, _) = at("get_acl", owner.get_acl(&p).await)?;
    ensure(acl.len() == 1 && acl[0].scheme() == "digest" && acl[0].id().starts_with("rust:"), format!("ACL {acl:?}"))?;
    at("delete", owner.delete(&p, None).await)
}

async fn container_and_ttl(c: &Ctx) -> Checked {
    let (stat, _) = at("create container", c.a.create(&c.path("/box"), b"", &CreateMode::Container.with_acls(Acls::anyone_all())).await)?;
    ensure(stat.ephemeral_owner == 0, "a container reports owner 0")?;
    let ttl = CreateMode::Persistent.with_acls(Acls::anyone_all()).with_ttl(Duration::from_secs(3600));
    let (stat, _) = at("create ttl", c.a.create(&c.path("/ttl"), b"", &ttl).await)?;
    ensure(stat.ephemeral_owner == 0, "a TTL node reports owner 0")
}

async fn lock(c: &Ctx) -> Checked {
    let dir = c.path("/locks");
    let options = || zk::LockOptions::new(Acls::anyone_all()).with_ancestor_options(open()).map_err(|e| e.to_string());
    let prefix = || zk::LockPrefix::new_curator(&dir, "latch-").map_err(|e| e.to_string());
    let first = at("first lock", c.a.lock(prefix()?, b"", options()?).await)?;
    // The second contender waits until the first lets go.
    let b = c.b.clone();
    let (dir2, opts2) = (dir.clone(), options()?);
    let second = tokio::spawn(async move {
        let prefix = zk::LockPrefix::new_curator(&dir2, "latch-").map_err(|e| e.to_string())?;
        let held = b.lock(prefix, b"", opts2).await.map_err(|e| format!("second lock: {e}"))?;
        // Writes under the lock carry a check of the lock node (fencing).
        held.create(&format!("{dir2}/fenced"), b"", &open()).await.map_err(|e| format!("fenced create: {e}"))?;
        Ok::<_, String>(())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure(!second.is_finished(), "the second contender got the lock while the first held it")?;
    at("write under the first lock", first.set_data(&dir, b"first", None).await)?;
    drop(first);
    within("second lock", second).await?.map_err(|e| e.to_string())??;
    ensure(at("check_stat", c.a.check_stat(&c.path("/locks/fenced")).await)?.is_some(), "the fenced create landed")
}

async fn ephemeral_ends_with_session(c: &Ctx) -> Checked {
    let short = at("connect", Client::connect(&c.server).await)?;
    at("create", short.create(&c.path("/short"), b"", &CreateMode::Ephemeral.with_acls(Acls::anyone_all())).await)?;
    let (_, w) = at("check_and_watch_stat", c.b.check_and_watch_stat(&c.path("/short")).await)?;
    drop(short);
    let ev = within("deleted event", w.changed()).await?;
    ensure(ev.event_type == EventType::NodeDeleted, format!("{ev:?}"))?;
    at("create ephemeral", c.a.create(&c.path("/short2"), b"", &CreateMode::Ephemeral.with_acls(Acls::anyone_all())).await)?;
    ensure(
        matches!(c.a.create(&c.path("/short2/kid"), b"", &open()).await, Err(Error::NoChildrenForEphemerals)),
        "ephemerals have no children",
    )
}

async fn sync_and_config(c: &Ctx) -> Checked {
    at("sync", c.b.sync(&c.root).await)?;
    at("get_config", c.b.get_config().await).map(|_| ())
}

async fn delete_tree(c: &Ctx, path: &str) -> Result<(), String> {
    let kids = match c.a.list_children(path).await {
        Err(Error::NoNode) => return Ok(()),
        other => at("list_children", other)?,
    };
    for k in kids {
        Box::pin(delete_tree(c, &format!("{path}/{k}"))).await?;
    }
    match c.a.delete(path, None).await {
        Ok(()) | Err(Error::NoNode) => Ok(()),
        Err(e) => Err(format!("delete {path}: {e}")),
    }
}

#[tokio::main]
async fn main() {
    let server = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:2181".into());
    let root = format!("/compat-rust-{}", std::process::id());
    let connect = || async {
        match tokio::time::timeout(Duration::from_secs(20), Client::connect(&server)).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no session within 20 s".to_string()),
        }
    };
    let (a, b) = match (connect().await, connect().await) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            println!("FAIL rust.connect: {e}");
            std::process::exit(1);
        }
    };
    println!("PASS rust.connect");
    let c = Ctx { server, root, a, b };
    let mut failed = 0;
    let mut report = |name: &str, r: Result<Checked, tokio::time::error::Elapsed>| match r {
        Ok(Ok(())) => println!("PASS rust.{name}"),
        Ok(Err(e)) => {
            failed += 1;
            println!("FAIL rust.{name}: {e}");
        }
        Err(_) => {
            failed += 1;
            println!("FAIL rust.{name}: did not finish within 60 s");
        }
    };
    let limit = Duration::from_secs(60);
    report("root", tokio::time::timeout(limit, async { at("create root", c.a.create(&c.root, b"", &open()).await).map(|_| ()) }).await);
    report("crud", tokio::time::timeout(limit, crud(&c)).await);
    report("sequential_ephemeral", tokio::time::timeout(limit, sequential_ephemeral(&c)).await);
    report("oneshot_watches", tokio::time::timeout(limit, oneshot_watches(&c)).await);
    report("persistent_recursive_watch", tokio::time::timeout(limit, persistent_recursive_watch(&c)).await);
    report("multi", tokio::time::timeout(limit, multi(&c)).await);
    report("chroot", tokio::time::timeout(limit, chroot(&c)).await);
    report("acl_and_auth", tokio::time::timeout(limit, acl_and_auth(&c)).await);
    report("container_and_ttl", tokio::time::timeout(limit, container_and_ttl(&c)).await);
    report("lock", tokio::time::timeout(limit, lock(&c)).await);
    report("ephemeral_ends_with_session", tokio::time::timeout(limit, ephemeral_ends_with_session(&c)).await);
    report("sync_and_config", tokio::time::timeout(limit, sync_and_config(&c)).await);
    report("delete_tree", tokio::time::timeout(limit, delete_tree(&c, &c.root)).await);
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
