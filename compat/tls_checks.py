"""TLS on the secure client port, driven by kazoo and a plain Python TLS socket.

    python tls_checks.py PLAIN_HOST:PORT SECURE_HOST:PORT TLS_DIR

Prints PASS/FAIL lines. The server must require client certificates signed by
TLS_DIR/ca.pem (ZooKeeper's default ssl.clientAuth=need) and present one for
127.0.0.1 signed by the same CA.
"""

import os
import socket
import ssl
import sys
import threading

from kazoo.client import KazooClient

plain, secure, tls_dir = sys.argv[1], sys.argv[2], sys.argv[3]
CA = os.path.join(tls_dir, "ca.pem")
CERT = os.path.join(tls_dir, "client.crt")
KEY = os.path.join(tls_dir, "client.key")
ROOT = "/compat-tls-%d" % os.getpid()


def check(name, fn, deadline=60):
    result = {}

    def run():
        try:
            fn()
            result["ok"] = True
        except BaseException as e:  # report anything, including AssertionError
            result["err"] = "%s: %s" % (type(e).__name__, e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(deadline)
    if result.get("ok"):
        print("PASS tls.%s" % name, flush=True)
    else:
        print("FAIL tls.%s: %s" % (name, result.get("err", "timed out after %d s" % deadline)), flush=True)


def client(hosts, **tls):
    return KazooClient(hosts=hosts, timeout=10, **tls)


def tls_client(**extra):
    opts = dict(use_ssl=True, verify_certs=True, check_hostname=True, ca=CA, certfile=CERT, keyfile=KEY)
    opts.update(extra)
    return client(secure, **opts)


def crud():
    zk = tls_client()
    zk.start(timeout=15)
    try:
        zk.ensure_path(ROOT)
        zk.create(ROOT + "/x", b"over tls")
        data, stat = zk.get(ROOT + "/x")
        assert data == b"over tls", data
        zk.set(ROOT + "/x", b"changed", version=stat.version)
        # the same data through the plain port: one server, one tree
        other = client(plain)
        other.start(timeout=15)
        try:
            assert other.get(ROOT + "/x")[0] == b"changed"
        finally:
            other.stop()
            other.close()
        zk.delete(ROOT + "/x")
    finally:
        zk.stop()
        zk.close()


def watch_event():
    zk = tls_client()
    zk.start(timeout=15)
    other = client(plain)
    other.start(timeout=15)
    try:
        zk.ensure_path(ROOT)
        seen = threading.Event()
        zk.exists(ROOT + "/w", watch=lambda e: seen.set() if e.type == "CREATED" else None)
        other.create(ROOT + "/w", b"")
        assert seen.wait(10), "no NodeCreated event over TLS"
        other.delete(ROOT + "/w")
    finally:
        for c in (zk, other):
            c.stop()
            c.close()


def refused(make):
    def fn():
        zk = make()
        try:
            zk.start(timeout=5)
        except Exception:
            return
        finally:
            zk.stop()
            zk.close()
        raise AssertionError("connected")
    return fn


def four_letter_word():
    host, port = secure.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(CERT, KEY)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(b"ruok")
            answer = b""
            while True:
                chunk = s.recv(64)
                if not chunk:
                    break
                answer += chunk
    assert answer == b"imok", answer


def cleanup():
    zk = client(plain)
    zk.start(timeout=15)
    try:
        zk.delete(ROOT, recursive=True)
    finally:
        zk.stop()
        zk.close()


check("kazoo_crud", crud)
check("kazoo_watch", watch_event)
check("four_letter_word", four_letter_word)
check("no_client_certificate_refused", refused(lambda: tls_client(certfile=None, keyfile=None)))
check("untrusted_server_refused", refused(lambda: tls_client(ca=os.path.join(tls_dir, "client.crt"))))
check("plain_client_refused", refused(lambda: client(secure)))
check("cleanup", cleanup)
