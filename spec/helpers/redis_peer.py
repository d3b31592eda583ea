#!/usr/bin/python3
"""Reads and writes lxshm's objects in Redis the way another program would: straight from the
keys, with Debian's python3-msgpack, for spec/redis_interop_spec.lua. No Redis client library:
a few lines of RESP over the server's Unix socket.

    redis_peer.py SOCK PREFIXNAME segment          the segment's current value
    redis_peer.py SOCK PREFIXNAME queue            every value waiting in the queue, oldest first
    redis_peer.py SOCK PREFIXNAME dict ENCKEY      the value of one dictionary key ("s:name", "i:1")
    redis_peer.py SOCK PREFIXNAME topic            every message held, oldest first
        print one line per value: its bytes in hex, a tab, msg_peer.describe() of the value
    redis_peer.py SOCK PREFIXNAME put-segment      unpacks the segment's value, packs it again
        (use_bin_type=True) and commits it as the next version, as lxshm's put would

PREFIXNAME is the key prefix and the object's name ("lxshm:jobs"): the object's facts are the
hash "{lxshm:jobs}", its data the keys "{lxshm:jobs}:INCARNATION:…" (README, Beyond one machine).
"""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgpack_peer import describe, unpack  # noqa: E402  (python3-msgpack, and its check)

import msgpack  # noqa: E402


class Redis:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self._read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._reply() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._reply()


def fields(flat):
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def main(argv):
    sock, name, kind = argv[1], argv[2], argv[3]
    r = Redis(sock)
    meta = "{%s}" % name
    inc = r.call("HGET", meta, "inc")
    if inc is None:
        sys.stderr.write("no object %s\n" % meta)
        return 1
    base = meta + ":" + inc.decode() + ":"
    values = []
    if kind == "segment":
        entries = r.call("XREVRANGE", base + "s", "+", "-", "COUNT", "1")
        values = [fields(e[1])[b"v"] for e in entries]
    elif kind == "queue":
        values = r.call("LRANGE", base + "l", "0", "-1")
    elif kind == "dict":
        values = [r.call("HGET", base + "k:" + argv[4], "v")]
    elif kind == "topic":
        values = [fields(e[1])[b"v"] for e in r.call("XRANGE", base + "x", "-", "+")]
    elif kind == "put-segment":
        entries = r.call("XREVRANGE", base + "s", "+", "-", "COUNT", "1")
        value = unpack(fields(entries[0][1])[b"v"])
        data = msgpack.packb(value, use_bin_type=True)
        r.call("XADD", base + "s", "NOMKSTREAM", "MAXLEN", "1", "0-*", "f", "1", "p", "0",
               "t", "0", "v", data)
        return 0
    else:
        sys.stderr.write(__doc__)
        return 2
    for v in values:
        print("%s\t%s" % (v.hex(), describe(unpack(v))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
