#!/usr/bin/env python3
"""Recording TCP proxy used to capture the golden jute frames.

Usage: record.py LISTEN_PORT TARGET_PORT OUT_DIR [split]

Every accepted connection N is forwarded to 127.0.0.1:TARGET_PORT and the raw
bytes of each direction are appended to OUT_DIR/connN.c2s and OUT_DIR/connN.s2c.

If the client sends a frame containing the marker path
b"/golden-drop-connection", the proxy closes that connection about half a
second later; the ZooKeeper client then reconnects to the same session and
replays its watches with SetWatches/SetWatches2, which we want on tape.

`record.py split OUT_DIR GOLDEN_DIR` splits the captures into frames: each
frame's 4-byte big-endian length prefix is stripped and the body is written to
GOLDEN_DIR/connNN-DIR-SEQ-what.bin, where `what` names the record (decoded
just far enough to pick a name: connect, op names, reply xids).
"""
import os
import socket
import struct
import sys
import threading
import time

MARKER = b"/golden-drop-connection"

OPS = {
    0: "notification", 1: "create", 2: "delete", 3: "exists", 4: "getData",
    5: "setData", 6: "getACL", 7: "setACL", 8: "getChildren", 9: "sync",
    11: "ping", 12: "getChildren2", 13: "check", 14: "multi", 15: "create2",
    16: "reconfig", 17: "checkWatches", 18: "removeWatches",
    19: "createContainer", 20: "deleteContainer", 21: "createTTL",
    22: "multiRead", 100: "auth", 101: "setWatches", 102: "sasl",
    103: "getEphemerals", 104: "getAllChildrenNumber", 105: "setWatches2",
    106: "addWatch", 107: "whoAmI", -10: "createSession", -11: "closeSession",
}


def pump(src, dst, path, watch_marker, conn_close):
    with open(path, "ab") as out:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                break
            if not data:
                break
            out.write(data)
            out.flush()
            try:
                dst.sendall(data)
            except OSError:
                break
            if watch_marker and MARKER in data:
                threading.Timer(0.5, conn_close).start()
    conn_close()


def serve(listen_port, target_port, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", listen_port))
    lsock.listen(16)
    n = 0
    while True:
        client, _ = lsock.accept()
        n += 1
        server = socket.create_connection(("127.0.0.1", target_port))
        lock = threading.Lock()
        closed = [False]

        def close(c=client, s=server, lock=lock, closed=closed):
            with lock:
                if closed[0]:
                    return
                closed[0] = True
            for sock in (c, s):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

        base = os.path.join(out_dir, "conn%02d" % n)
        threading.Thread(target=pump, args=(client, server, base + ".c2s", True, close), daemon=True).start()
        threading.Thread(target=pump, args=(server, client, base + ".s2c", False, close), daemon=True).start()


def frames(data):
    out = []
    pos = 0
    while pos + 4 <= len(data):
        (length,) = struct.unpack(">i", data[pos:pos + 4])
        if length < 0 or pos + 4 + length > len(data):
            break
        out.append(data[pos + 4:pos + 4 + length])
        pos += 4 + length
    return out


def split(out_dir, golden_dir):
    os.makedirs(golden_dir, exist_ok=True)
    conns = sorted({f.rsplit(".", 1)[0] for f in os.listdir(out_dir) if f.startswith("conn")})
    for conn in conns:
        xid_ops = {}
        for direction in ("c2s", "s2c"):
            path = os.path.join(out_dir, conn + "." + direction)
            if not os.path.exists(path):
                continue
            with open(path, "rb") as f:
                fs = frames(f.read())
            for seq, frame in enumerate(fs):
                if seq == 0:
                    what = "connect"
                elif direction == "c2s":
                    xid, op = struct.unpack(">ii", frame[:8])
                    xid_ops[xid] = op
                    what = OPS.get(op, "op%d" % op)
                else:
                    xid, _zxid, err = struct.unpack(">iqi", frame[:16])
                    if xid == -1:
                        what = "watchEvent"
                    else:
                        what = OPS.get(xid_ops.get(xid), "unknown")
                    if err != 0:
                        what += "-err%d" % -err
                name = "%s-%s-%03d-%s.bin" % (conn, direction, seq, what)
                with open(os.path.join(golden_dir, name), "wb") as f:
                    f.write(frame)


if __name__ == "__main__":
    if sys.argv[1] == "split":
        split(sys.argv[2], sys.argv[3])
    else:
        serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
