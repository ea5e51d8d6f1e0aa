#!/usr/bin/env python3
"""kazoo (PyPI) checks against a ZooKeeper-protocol server.

    compat/.venv/bin/python compat/kazoo_basic.py HOST:PORT [name-prefix...]

Prints one line per check, "PASS name" or "FAIL name: reason", then "DONE".
Each check runs in a thread with a deadline, under its own root znode.
"""
import os
import re
import sys
import threading
import time
import traceback

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    LockTimeout,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType, KazooState

HOSTS = None
BASE = "/compat-kazoo-%d" % os.getpid()
CHECK_SECONDS = float(os.environ.get("KAZOO_CHECK_SECONDS", "60"))


class Ctx:
    def __init__(self, name):
        self.root = BASE + "/" + name.replace(".", "_")
        self.clients = []

    def client(self, **kw):
        c = KazooClient(hosts=HOSTS, timeout=10, **kw)
        self.clients.append(c)
        c.start(timeout=15)
        return c

    def close(self):
        for c in reversed(self.clients):
            try:
                c.stop()
                c.close()
            except Exception:
                pass


def eq(expected, actual, what):
    if expected != actual:
        raise AssertionError("%s: expected %r, got %r" % (what, expected, actual))


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def raises(exc, fn, what):
    try:
        fn()
    except exc:
        return
    except Exception as e:  # noqa: BLE001
        raise AssertionError("%s: expected %s, got %r" % (what, exc.__name__, e))
    raise AssertionError("%s: expected %s, got success" % (what, exc.__name__))


def wait_for(what, cond, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.02)
    if not cond():
        raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))


# ---- checks ---------------------------------------------------------------


def k_connect(c):
    zk = c.client()
    eq(KazooState.CONNECTED, zk.state, "state")
    check(zk.connected, "not connected")
    sid, pw = zk.client_id
    check(sid != 0 and len(pw) == 16, "session id %r / password length %d" % (sid, len(pw)))


def k_server_version(c):
    zk = c.client()
    v = zk.server_version()  # parsed from the 'envi' four-letter word
    check(isinstance(v, tuple) and len(v) >= 3 and all(isinstance(i, int) for i in v), "server_version %r" % (v,))
    check(v >= (3, 5), "server version %r is below 3.5: kazoo would skip 3.5+ features" % (v,))


def k_four_letter(c):
    zk = c.client()
    eq("imok", zk.command(b"ruok"), "ruok")
    srvr = zk.command(b"srvr")
    check("Mode:" in srvr, "srvr has no Mode: line: %r" % srvr[:200])


def k_ensure_path(c):
    zk = c.client()
    p = c.root + "/a/b/c"
    check(zk.ensure_path(p), "ensure_path returned false")
    check(zk.exists(p) is not None, "deepest node missing")
    check(zk.exists(c.root + "/a") is not None, "intermediate node missing")
    zk.ensure_path(p)  # idempotent


def k_crud(c):
    zk = c.client()
    zk.ensure_path(c.root)
    p = c.root + "/node"
    eq(p, zk.create(p, b"v0"), "create path")
    data, st = zk.get(p)
    eq(b"v0", data, "get data")
    eq(0, st.version, "version after create")
    eq(st.czxid, st.mzxid, "czxid == mzxid after create")
    eq(0, st.ephemeralOwner, "ephemeralOwner")
    raises(NodeExistsError, lambda: zk.create(p), "create existing")
    raises(NoNodeError, lambda: zk.create(c.root + "/x/y"), "create without parent")
    eq(c.root + "/x/y", zk.create(c.root + "/x/y", b"mp", makepath=True), "create makepath")
    st2 = zk.set(p, b"v1")
    eq(1, st2.version, "version after set")
    check(st2.mzxid > st.mzxid, "mzxid did not grow")
    raises(BadVersionError, lambda: zk.set(p, b"bad", version=0), "set with stale version")
    eq(b"v1", zk.get(p)[0], "data after failed set")
    zk.create(p + "/kid")
    children, pst = zk.get_children(p, include_data=True)
    eq(["kid"], children, "children")
    eq(1, pst.numChildren, "numChildren")
    raises(NotEmptyError, lambda: zk.delete(p), "delete non-empty")
    raises(BadVersionError, lambda: zk.delete(p + "/kid", version=3), "delete stale version")
    zk.delete(p, recursive=True)
    eq(None, zk.exists(p), "exists after delete")
    raises(NoNodeError, lambda: zk.get(p), "get after delete")
    r = zk.get_async(c.root + "/x/y")
    eq(b"mp", r.get(timeout=5)[0], "get_async")


def k_ephemeral_sequence(c):
    a = c.client()
    b = c.client()
    a.ensure_path(c.root)
    names = [a.create(c.root + "/job-", b"x", ephemeral=True, sequence=True) for _ in range(3)]
    for i, n in enumerate(names):
        check(re.fullmatch(re.escape(c.root) + r"/job-\d{10}", n), "sequential name %r" % n)
        eq(c.root + "/job-%010d" % i, n, "sequence %d" % i)
    st = b.exists(names[0])
    check(st is not None, "other client does not see the ephemeral")
    eq(a.client_id[0], st.ephemeralOwner, "ephemeralOwner")
    raises(NoChildrenForEphemeralsError, lambda: a.create(names[0] + "/kid"), "child of ephemeral")
    a.stop()
    eq([], b.get_children(c.root), "ephemerals after owner stopped")


def k_data_watch(c):
    a = c.client()
    b = c.client()
    p = c.root + "/dw"
    a.create(p, b"first", makepath=True)
    seen = []
    ev = threading.Event()

    @a.DataWatch(p)
    def watcher(data, stat, event=None):
        seen.append((data, None if stat is None else stat.version, None if event is None else event.type))
        ev.set()

    wait_for("initial DataWatch call", lambda: len(seen) >= 1)
    eq((b"first", 0, None), seen[0], "initial call")
    for i in range(1, 4):
        b.set(p, b"v%d" % i)
        wait_for("DataWatch call %d" % i, lambda: len(seen) >= i + 1)
        eq((b"v%d" % i, i, EventType.CHANGED), seen[i], "call after set %d" % i)
    b.delete(p)
    wait_for("DataWatch call after delete", lambda: len(seen) >= 5)
    eq((None, None, EventType.DELETED), seen[4], "call after delete")


def k_children_watch(c):
    a = c.client()
    b = c.client()
    a.ensure_path(c.root)
    seen = []

    @a.ChildrenWatch(c.root)
    def watcher(children):
        seen.append(sorted(children))

    wait_for("initial ChildrenWatch call", lambda: len(seen) >= 1)
    eq([], seen[0], "initial children")
    b.create(c.root + "/one")
    wait_for("ChildrenWatch after create", lambda: len(seen) >= 2)
    eq(["one"], seen[1], "children after create")
    b.create(c.root + "/two")
    wait_for("ChildrenWatch after second create", lambda: len(seen) >= 3)
    eq(["one", "two"], seen[2], "children after second create")
    b.delete(c.root + "/one")
    wait_for("ChildrenWatch after delete", lambda: len(seen) >= 4)
    eq(["two"], seen[3], "children after delete")


def k_transaction(c):
    zk = c.client()
    zk.ensure_path(c.root)
    zk.create(c.root + "/old", b"o")
    t = zk.transaction()
    t.create(c.root + "/t1", b"one")
    t.check(c.root + "/old", 0)
    t.set_data(c.root + "/old", b"changed")
    t.delete(c.root + "/t1")
    t.create(c.root + "/t2", b"two")
    res = t.commit()
    eq([c.root + "/t1", True, res[2], True, c.root + "/t2"], res, "committed results")
    eq(1, res[2].version, "set_data result stat version")
    eq(b"changed", zk.get(c.root + "/old")[0], "data after transaction")

    t = zk.transaction()
    t.create(c.root + "/t3", b"three")
    t.create(c.root + "/t2", b"dup")
    t.delete(c.root + "/old")
    res = t.commit()
    eq(3, len(res), "failed transaction result count")
    check(isinstance(res[0], RolledBackError), "op 0 result %r" % (res[0],))
    check(isinstance(res[1], NodeExistsError), "op 1 result %r" % (res[1],))
    # ops after the failing one report runtime inconsistency (-2), ops before it "rolled back" (0)
    check(isinstance(res[2], RuntimeInconsistency), "op 2 result %r" % (res[2],))
    eq(None, zk.exists(c.root + "/t3"), "t3 after failed transaction")
    check(zk.exists(c.root + "/old") is not None, "old deleted by failed transaction")


def k_lock(c):
    a = c.client()
    b = c.client()
    path = c.root + "/lock"
    la = a.Lock(path, "client-a")
    lb = b.Lock(path, "client-b")
    check(la.acquire(timeout=5), "client a could not take a free lock")
    raises(LockTimeout, lambda: lb.acquire(timeout=0.5), "client b took a held lock")
    eq(["client-a"], lb.contenders(), "contenders while a holds")
    la.release()
    check(lb.acquire(timeout=5), "client b could not take the lock after release")
    lb.release()

    holders = [0]
    max_holders = [0]
    done = [0]
    errors = []
    mu = threading.Lock()

    def worker(lock):
        try:
            for _ in range(6):
                with lock:
                    with mu:
                        holders[0] += 1
                        max_holders[0] = max(max_holders[0], holders[0])
                    time.sleep(0.01)
                    with mu:
                        holders[0] -= 1
                        done[0] += 1
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    ts = [threading.Thread(target=worker, args=(lk,), daemon=True) for lk in (la, lb)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(40)
    eq([], errors, "errors")
    eq(12, done[0], "acquisitions")
    eq(1, max_holders[0], "max simultaneous holders")


def k_lock_released_on_session_close(c):
    a = c.client()
    b = c.client()
    path = c.root + "/lock"
    check(a.Lock(path, "a").acquire(timeout=5), "client a could not take the lock")
    lb = b.Lock(path, "b")
    got = []
    t = threading.Thread(target=lambda: got.append(lb.acquire(timeout=15)), daemon=True)
    t.start()
    time.sleep(0.3)
    check(not got, "client b got the lock while a holds it")
    a.stop()  # closing the session deletes a's lock node
    t.join(16)
    eq([True], got, "client b acquires after a's session closed")
    lb.release()


def k_counter(c):
    a = c.client()
    b = c.client()
    ca = a.Counter(c.root + "/counter")
    cb = b.Counter(c.root + "/counter")
    ca += 5
    cb += 2
    ca -= 1
    eq(6, ca.value, "counter value")
    eq(6, cb.value, "counter value from other client")


def k_clean_stop(c):
    zk = KazooClient(hosts=HOSTS, timeout=10)
    states = []
    zk.add_listener(lambda s: states.append(s))
    zk.start(timeout=15)
    zk.ensure_path(c.root)
    eph = zk.create(c.root + "/e", ephemeral=True)
    zk.stop()
    eq(KazooState.LOST, zk.state, "state after stop")
    check(not zk.connected, "still connected after stop")
    eq([KazooState.CONNECTED, KazooState.LOST], states, "listener states")
    zk.close()
    other = c.client()
    eq(None, other.exists(eph), "ephemeral after stop")
    # a restarted client gets a new session
    zk2 = KazooClient(hosts=HOSTS, timeout=10)
    c.clients.append(zk2)
    zk2.start(timeout=15)
    check(zk2.exists(c.root) is not None, "root after restart")


CHECKS = [
    ("kazoo.connect", k_connect),
    ("kazoo.server_version_envi", k_server_version),
    ("kazoo.four_letter_words", k_four_letter),
    ("kazoo.ensure_path", k_ensure_path),
    ("kazoo.create_get_set_delete", k_crud),
    ("kazoo.ephemeral_sequence", k_ephemeral_sequence),
    ("kazoo.data_watch", k_data_watch),
    ("kazoo.children_watch", k_children_watch),
    ("kazoo.transaction", k_transaction),
    ("kazoo.lock_two_clients", k_lock),
    ("kazoo.lock_released_on_session_close", k_lock_released_on_session_close),
    ("kazoo.counter", k_counter),
    ("kazoo.clean_stop", k_clean_stop),
]


def run_check(name, fn):
    ctx = Ctx(name[len("kazoo."):])
    result = {}

    def body():
        try:
            fn(ctx)
            result["ok"] = True
        except AssertionError as e:
            result["err"] = str(e)
            traceback.print_exc(file=sys.stderr)
        except Exception as e:  # noqa: BLE001
            result["err"] = repr(e)
            traceback.print_exc(file=sys.stderr)
        finally:
            ctx.close()

    t = threading.Thread(target=body, daemon=True)
    t0 = time.time()
    t.start()
    t.join(CHECK_SECONDS)
    if t.is_alive():
        print("FAIL %s: timed out after %.0f s" % (name, CHECK_SECONDS), flush=True)
        ctx.close()
    elif result.get("ok"):
        print("PASS %s" % name, flush=True)
    else:
        print("FAIL %s: %s" % (name, result.get("err", "?").replace("\n", " ")[:500]), flush=True)
    print("%s took %.0f ms" % (name, (time.time() - t0) * 1000), file=sys.stderr)


def cleanup():
    zk = KazooClient(hosts=HOSTS, timeout=10)
    try:
        zk.start(timeout=15)
        zk.delete(BASE, recursive=True)
    except NoNodeError:
        pass
    except Exception as e:  # noqa: BLE001
        print("cleanup of %s failed: %r" % (BASE, e), file=sys.stderr)
    finally:
        try:
            zk.stop()
            zk.close()
        except Exception:  # noqa: BLE001
            pass


def main():
    global HOSTS
    if len(sys.argv) < 2:
        print("usage: kazoo_basic.py HOST:PORT [name-prefix...]", file=sys.stderr)
        sys.exit(2)
    HOSTS = sys.argv[1]
    filters = sys.argv[2:]
    # one probe first: when the server cannot be reached at all, fail everything fast
    unreachable = None
    probe = KazooClient(hosts=HOSTS, timeout=10)
    try:
        probe.start(timeout=15)
    except Exception as e:  # noqa: BLE001
        unreachable = "could not connect to %s: %r" % (HOSTS, e)
    finally:
        try:
            probe.stop()
            probe.close()
        except Exception:  # noqa: BLE001
            pass
    for name, fn in CHECKS:
        if filters and not any(name.startswith(f) for f in filters):
            continue
        if unreachable:
            print("FAIL %s: %s" % (name, unreachable), flush=True)
            continue
        run_check(name, fn)
    if not unreachable:
        cleanup()
    print("DONE", flush=True)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
