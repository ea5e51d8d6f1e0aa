"""pytest plugin: run kazoo's shipped tests against an already running server.

kazoo.testing.harness always spawns its own ZooKeeper cluster; this replaces
get_global_cluster() with a stand-in whose servers are the addresses in
KAZOO_EXTERNAL_SERVERS (comma-separated HOST:PORT). Servers cannot be
stopped/started from here, so tests that do that will fail (compat/kazoo_suite.sh
deselects them), unless KAZOO_EXTERNAL_CONTROL names a command (shell words)
that does it: "<command> stop HOST:PORT" and "<command> start HOST:PORT", the
latter returning once the server serves again (compat/ensemble_ctl.sh, used by
compat/kazoo_failover.sh).

Optional, used by compat/kazoo_suite.sh (each off unless its variable is set):

  KAZOO_SUITE_TAG        the harness puts each test under /kazootests<uuid>; with
                         a tag it is /kazootests<tag><uuid>, so one run's
                         leftovers can be found and removed without touching
                         another run's (see --cleanup below).
  KAZOO_SUITE_DESELECT   a file of test ids (relative to kazoo/tests, e.g.
                         test_client.py::TestClient::test_update_host_list), one
                         per line, each with a "# reason". An id also matches
                         the tests below it (a class or a module).
  KAZOO_EXTERNAL_SECURE_SERVERS
                         the TLS client ports (HOST:PORT, in the order of
                         KAZOO_EXTERNAL_SERVERS), with KAZOO_EXTERNAL_TLS_DIR
                         holding client.key, client.crt and ca.pem: what the
                         harness's get_ssl_client_configuration() hands
                         TestSSLClient. Without them that class is deselected.
  KAZOO_SUITE_REPORT_FD  a file descriptor that receives one line per test:
                         "PASS kazoo-suite.<id>", "FAIL kazoo-suite.<id>: reason",
                         "SKIP kazoo-suite.<id>: reason" or
                         "DESELECTED kazoo-suite.<id>: reason".

Cleanup, run after pytest (whatever became of it):

  python compat/kazoo_external.py --cleanup HOST:PORT TAG

deletes every /kazootests<TAG>* subtree and prints how many znodes were left.
"""
import os
import shlex
import subprocess
import sys
import time
import types
import uuid

import kazoo.testing.harness as harness

NAME_PREFIX = "kazoo-suite."


class ExternalServer:
    def __init__(self, address, secure_address=None):
        self.address = address
        self.secure_address = secure_address or address
        self.running = True

    def run(self):
        if _CONTROL and not self.running:
            self._control("start")
            self.running = True

    def stop(self):
        if not _CONTROL:
            raise RuntimeError("external server %s cannot be stopped by the test" % self.address)
        self._control("stop")
        self.running = False

    def _control(self, action):
        subprocess.run(_CONTROL + [action, self.address], check=True, timeout=60)

    def destroy(self):
        pass

    def reset(self):
        pass

    def get_logs(self, num_lines=100):
        return []


class ExternalCluster:
    def __init__(self, addresses, secure_addresses=(), tls_dir=None):
        secure = list(secure_addresses) + [None] * len(addresses)
        self._servers = [ExternalServer(a, s) for a, s in zip(addresses, secure)]
        self._tls_dir = tls_dir

    def __getitem__(self, k):
        return self._servers[k]

    def __iter__(self):
        return iter(self._servers)

    def start(self):
        pass

    def stop(self):
        pass

    def terminate(self):
        pass

    def reset(self):
        pass

    def get_logs(self):
        return []

    def get_ssl_client_configuration(self):
        if not self._tls_dir:
            raise RuntimeError("no TLS on the external cluster")

        def read(name):
            with open(os.path.join(self._tls_dir, name), "rb") as f:
                return f.read()

        return {"client_key": read("client.key"), "client_cert": read("client.crt"), "ca_cert": read("ca.pem")}


_SECURE = [a for a in os.environ.get("KAZOO_EXTERNAL_SECURE_SERVERS", "").split(",") if a]
_TLS_DIR = os.environ.get("KAZOO_EXTERNAL_TLS_DIR") if _SECURE else None
# Deselected when there is no TLS port to point it at.
_NEEDS_TLS = "test_client.py::TestSSLClient"


_CONTROL = shlex.split(os.environ.get("KAZOO_EXTERNAL_CONTROL", ""))

if os.environ.get("KAZOO_EXTERNAL_SERVERS"):
    _CLUSTER = ExternalCluster(os.environ["KAZOO_EXTERNAL_SERVERS"].split(","), _SECURE, _TLS_DIR)
    harness.get_global_cluster = lambda: _CLUSTER

_TAG = os.environ.get("KAZOO_SUITE_TAG", "")
if _TAG:
    # harness.setup_zookeeper names the chroot "/kazootests" + uuid.uuid4().hex;
    # it is the only use of uuid in that module.
    harness.uuid = types.SimpleNamespace(
        uuid4=lambda: types.SimpleNamespace(hex=_TAG + uuid.uuid4().hex)
    )


# --- deselection -----------------------------------------------------------

def _read_deselect(path):
    """[(test id, reason)] from a file of "id  # reason" lines."""
    entries = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            test_id, _, reason = line.partition("#")
            entries.append((test_id.strip(), reason.strip() or "no reason given"))
    return entries


def _short_id(item_or_nodeid):
    """A node id relative to kazoo/tests, whatever pytest's rootdir is."""
    nodeid = getattr(item_or_nodeid, "nodeid", item_or_nodeid)
    marker = "kazoo/tests/"
    i = nodeid.find(marker)
    return nodeid[i + len(marker):] if i >= 0 else nodeid


def _matches(test_id, entry):
    return test_id == entry or any(test_id.startswith(entry + sep) for sep in ("::", "["))


# --- reporting -------------------------------------------------------------

_report = None
_outcomes = {}  # short id -> (status, reason)


def _emit(status, test_id, reason=None):
    if _report is None:
        return
    line = "%s %s%s" % (status, NAME_PREFIX, test_id)
    if reason:
        line += ": " + " ".join(str(reason).split())[:300]
    _report.write(line + "\n")
    _report.flush()


def _reason(report):
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # skip: (file, line, reason)
        return longrepr[2].removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message.splitlines()[0] if crash.message else str(longrepr).splitlines()[-1]
    text = str(longrepr).strip().splitlines()
    return text[-1] if text else ""


def pytest_configure(config):
    global _report
    fd = os.environ.get("KAZOO_SUITE_REPORT_FD")
    if fd:
        _report = os.fdopen(os.dup(int(fd)), "w", buffering=1)


def pytest_collection_modifyitems(session, config, items):
    path = os.environ.get("KAZOO_SUITE_DESELECT")
    if not path:
        return
    entries = _read_deselect(path)
    if not _TLS_DIR:
        entries.append((_NEEDS_TLS, "no TLS client port given (KAZOO_EXTERNAL_SECURE_SERVERS)"))
    used = set()
    keep, dropped = [], []
    for item in items:
        test_id = _short_id(item)
        hit = next(((e, r) for e, r in entries if _matches(test_id, e)), None)
        if hit is None:
            keep.append(item)
        else:
            used.add(hit[0])
            dropped.append(item)
            _emit("DESELECTED", test_id, hit[1])
    for entry, _ in entries:
        if entry not in used and entry != _NEEDS_TLS:
            sys.stderr.write("kazoo-suite: deselect entry matches no test: %s\n" % entry)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_collectreport(report):
    if report.failed:
        _emit("FAIL", "collect." + _short_id(report.nodeid), _reason(report))


def pytest_runtest_logreport(report):
    test_id = _short_id(report.nodeid)
    status, reason = _outcomes.get(test_id, ("PASS", ""))
    if status == "FAIL":
        return  # keep the first failure
    if report.failed:
        phase = "" if report.when == "call" else "in %s: " % report.when
        _outcomes[test_id] = ("FAIL", phase + _reason(report))
    elif report.skipped:
        _outcomes[test_id] = ("SKIP", _reason(report))
    elif report.when == "call":
        _outcomes[test_id] = ("PASS", "")


def pytest_runtest_logfinish(nodeid, location):
    test_id = _short_id(nodeid)
    status, reason = _outcomes.get(test_id, ("FAIL", "no result reported"))
    _emit(status, test_id, reason)


# --- cleanup ---------------------------------------------------------------

def _delete_tree(client, path, NoAuthError, NoNodeError):
    """Deletes path and everything below it that may be deleted. Children that
    cannot be listed (no READ) are deleted blind, which works when they are
    leaves: DELETE is checked on the parent."""
    try:
        children = client.get_children(path)
    except NoNodeError:
        return
    except NoAuthError:
        children = []
    for child in children:
        _delete_tree(client, path + "/" + child, NoAuthError, NoNodeError)
    try:
        client.delete(path)
    except NoNodeError:
        pass
    except Exception:
        pass  # counted by the caller


def cleanup(hosts, tag, deadline_s=30):
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoAuthError, NoNodeError

    prefix = "kazootests" + tag
    client = KazooClient(hosts, timeout=10)
    client.start(timeout=15)
    try:
        deadline = time.monotonic() + deadline_s
        while True:
            left = [c for c in client.get_children("/") if c.startswith(prefix)]
            for name in left:
                _delete_tree(client, "/" + name, NoAuthError, NoNodeError)
            left = [c for c in client.get_children("/") if c.startswith(prefix)]
            # Ephemerals of sessions that were not closed vanish when they expire.
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(1)
    finally:
        client.stop()
        client.close()


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "--cleanup" or not sys.argv[3]:
        sys.exit("usage: kazoo_external.py --cleanup HOST:PORT TAG")
    left = cleanup(sys.argv[2], sys.argv[3])
    print("left %d" % len(left))
    for name in left:
        print("left /" + name)
