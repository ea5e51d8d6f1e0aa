#!/usr/bin/env python3
"""Hand-rolled client for the corner cases the Java client never produces.

Usage: rawclient.py PORT

* connects the way a pre-3.4 client does (ConnectRequest without the
  read-only byte) to see whether the server's ConnectResponse has the byte;
* sends a multi whose create op uses header op 15 (create2) with persistent
  flags, to see which result op the server answers with;
* creates a node with null data and reads it back, to see a null buffer in a
  reply;
* sends SetWatches under the reserved xid -8.
"""
import socket
import struct
import sys


def ustring(s):
    if s is None:
        return struct.pack(">i", -1)
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def buffer(b):
    if b is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(b)) + b


OPEN_ACL = struct.pack(">i", 1) + struct.pack(">i", 31) + ustring("world") + ustring("anyone")


def create_body(path, data, flags):
    return ustring(path) + buffer(data) + OPEN_ACL + struct.pack(">i", flags)


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.xid = 0

    def send(self, payload):
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def recv(self):
        head = self._exact(4)
        (n,) = struct.unpack(">i", head)
        return self._exact(n)

    def _exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out

    def call(self, op, body, xid=None):
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.send(struct.pack(">ii", xid, op) + body)
        while True:
            reply = self.recv()
            rxid, zxid, err = struct.unpack(">iqi", reply[:16])
            print("reply xid=%d zxid=%d err=%d body=%d bytes" % (rxid, zxid, err, len(reply) - 16))
            if rxid == xid:
                return reply


def main():
    port = int(sys.argv[1])
    c = Conn(port)
    # Old-style ConnectRequest: no trailing read-only byte.
    c.send(struct.pack(">iqiq", 0, 0, 10000, 0) + buffer(b"\0" * 16))
    resp = c.recv()
    print("connect response %d bytes" % len(resp))

    c.call(1, create_body("/py", b"raw", 0))
    # multi: header op 15 (create2) with persistent flags, then createContainer.
    multi = b""
    multi += struct.pack(">i?i", 15, False, -1) + create_body("/py/a", b"a", 0)
    multi += struct.pack(">i?i", 15, False, -1) + create_body("/py/s-", b"s", 2)
    multi += struct.pack(">i?i", 19, False, -1) + create_body("/py/c", b"c", 4)
    multi += struct.pack(">i?i", -1, True, -1)
    c.call(14, multi)
    # Null data in, null data out?
    c.call(1, create_body("/py/null", None, 0))
    c.call(4, ustring("/py/null") + b"\0")
    # SetWatches under the reserved xid.
    c.call(101, struct.pack(">q", 0) + struct.pack(">i", 1) + ustring("/py")
           + struct.pack(">i", 0) + struct.pack(">i", 0), xid=-8)
    # Tidy up and close.
    for path in ("/py/a", "/py/s-0000000001", "/py/c", "/py/null", "/py"):
        c.call(2, ustring(path) + struct.pack(">i", -1))
    c.call(-11, b"")
    c.sock.close()


if __name__ == "__main__":
    main()
