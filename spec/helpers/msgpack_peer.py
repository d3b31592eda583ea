#!/usr/bin/python3
"""A real MessagePack peer for spec/interop_spec.lua: Debian's python3-msgpack.

    msgpack_peer.py check                 prints "ok" (exit 3 when python3-msgpack is missing)
    msgpack_peer.py roundtrip IN OUT      decodes IN, re-encodes it into OUT (use_bin_type=True)
    msgpack_peer.py describe IN           prints IN decoded, with the Python type of every item
    msgpack_peer.py emit OUT              writes sample values, each framed as
                                          "name\\nlength\\n" + bytes

Run it with /usr/bin/python3: another python3 earlier on PATH may lack the package.
"""
import math
import sys

try:
    import msgpack
except ImportError:
    sys.stderr.write("python3-msgpack is not installed for %s "
                     "(apt-get install -y python3-msgpack)\n" % sys.executable)
    sys.exit(3)


def unpack(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def describe(v):
    """One line naming each item's Python type: int:1, float:-0.0, str:'a', bin:ff00, [..], {..}."""
    if v is None:
        return "nil"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return "int:%d" % v
    if isinstance(v, float):
        if math.isnan(v):
            return "float:nan"
        return "float:%r" % v
    if isinstance(v, str):
        return "str:%r" % v
    if isinstance(v, bytes):
        return "bin:" + v.hex()
    if isinstance(v, list):
        return "[" + ", ".join(describe(x) for x in v) + "]"
    if isinstance(v, dict):
        items = sorted("%s=%s" % (describe(k), describe(x)) for k, x in v.items())
        return "{" + ", ".join(items) + "}"
    return "other:%r" % (v,)


def samples():
    """Values as other programs write them, including forms lxshm never writes."""
    yield "ints", msgpack.packb([0, 1, -1, 127, 128, -33, 255, 256, 65535, 65536, 2**32 - 1,
                                 2**32, 2**63 - 1, -2**63])
    yield "floats", msgpack.packb([1.5, 0.1, -0.0, math.inf, -math.inf, math.nan, 1e300])
    yield "single", msgpack.packb([1.5, 0.1], use_single_float=True)
    yield "str_bin", msgpack.packb(["h\u00e9llo", b"\xff\x00\x01", "", b""], use_bin_type=True)
    yield "old_raw", msgpack.packb("abc", use_bin_type=False)
    yield "nested", msgpack.packb({"name": "x", "list": [1, [2, [3]]], 1: "int key",
                                   -5: "negative key", 2.5: "float key",
                                   "map": {"a": {"b": None}}}, use_bin_type=True)
    yield "bool_nil", msgpack.packb([True, False, None, 1])
    yield "big", msgpack.packb({"seq": list(range(70000)),
                                "map": {"k%d" % i: i for i in range(20)},
                                "text": "t" * 70000, "blob": bytes(range(256)) * 2},
                               use_bin_type=True)
    yield "uint64_max", msgpack.packb(2**64 - 1)
    yield "timestamp", msgpack.packb(msgpack.Timestamp(1, 0))
    yield "ext5", msgpack.packb(msgpack.ExtType(5, b"abc"))


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "check":
        print("ok")
    elif cmd == "roundtrip":
        with open(argv[2], "rb") as f:
            value = unpack(f.read())
        with open(argv[3], "wb") as f:
            f.write(msgpack.packb(value, use_bin_type=True))
    elif cmd == "describe":
        with open(argv[2], "rb") as f:
            print(describe(unpack(f.read())))
    elif cmd == "emit":
        with open(argv[2], "wb") as f:
            for name, data in samples():
                f.write(b"%s\n%d\n" % (name.encode(), len(data)))
                f.write(data)
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
