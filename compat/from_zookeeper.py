"""Moving a real ZooKeeper's data to paddock (paddock --import-zookeeper)
and back (paddock --export-zookeeper).

compat/from-zookeeper.sh drives it:
  populate ZK_ADDR STATE.json   writes a varied tree on the real ZooKeeper,
                                leaves one session open (with an ephemeral)
                                and saves that session's id and password
  record   ZK_ADDR STATE.json   saves every node as ZooKeeper serves it
  verify   ADDR STATE.json      checks paddock serves the same tree, stat for
                                stat, then resumes the open session
  same     ADDR STATE.json      checks the tree only (after a restart, and
                                through another ensemble member)
  resume   ZK_ADDR STATE.json   checks the open session resumes (on ZooKeeper,
                                from an export of the imported ensemble: the
                                password the import kept is ZooKeeper's)
  back     ZK_ADDR STATE.json   checks a real ZooKeeper started from paddock's
                                export serves paddock's tree (populated and
                                recorded on paddock) and goes on from it
A fourth argument names the checks (import by default).
Prints PASS/FAIL lines; exits 1 if any FAIL.
"""

import json
import os
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NoNodeError
from kazoo.security import make_digest_acl

AUTH = [("digest", "importer:secret")]
SKIP = {"/zookeeper/config"}
failures = 0
prefix = "import"


def check(name, ok, why=""):
    global failures
    if ok:
        print(f"PASS {prefix}.{name}")
    else:
        failures += 1
        print(f"FAIL {prefix}.{name}: {why}")


def connect(addr, timeout=15):
    c = KazooClient(hosts=addr, timeout=timeout, auth_data=AUTH)
    c.start(timeout=20)
    return c


def stat_dict(s):
    return {
        f: getattr(s, f)
        for f in (
            "czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
            "ephemeralOwner", "dataLength", "numChildren", "pzxid",
        )
    }


def walk(c):
    """Every node: path -> data (hex), stat, ACL, children."""
    out = {}
    stack = ["/"]
    while stack:
        path = stack.pop()
        if path in SKIP:
            continue
        data, stat = c.get(path)
        acl, _ = c.get_acls(path)
        children = sorted(c.get_children(path))
        out[path] = {
            "data": None if data is None else data.hex(),
            "stat": stat_dict(stat),
            "acl": sorted([a.perms, a.id.scheme, a.id.id] for a in acl),
            "children": children,
        }
        stack.extend((path.rstrip("/") + "/" + ch) for ch in children)
    return out


def populate(addr, state_path):
    c = connect(addr)
    c.create("/app", b"config-v0")
    for i in range(1, 4):
        c.set("/app", f"config-v{i}".encode())
    for _ in range(5):
        c.create("/app/lock-", b"", sequence=True, ephemeral=False)
    for name in sorted(c.get_children("/app"))[:2]:
        c.delete("/app/" + name)
    c.create("/app/secret", b"hidden", acl=[make_digest_acl("importer", "secret", all=True)])
    c.set_acls("/app", [make_digest_acl("importer", "secret", all=True), make_digest_acl("reader", "x", read=True)])
    tx = c.transaction()
    tx.create("/app/multi", b"m")
    tx.set_data("/app", b"config-multi")
    tx.commit()
    tx = c.transaction()
    tx.create("/app/never", b"n")
    tx.check("/app", version=99)
    tx.commit()
    # Enough writes to roll ZooKeeper's logs and snapshots (snapCount is
    # small in compat/from-zookeeper.sh): the import reads a snapshot and
    # replays the logs after it.
    c.create("/bulk")
    for i in range(1500):
        c.create(f"/bulk/n{i:04d}", os.urandom(50).hex().encode())
    for i in range(0, 1500, 3):
        c.delete(f"/bulk/n{i:04d}")
    for i in (i for i in range(1, 1500, 7) if i % 3):
        c.set(f"/bulk/n{i:04d}", b"changed")
    gone = connect(addr)
    gone.create("/app/gone", b"", ephemeral=True)
    gone.stop()
    gone.close()
    # ZooKeeper's largest timeout at its tickTime: room to move the data.
    kept = connect(addr, timeout=40)
    kept.create("/app/kept", b"held", ephemeral=True)
    sid, passwd = kept.client_id
    with open(state_path, "w") as f:
        json.dump({"session": [sid, passwd.hex()]}, f)
    c.stop()
    c.close()
    # Leave without closing `kept`: its session stays open on ZooKeeper.
    sys.stdout.flush()
    os._exit(0)


def record(addr, state_path):
    state = {}
    if os.path.exists(state_path):
        with open(state_path) as f:
            state = json.load(f)
    c = connect(addr)
    state["tree"] = walk(c)
    c.stop()
    c.close()
    with open(state_path, "w") as f:
        json.dump(state, f)
    print(f"recorded {len(state['tree'])} znodes")


def compare(addr, state):
    c = connect(addr)
    got = walk(c)
    want = state["tree"]
    check("same-paths", set(got) == set(want),
          f"missing {sorted(set(want) - set(got))[:5]}, extra {sorted(set(got) - set(want))[:5]}")
    for what in ("data", "stat", "acl", "children"):
        bad = [p for p in want if p in got and got[p][what] != want[p][what]]
        detail = bad[:1] and f"{bad[0]}: got {got[bad[0]][what]}, want {want[bad[0]][what]}"
        check(f"same-{what}", not bad, f"{len(bad)} differ, e.g. {detail}")
    return c


def goes_on(c, want):
    """Writes continue from the tree: zxids, sequence numbers, versions."""
    last = max(max(n["stat"]["czxid"], n["stat"]["mzxid"], n["stat"]["pzxid"]) for n in want.values())
    after = c.create("/after", b"x", include_data=True)[1]
    check("zxid-goes-on", after.czxid > last, f"new czxid {after.czxid:#x}, the tree's last {last:#x}")
    app = want["/app"]["stat"]
    next_seq = (app["cversion"] + app["numChildren"]) // 2
    made = c.create("/app/lock-", b"", sequence=True)
    check("sequence-goes-on", made == f"/app/lock-{next_seq:010d}", f"created {made}, expected suffix {next_seq}")
    try:
        c.set("/app", b"v", version=want["/app"]["stat"]["version"] + 1)
        check("versions-kept", False, "a set with the wrong version was accepted")
    except BadVersionError:
        c.set("/app", b"v", version=want["/app"]["stat"]["version"])
        check("versions-kept", True)


def gone_is_gone(c):
    try:
        c.get("/app/gone")
        check("closed-session-ephemeral-gone", False, "/app/gone is there")
    except NoNodeError:
        check("closed-session-ephemeral-gone", True)


def resume_kept(addr, sid, passwd):
    """Resumes the session left open by populate; its ephemeral is there."""
    kept = KazooClient(hosts=addr, timeout=40, client_id=(sid, bytes.fromhex(passwd)))
    kept.start(timeout=20)
    check("session-resumed", kept.client_id[0] == sid, f"got session {kept.client_id[0]:#x}, had {sid:#x}")
    stat = kept.exists("/app/kept")
    check("ephemeral-kept", stat is not None and stat.ephemeralOwner == sid, f"stat {stat}")
    kept.stop()
    kept.close()


def verify(addr, state_path):
    with open(state_path) as f:
        state = json.load(f)
    c = compare(addr, state)
    goes_on(c, state["tree"])
    resume_kept(addr, *state["session"])
    check("ephemeral-ends-with-session", c.exists("/app/kept") is None, "still there after the session closed")
    gone_is_gone(c)
    c.stop()
    c.close()


def resume(addr, state_path):
    with open(state_path) as f:
        resume_kept(addr, *json.load(f)["session"])


def back(addr, state_path):
    with open(state_path) as f:
        state = json.load(f)
    c = compare(addr, state)
    goes_on(c, state["tree"])
    # ZooKeeper derives a session's password from its id, paddock draws it
    # at random: the client gets a new session, and the old one's ephemeral
    # stays until ZooKeeper expires it.
    sid, passwd = state["session"]
    kept = KazooClient(hosts=addr, timeout=40, client_id=(sid, bytes.fromhex(passwd)))
    kept.start(timeout=20)
    check("new-session", kept.client_id[0] != sid, f"session {sid:#x} resumed")
    kept.stop()
    kept.close()
    stat = c.exists("/app/kept")
    check("ephemeral-kept-until-expiry", stat is not None and stat.ephemeralOwner == sid, f"stat {stat}")
    gone_is_gone(c)
    c.stop()
    c.close()


def same(addr, state_path):
    with open(state_path) as f:
        state = json.load(f)
    compare(addr, state).stop()


if __name__ == "__main__":
    cmd, addr, state_path = sys.argv[1:4]
    prefix = sys.argv[4] if len(sys.argv) > 4 else prefix
    {"populate": populate, "record": record, "verify": verify, "same": same, "resume": resume, "back": back}[cmd](addr, state_path)
    sys.exit(1 if failures else 0)
