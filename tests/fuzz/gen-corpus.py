#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora and dictionaries of tests/fuzz/ (they are checked in; rerun after changing
the protocol and commit the result):

  corpus-codec/     one JSON datagram per file: op-NAME.json (a request whose args decode strictly as
                    NAME), reply-NAME.json, event-NAME.json, error-*.json, and bad-*.json (each rejected
                    at a different check)
  corpus-requests/  conversations for fuzz-requests (record format: fuzz-requests.c); op-NAME is a clean
                    conversation in which gmemd answers NAME with a result, event-NAME one in which some
                    client is sent NAME, the rest reach error paths, timeouts and disconnects
  fuzz-*.dict       libFuzzer dictionaries: the protocol's names and the record commands

The replay tests check the op-/event-/reply- promises (replay --check-seeds), so a seed that stops doing
what its name says fails the build's tests, not just the fuzzer's coverage.
"""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

OPS = ["hello", "status", "create", "destroy", "list", "open", "attach", "detach", "lease", "release",
       "convert", "vote", "ack", "map", "watch", "grant", "revoke", "clients", "conversions", "delegate",
       "redeem", "undelegate", "resolve", "list-lost", "forget", "publish-map", "holders", "cancel", "evict",
       "stats", "list-orphans", "adopt", "destroy-orphan"]
EVENTS = ["shutdown", "guest-destroyed", "prepare", "commit", "abort", "done", "conversion", "revoked"]
TOKEN = "@T"  # fuzz-requests.c: replaced by the token of the last delegate reply
EPOCH = 1  # fuzz-requests.c: FUZZ_EPOCH


def j(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def write(dirname, name, data):
    path = os.path.join(HERE, dirname, name)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


# ---------------------------------------------------------------------------------------------------
# corpus-codec

GUEST = {"id": 3, "name": "vm1", "size": 1073741824, "granule": 2097152, "owner": 1000, "touched": 8192,
         "holders": 2, "attachments": 1, "leased": True}

CODEC_REQUESTS = {
    "hello": {"version": 1, "role": "vmm", "features": ["lease", "list-pages", "convert", "future-thing"],
              "client_name": "qemu-1"},
    "status": None,
    "create": {"name": "vm1", "size": 1073741824, "granule": 2097152, "ephemeral": True},
    "destroy": {"name": "vm1", "force": True},
    "list": {"after": 3},
    "open": {"name": "vm1"},
    "attach": {"name": "vm1", "offset": 2097152, "length": 4194304, "kind": "iommu"},
    "detach": {"id": 7},
    "lease": {"name": "vm1"},
    "release": {"name": "vm1"},
    "convert": {"name": "vm1", "ranges": [{"offset": 0, "length": 2097152}, {"offset": 4194304, "length": 2097152}],
                "target": "private", "content": "zero", "force": False},
    "vote": {"epoch": 123456789, "seq": 4, "vote": "no", "errno": "EBUSY", "reason": "DMA in flight"},
    "ack": {"epoch": 123456789, "seq": 4},
    "map": {"name": "vm1", "offset": 4096},
    "watch": {},
    "grant": {"name": "vm1", "who": "uid:1000", "role": "device"},
    "revoke": {"name": "vm1", "who": "gid:4242", "role": "vmm"},
    "clients": {"after": 2},
    "conversions": {},
    "delegate": {"name": "vm1", "who": "uid:1001", "offset": 0, "length": 2097152, "kind": "mmap"},
    "redeem": {"token": "0123456789abcdef0123456789abcdef"},
    "undelegate": {"id": 2},
    "resolve": {"epoch": 123456789, "seq": 4},
    "list-lost": {"after": 2},
    "forget": {"name": "vm1"},
    "publish-map": {"name": "vm1"},
    "holders": {"name": "vm1", "after": 2},
    "cancel": {"epoch": 123456789, "seq": 4},
    "evict": {"client_id": 7},
    "stats": {"after": 2},
    "list-orphans": {"after": 2},
    "adopt": {"id": 7, "name": "vm1", "owner": 1000},
    "destroy-orphan": {"id": 7},
}

CODEC_REPLIES = {
    "hello": {"version": 1, "features": ["lease", "list-pages", "convert"], "server": "gmemd 0.1.0",
              "backend": "memfd", "enforcing": False, "client_id": 7},
    "status": {"server": "gmemd 0.1.0", "backend": "memfd", "enforcing": False, "pool_size": 67108864,
               "pool_used": 4194304, "touched": 0, "guests": 2, "clients": 3},
    "create": GUEST,
    "destroy": {},
    "list": {"guests": [GUEST, dict(GUEST, id=4, name="vm2", leased=False)], "next": 4},
    "open": {"guest": GUEST, "fd": 0},
    "attach": {"id": 12},
    "detach": {},
    "lease": {},
    "release": {},
    "convert": {"epoch": 123456789, "seq": 4, "outcome": "aborted", "changed": 0, "participants": 2,
                "latency_us": 1500,
                "refusals": [{"client_id": 5, "pid": 4242, "client_name": "vfio", "errno": "EBUSY",
                              "reason": "DMA in flight", "timed_out": False, "gone": False},
                             {"client_id": 6, "pid": 4343, "errno": "ETIMEDOUT", "reason": "did not vote in time",
                              "timed_out": True}],
                "unverified": [{"client_id": 9, "pid": 77, "client_name": "qemu"}]},
    "vote": {},
    "ack": {},
    "map": {"size": 16777216, "granule": 4096, "shared_bytes": 16769024, "private_bytes": 8192,
            "runs": [{"offset": 0, "length": 4096, "state": "shared"}, {"offset": 4096, "length": 8192, "state": "private"},
                     {"offset": 12288, "length": 16764928, "state": "shared"}], "next": 0},
    "watch": {},
    "grant": {},
    "revoke": {},
    "clients": {"clients": [{"id": 3, "pid": 4242, "uid": 1000, "gid": 1000, "hello": True, "role": "vmm",
                             "client_name": "qemu-1", "attachments": 2, "files": 1, "leases": 1, "converts": 0,
                             "self": True}], "next": 3},
    "conversions": {"in_flight": [{"epoch": 123456789, "seq": 5, "guest": "vm1", "target": "private",
                                   "state": "preparing", "bytes": 2097152, "ranges": 1, "participants": 2,
                                   "latency_us": 900, "requester_pid": 4242}], "omitted": 1,
                    "recent": [{"epoch": 123456789, "seq": 4, "guest": "vm1", "target": "shared",
                                "state": "aborted", "bytes": 0, "ranges": 2, "participants": 2,
                                "latency_us": 1500}]},
    "delegate": {"id": 2, "token": "0123456789abcdef0123456789abcdef", "expires_ms": 30000},
    "redeem": {"guest": dict(GUEST, delegations=1), "fd": 0, "attachment": 5, "delegation": 2},
    "undelegate": {},
    "resolve": {"guest": "vm1", "outcome": "committed"},
    "list-lost": {"guests": [{"id": 3, "name": "vm1", "size": 1073741824, "granule": 2097152, "owner": 1000}]},
    "forget": {},
    "publish-map": {"fd": 0, "bytes": 12288, "granule": 4096, "granules": 262144},
    "holders": {"holders": [{"client_id": 3, "pid": 4242, "uid": 1000, "client_name": "qemu", "role": "vmm",
                             "files": 2, "leased": True, "attachments": 1,
                             "ranges": [{"id": 1, "offset": 0, "length": 1073741824, "kind": "kvm"}]},
                            {"client_id": 5, "pid": 4343, "uid": 1000, "role": "device", "files": 1,
                             "leased": False, "attachments": 0}], "next": 5},
    "cancel": {},
    "evict": {},
    "stats": {"guests": [{"id": 3, "name": "vm1", "conversions": 120, "committed": 100, "aborted": 19,
                          "unverified": 1, "queued": 1, "window": 120, "p50_us": 150, "p99_us": 2500,
                          "quarantined_bytes": 0, "slowest_client_id": 5, "slowest_pid": 4343,
                          "slowest_name": "vfio", "slowest_vote_us": 1400},
                         {"id": 4, "name": "vm2", "conversions": 0, "committed": 0, "aborted": 0, "unverified": 0,
                          "queued": 0, "window": 0, "p50_us": 0, "p99_us": 0, "quarantined_bytes": 0}],
              "next": 4, "quarantined_bytes": 0},
    "list-orphans": {"orphans": [{"id": 7, "size": 1073741824, "granule": 2097152, "on_node": True, "node": 1,
                                  "private": 2097152, "holders": 1, "cookie": 3},
                                 {"id": 9, "size": 4096, "granule": 4096, "private": 0, "holders": 0, "cookie": 12}],
                     "next": 9},
    "adopt": GUEST,
    "destroy-orphan": {},
}

CODEC_EVENTS = {
    "shutdown": {"reason": "gmemd is stopping"},
    "guest-destroyed": {"name": "vm1"},
    "prepare": {"epoch": 123456789, "seq": 4, "guest": "vm1", "target": "private", "content": "preserve",
                "role": "device", "ranges": [{"offset": 0, "length": 2097152}]},
    "commit": {"epoch": 123456789, "seq": 4, "guest": "vm1", "wave": 3},
    "abort": {"epoch": 123456789, "seq": 4, "guest": "vm1"},
    "done": {"epoch": 123456789, "seq": 4, "guest": "vm1", "outcome": "committed-unverified"},
    "conversion": {"epoch": 123456789, "seq": 4, "guest": "vm1", "target": "shared", "state": "preparing",
                   "bytes": 4096, "ranges": 1, "participants": 2, "latency_us": 12, "requester_pid": 99},
    "revoked": {"name": "vm1", "attachment": 5, "delegation": 2},
}


def codec_corpus():
    d = "corpus-codec"
    for i, op in enumerate(OPS):
        msg = {"id": i + 1, "op": op}
        if CODEC_REQUESTS[op] is not None:
            msg["args"] = CODEC_REQUESTS[op]
        write(d, f"op-{op}.json", j(msg))
        write(d, f"reply-{op}.json", j({"id": i + 1, "result": CODEC_REPLIES[op]}))
    for ev in EVENTS:
        write(d, f"event-{ev}.json", j({"event": ev, "data": CODEC_EVENTS[ev]}))
    # A few more shapes of valid messages.
    write(d, "op-hello-minimal.json", j({"id": 0, "op": "hello", "args": {"version": 1, "role": "admin"}}))
    write(d, "op-create-4k.json", j({"op": "create", "args": {"size": 4096, "name": "a.b_c-9"}, "id": 9223372036854775807}))
    write(d, "op-convert-many.json", j({"id": 8, "op": "convert", "args": {
        "name": "g", "target": "shared", "ranges": [{"offset": k * 8192, "length": 4096} for k in range(40)]}}))
    write(d, "reply-list-empty.json", j({"id": 5, "result": {"guests": []}}))
    write(d, "misc-event-unknown.json", j({"event": "from-the-future", "data": {"x": [1, {"y": None}]}}))
    write(d, "error-enoent.json", j({"id": 3, "error": {"errno": "ENOENT", "message": "no guest named 'vm9'"}}))
    write(d, "error-null-id.json", j({"id": None, "error": {"errno": "EBADMSG", "message": "not JSON: unexpected character at byte 0"}}))
    write(d, "error-unknown-errno.json", j({"id": 4, "error": {"errno": "EFROMTHEFUTURE", "message": "\u00e9\u00e8 \u2603 \U0001f600"}}))
    write(d, "error-long-message.json", j({"id": 4, "error": {"errno": "EINVAL", "message": "\u00e9" * 200}}))
    # Each rejected by a different check.
    bad = {
        "bad-empty.json": b"",
        "bad-truncated.json": b'{"id":1,"op":"hello","args":{"version":1',
        "bad-trailing.json": b'{"id":1,"op":"status"} {}',
        "bad-array.json": b'[{"id":1,"op":"status"}]',
        "bad-deep.json": b'{"id":1,"op":"status","args":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{}}}}}}}}}}',
        "bad-nul-escape.json": b'{"id":1,"op":"open","args":{"name":"a\\u0000b"}}',
        "bad-nul-byte.json": b'{"id":1,"op":"open","args":{"name":"a\x00b"}}',
        "bad-utf8-overlong.json": b'{"id":1,"op":"open","args":{"name":"\xc0\xaf"}}',
        "bad-utf8-surrogate.json": b'{"id":1,"op":"open","args":{"name":"\xed\xa0\x80"}}',
        "bad-surrogate-escape.json": b'{"id":1,"op":"open","args":{"name":"\\ud800x\\udc00\\ud83d\\ude00"}}',
        "bad-negative-id.json": b'{"id":-1,"op":"status"}',
        "bad-huge-id.json": b'{"id":18446744073709551615,"op":"status"}',
        "bad-float.json": b'{"id":1,"op":"create","args":{"name":"g","size":1e6}}',
        "bad-unknown-key.json": b'{"id":1,"op":"status","args":{"verbose":true}}',
        "bad-unknown-top.json": b'{"id":1,"op":"status","extra":1}',
        "bad-unknown-op.json": b'{"id":1,"op":"explode","args":{}}',
        "bad-range.json": b'{"id":1,"op":"create","args":{"name":"g","size":4611686018427387905}}',
        "bad-long-name.json": ('{"id":1,"op":"open","args":{"name":"' + "n" * 65 + '"}}').encode(),
        "bad-enum.json": b'{"id":1,"op":"hello","args":{"version":1,"role":"root"}}',
        "bad-flags.json": b'{"id":1,"op":"hello","args":{"version":1,"role":"vmm","features":["a",1]}}',
        "bad-ranges-null.json": b'{"id":1,"op":"convert","args":{"name":"g","target":"shared","ranges":[null]}}',
        "bad-dup-key.json": b'{"id":1,"id":2,"op":"status","op":"watch"}',
        "bad-reply-no-id.json": b'{"result":{}}',
        "bad-error-shape.json": b'{"id":1,"error":"ENOENT"}',
        "bad-event-data.json": b'{"event":"commit","data":{"epoch":1,"seq":1,"guest":"g","wave":2}}',
    }
    for name, data in bad.items():
        write(d, name, data)


# ---------------------------------------------------------------------------------------------------
# corpus-requests

class Conv:
    """Builds one fuzz-requests input: records separated by newlines."""

    def __init__(self):
        self.lines = []
        self.ids = {}

    def rec(self, line):
        self.lines.append(line)
        return self

    def req(self, client, op, args=None, prefix=""):
        self.ids[client] = self.ids.get(client, 0) + 1
        msg = {"id": self.ids[client], "op": op}
        if args is not None:
            msg["args"] = args
        return self.rec(f"{prefix}{client}{j(msg)}")

    def hello(self, client, role="vmm", name=None):
        args = {"version": 1, "role": role, "features": ["lease", "list-pages", "convert"]}
        if name:
            args["client_name"] = name
        return self.req(client, "hello", args)

    def create(self, client, name="g1", size=1 << 20, granule=None):
        args = {"name": name, "size": size}
        if granule:
            args["granule"] = granule
        return self.req(client, "create", args)

    def convert(self, client, name="g1", ranges=((0, 65536),), target="private", content=None):
        args = {"name": name, "ranges": [{"offset": o, "length": n} for o, n in ranges], "target": target}
        if content:
            args["content"] = content
        return self.req(client, "convert", args)

    def text(self):
        return "\n".join(self.lines) + "\n"


def vmm_and_device(c=None):
    """Client 0: vmm holding g1's lease. Client 1: device attached to [0, 64K). Client 3 is unprivileged."""
    c = c or Conv()
    c.hello(0, "vmm", "qemu").create(0).req(0, "lease", {"name": "g1"})
    c.hello(1, "device", "vfio").req(1, "attach", {"name": "g1", "offset": 0, "length": 65536, "kind": "iommu"})
    return c


def requests_corpus():
    d = "corpus-requests"
    seeds = {}

    seeds["op-hello"] = Conv().hello(0, "vmm", "qemu-1")
    seeds["op-status"] = Conv().hello(0).create(0).req(0, "status")
    seeds["op-create"] = (Conv().hello(0).create(0, "g1").create(0, "g2", 4 << 20, 2 << 20)
                          .req(0, "create", {"name": "g3", "size": 1 << 20, "ephemeral": True})
                          .req(0, "lease", {"name": "g3"}))
    seeds["op-destroy"] = Conv().hello(0).create(0).req(0, "destroy", {"name": "g1"})
    seeds["op-list"] = Conv().hello(0).create(0, "g1").create(0, "g2").req(0, "list").req(0, "list", {"after": 1})
    seeds["op-open"] = Conv().hello(0).create(0).req(0, "open", {"name": "g1"}).req(0, "open", {"name": "g1"})
    seeds["op-attach"] = (Conv().hello(0).create(0).hello(1, "device")
                          .req(1, "attach", {"name": "g1", "offset": 4096, "length": 8192, "kind": "mmap"})
                          .req(1, "attach", {"name": "g1", "offset": 0, "length": 1 << 20, "kind": "iommu"}))
    seeds["op-detach"] = (Conv().hello(0).create(0).hello(1, "device")
                          .req(1, "attach", {"name": "g1", "offset": 0, "length": 4096, "kind": "mmap"})
                          .req(1, "detach", {"id": 1}))
    seeds["op-lease"] = (Conv().hello(0).create(0).req(0, "lease", {"name": "g1"})
                         .req(0, "attach", {"name": "g1", "offset": 0, "length": 1 << 20, "kind": "kvm"}))
    seeds["op-release"] = (Conv().hello(0).create(0).req(0, "lease", {"name": "g1"})
                           .req(0, "attach", {"name": "g1", "offset": 0, "length": 4096, "kind": "kvm"})
                           .req(0, "release", {"name": "g1"}))
    seeds["op-convert"] = (Conv().hello(0).create(0).convert(0, ranges=((0, 8192), (4096, 8192), (65536, 4096)))
                           .convert(0, target="shared", content="zero"))
    # Conversion 1 (epoch 1): the vmm votes and acks by hand, with literal epoch and seq.
    seeds["op-vote"] = (Conv().hello(0, "vmm").create(0).req(0, "lease", {"name": "g1"}).hello(1, "admin")
                        .convert(1).req(0, "vote", {"epoch": EPOCH, "seq": 1, "vote": "yes"})
                        .req(0, "ack", {"epoch": EPOCH, "seq": 1}))
    c = vmm_and_device().convert(0)
    c.req(0, "vote", {"epoch": EPOCH, "seq": 1, "vote": "yes"}).req(1, "vote", {"epoch": EPOCH, "seq": 1, "vote": "yes"})
    c.req(1, "ack", {"epoch": EPOCH, "seq": 1}).req(0, "ack", {"epoch": EPOCH, "seq": 1})
    seeds["op-ack"] = c
    seeds["op-map"] = (Conv().hello(0).create(0).convert(0, ranges=((4096, 4096), (16384, 8192)))
                       .req(0, "map", {"name": "g1"}).req(0, "map", {"name": "g1", "offset": 8192}))
    seeds["op-watch"] = Conv().hello(1, "admin").req(1, "watch").hello(0).create(0).convert(0)
    # Clients 2 and 3 are uids 60002 and 60003; 3 is also in the admin group 61000.
    seeds["op-grant"] = (Conv().hello(0).create(0).req(0, "grant", {"name": "g1", "who": "uid:60002", "role": "device"})
                         .hello(2, "device").req(2, "open", {"name": "g1"})
                         .req(2, "attach", {"name": "g1", "offset": 0, "length": 4096, "kind": "iommu"})
                         .req(0, "grant", {"name": "g1", "who": "gid:60003", "role": "vmm"})
                         .hello(3, "vmm").req(3, "lease", {"name": "g1"}).convert(3, ranges=((8192, 4096),)))
    seeds["op-clients"] = Conv().hello(0).hello(1, "admin").req(1, "clients").req(0, "clients", {"after": 1})
    seeds["op-conversions"] = Conv().hello(0).create(0).convert(0).req(0, "conversions")
    seeds["op-revoke"] = (Conv().hello(0).create(0).req(0, "grant", {"name": "g1", "who": "uid:60002", "role": "vmm"})
                          .req(0, "grant", {"name": "g1", "who": "uid:60002", "role": "device"})
                          .req(0, "revoke", {"name": "g1", "who": "uid:60002", "role": "device"}))
    # A restart ('R') with a conversion in flight: the new gmemd ends it (presumed abort) and answers
    # resolve for it; the guest comes back lost (no fd store in process), listed and forgotten.
    seeds["op-resolve"] = (Conv().hello(0, "vmm").create(0).req(0, "lease", {"name": "g1"}).hello(1, "admin")
                           .convert(1).rec("R").hello(0, "vmm").req(0, "resolve", {"epoch": EPOCH, "seq": 1}))
    seeds["op-list-lost"] = Conv().hello(0).create(0).rec("R").hello(0).req(0, "list-lost")
    seeds["op-forget"] = (Conv().hello(0).create(0).rec("R").hello(0).req(0, "forget", {"name": "g1"})
                          .create(0))
    # Orphans are the kmod backend's: on this memfd harness an admin is answered EOPNOTSUPP (what these
    # seeds must get, fuzz-requests.c kmod_only), anyone else EPERM.
    seeds["op-list-orphans"] = Conv().hello(3, "admin").req(3, "list-orphans").req(3, "list-orphans", {"after": 5})
    seeds["op-adopt"] = Conv().hello(3, "admin").req(3, "adopt", {"id": 1, "name": "o1", "owner": 60003})
    seeds["op-destroy-orphan"] = Conv().hello(3, "admin").req(3, "destroy-orphan", {"id": 1})
    seeds["orphans-not-admin"] = (Conv().hello(0).create(0).req(0, "list-orphans")
                                  .req(0, "adopt", {"id": 1, "name": "o1", "owner": 0})
                                  .req(0, "destroy-orphan", {"id": 1}))

    # Delegation: client 0 owns g1 and delegates to uid 60002 (client 2), which redeems over its own
    # connection; "@T" is the token of the last delegate reply (fuzz-requests.c).
    def delegated(c=None):
        c = c or Conv()
        c.hello(0).create(0).req(0, "grant", {"name": "g1", "who": "uid:60002", "role": "device"})
        return c.req(0, "open", {"name": "g1"}).req(0, "delegate", {"name": "g1", "who": "uid:60002", "offset": 0,
                                                                     "length": 65536, "kind": "iommu"})
    seeds["op-delegate"] = delegated()
    seeds["op-redeem"] = delegated().hello(2, "device").req(2, "redeem", {"token": TOKEN})
    seeds["op-undelegate"] = (delegated().hello(2, "device").req(2, "redeem", {"token": TOKEN})
                              .req(0, "undelegate", {"id": 1}))
    seeds["event-revoked"] = (delegated().hello(2, "device").req(2, "redeem", {"token": TOKEN})
                              .req(0, "lease", {"name": "g1"}).convert(0).rec("v0y").rec("v2y").rec("k2").rec("k0")
                              .req(0, "undelegate", {"id": 1}))
    seeds["delegate-errors"] = (delegated().hello(2, "device").hello(3, "device").req(3, "redeem", {"token": TOKEN})
                                .req(2, "redeem", {"token": "0123456789abcdef0123456789abcdef"})
                                .req(0, "delegate", {"name": "g1", "who": "uid:60003", "offset": 0, "length": 4096,
                                                     "kind": "mmap"})
                                .req(0, "delegate", {"name": "g1", "who": "uid:60002", "offset": 0, "length": 4096,
                                                     "kind": "kvm"})
                                .req(1, "undelegate", {"id": 1}).req(2, "redeem", {"token": TOKEN})
                                .req(2, "redeem", {"token": TOKEN}).rec("x0").req(2, "undelegate", {"id": 1}))
    seeds["delegate-expiry"] = delegated().rec("t").hello(2, "device").req(2, "redeem", {"token": TOKEN})
    # The lease holder gets the map (twice: one file each time); another client is refused.
    seeds["op-publish-map"] = (Conv().hello(0).create(0).req(0, "lease", {"name": "g1"})
                               .req(0, "publish-map", {"name": "g1"}).convert(0, ranges=((0, 8192),)).rec("v0y")
                               .rec("k0").req(0, "publish-map", {"name": "g1"}))
    seeds["op-holders"] = (vmm_and_device().req(1, "open", {"name": "g1"}).hello(3, "admin")
                           .req(3, "holders", {"name": "g1"}).req(3, "holders", {"name": "g1", "after": 1}))
    seeds["op-cancel"] = (vmm_and_device().hello(3, "admin").convert(0).rec("v0y")
                          .req(3, "cancel", {"seq": 1}))
    seeds["op-evict"] = vmm_and_device().hello(3, "admin").convert(0).rec("v0y").req(3, "evict", {"client_id": 2})
    seeds["op-stats"] = (vmm_and_device().convert(0).rec("v0y").rec("v1y").rec("k1").rec("k0")
                         .convert(0, target="shared").rec("v0y").rec("v1n").create(0, "g2")
                         .req(0, "stats").req(0, "stats", {"after": 1}).hello(2).req(2, "stats"))
    seeds["destroy-force"] = (vmm_and_device().req(1, "open", {"name": "g1"}).hello(3, "admin")
                              .req(3, "destroy", {"name": "g1", "force": True}).req(0, "status"))
    seeds["operator-refused"] = (vmm_and_device().convert(0).rec("v0y").rec("v1y")
                                 .req(0, "holders", {"name": "g1"}).req(0, "cancel", {"seq": 1})
                                 .req(0, "evict", {"client_id": 2}).req(0, "destroy", {"name": "g1", "force": True})
                                 .hello(3, "admin").req(3, "cancel", {"seq": 1}).req(3, "cancel", {"seq": 9})
                                 .req(3, "evict", {"client_id": 99}).req(3, "evict", {"client_id": 4}))
    seeds["publish-map-refused"] = (Conv().hello(0).create(0).req(0, "lease", {"name": "g1"}).hello(1)
                                    .req(1, "publish-map", {"name": "g1"}).req(0, "publish-map", {"name": "g9"}))

    seeds["event-shutdown"] = Conv().hello(0).hello(1).rec("S")
    seeds["event-guest-destroyed"] = (Conv().hello(0).create(0).hello(1).req(1, "open", {"name": "g1"})
                                      .req(0, "destroy", {"name": "g1"}))
    seeds["event-prepare"] = vmm_and_device().convert(0).rec("v0y").rec("v1y").rec("k1").rec("k0")
    seeds["event-commit"] = vmm_and_device().convert(0, target="private").rec("v1y").rec("v0y").rec("k1").rec("k0") \
        .convert(0, target="shared").rec("v0y").rec("v1y").rec("k0").rec("k1")
    seeds["event-abort"] = vmm_and_device().convert(0).rec("v0y").rec("v1n")
    seeds["event-done"] = vmm_and_device().convert(0, content="zero").rec("v0y").rec("v1y").rec("k1").rec("k0")
    seeds["event-conversion"] = Conv().hello(2, "admin").hello(1).req(1, "watch").hello(0).create(0).convert(0)

    # Timeouts, disconnects, queues and destroys in the middle of a conversion.
    seeds["timeout-prepare"] = vmm_and_device().convert(0).rec("v1y").rec("t")
    seeds["timeout-ack"] = vmm_and_device().convert(0).rec("v0y").rec("v1y").rec("t").rec("t")
    seeds["gone-unvoted"] = vmm_and_device().convert(0).rec("v0y").rec("x1")
    seeds["gone-voted"] = vmm_and_device().convert(0).rec("v0y").rec("v1y").rec("x1").rec("k0").rec("r1").hello(1)
    seeds["gone-requester"] = vmm_and_device().hello(2, "admin").convert(0).rec("x0").rec("v1y").rec("k1")
    seeds["destroy-undecided"] = vmm_and_device().convert(0).convert(0, target="shared").req(0, "destroy", {"name": "g1"})
    seeds["destroy-decided"] = vmm_and_device().convert(0).rec("v0y").rec("v1y").req(1, "destroy", {"name": "g1"})
    c = vmm_and_device().create(0, "g2").convert(0).convert(0, "g2").convert(0, target="shared")
    seeds["queue"] = c.req(1, "attach", {"name": "g1", "offset": 0, "length": 4096, "kind": "mmap"}) \
        .rec("v0y").rec("v1y").rec("k1").rec("k0").rec("v0y").rec("v1y").rec("k0").rec("k1")
    seeds["converts-max"] = vmm_and_device().rec('*5' + "0" + j({"id": 100, "op": "convert", "args": {
        "name": "g1", "ranges": [{"offset": 0, "length": 4096}], "target": "private"}})).rec("t")
    seeds["convert-errors"] = (Conv().hello(0).create(0)
                               .convert(0, ranges=()).convert(0, ranges=((1, 4096),)).convert(0, ranges=((0, 2 << 20),))
                               .req(0, "convert", {"name": "g1", "ranges": [{"offset": 0, "length": 4096}], "target": "shared", "force": True})
                               .convert(0, name="nope").req(0, "vote", {"epoch": EPOCH, "seq": 1, "vote": "yes"})
                               .req(0, "vote", {"epoch": 2, "seq": 9, "vote": "no"}).req(0, "ack", {"epoch": EPOCH, "seq": 1}))
    seeds["vote-errors"] = vmm_and_device().convert(0).req(0, "ack", {"epoch": EPOCH, "seq": 1}) \
        .rec("v0y").req(0, "vote", {"epoch": EPOCH, "seq": 1, "vote": "no"}).hello(2) \
        .req(2, "vote", {"epoch": EPOCH, "seq": 1, "vote": "yes"}).rec("v1y").rec("k0").rec("k1") \
        .req(1, "ack", {"epoch": EPOCH, "seq": 1})
    seeds["attach-busy"] = vmm_and_device().convert(0).req(1, "attach", {"name": "g1", "offset": 0, "length": 4096, "kind": "mmap"}) \
        .req(1, "attach", {"name": "g1", "offset": 65536, "length": 4096, "kind": "mmap"}).rec("v0n")

    # Access, roles, hello rules.
    seeds["unprivileged"] = (Conv().hello(2, "vmm").create(2, "mine").hello(3, "vmm").req(3, "open", {"name": "mine"})
                             .req(3, "lease", {"name": "mine"}).req(3, "status").req(3, "list").hello(0).req(0, "list")
                             .req(0, "open", {"name": "mine"}).req(2, "destroy", {"name": "mine"}))
    seeds["grant-errors"] = (Conv().hello(0).create(0).hello(2, "vmm").hello(3, "admin").create(2, "theirs")
                             .req(2, "grant", {"name": "g1", "who": "uid:60002", "role": "vmm"})
                             .req(0, "grant", {"name": "g1", "who": "user:1", "role": "vmm"})
                             .req(0, "grant", {"name": "g1", "who": "uid:4294967295", "role": "vmm"})
                             .req(0, "grant", {"name": "g1", "who": "uid:1", "role": "admin"})
                             .req(0, "grant", {"name": "g1", "who": "uid:60002", "role": "device"})
                             .req(2, "lease", {"name": "g1"}).req(2, "destroy", {"name": "g1"})
                             .req(2, "attach", {"name": "g1", "offset": 0, "length": 4096, "kind": "kvm"})
                             .req(0, "revoke", {"name": "g1", "who": "uid:60002", "role": "vmm"})
                             .req(0, "revoke", {"name": "g1", "who": "uid:60002", "role": "device"})
                             .req(2, "open", {"name": "g1"}).req(3, "destroy", {"name": "theirs"})
                             .rec('*6' + "0" + j({"id": 50, "op": "grant", "args": {"name": "g1", "who": "uid:$", "role": "device"}})))
    seeds["quota"] = (Conv().hello(2, "vmm").create(2, "big", 16 << 20).create(2, "more", 4096)
                      .req(2, "destroy", {"name": "big"})
                      .rec('*5' + "2" + j({"id": 9, "op": "create", "args": {"name": "q$", "size": 4096}})))
    seeds["limits"] = (Conv().rec("c4").hello(4).rec("c5").hello(5).rec("x2").rec("c2").hello(2)
                       .rec("x4").rec("c4").hello(4).req(0, "status"))
    seeds["hello-rules"] = (Conv().req(0, "status").req(0, "hello", {"version": 2, "role": "vmm"})
                            .req(2, "hello", {"version": 1, "role": "admin"}).req(0, "hello", {"version": 1, "role": "vmm", "client_name": "-bad"})
                            .hello(0).hello(0))
    seeds["lease-rules"] = (Conv().hello(0, "vmm").hello(1, "vmm").hello(2, "device").create(0)
                            .req(2, "lease", {"name": "g1"}).req(0, "lease", {"name": "g1"}).req(0, "lease", {"name": "g1"})
                            .req(1, "lease", {"name": "g1"}).req(1, "release", {"name": "g1"})
                            .req(1, "attach", {"name": "g1", "offset": 0, "length": 4096, "kind": "kvm"})
                            .req(0, "release", {"name": "g1"}).req(1, "lease", {"name": "g1"}))
    seeds["create-errors"] = (Conv().hello(0).create(0, ".bad").create(0, "g1", 4097).create(0, "g1", 4096, 8192)
                              .create(0, "g1", 2 << 20, 2 << 20).create(0, "g1").create(0, "huge", 1 << 40)
                              .create(0, "g2", 32 << 20).create(0, "g3", 32 << 20))
    seeds["attach-errors"] = (Conv().hello(1, "device").hello(0).create(0)
                              .req(1, "attach", {"name": "g1", "offset": 1, "length": 4096, "kind": "mmap"})
                              .req(1, "attach", {"name": "g1", "offset": 0, "length": 2 << 20, "kind": "mmap"})
                              .req(1, "attach", {"name": "nope", "offset": 0, "length": 4096, "kind": "mmap"})
                              .req(1, "detach", {"id": 5}).req(0, "map", {"name": "g1", "offset": 1 << 20}))
    # attach on behalf of a process (gmemctl exec): pid 1, a kind that is not mmap, no such pid, pid 0,
    # and a to-private convert that such a holder blocks.
    a = {"name": "g1", "offset": 0, "length": 1 << 20, "kind": "mmap"}
    seeds["attach-pid-errors"] = (Conv().req(0, "hello", {"version": 1, "role": "vmm", "features": ["attach-pid"]})
                                  .create(0).req(0, "attach", dict(a, pid=1))
                                  .req(0, "attach", dict(a, kind="iommu", pid=1))
                                  .req(0, "attach", dict(a, pid=2147483647)).req(0, "attach", dict(a, pid=0))
                                  .req(0, "convert", {"name": "g1", "ranges": [{"offset": 0, "length": 4096}],
                                                      "target": "private"}))
    # 201 guests, one more than a list page (the input's 256 records are the budget).
    c = Conv().hello(0)
    for prefix, e in (("a", 7), ("b", 6), ("c", 3), ("d", 0)):
        c.rec(f"*{e}" + "0" + j({"id": 9, "op": "create", "args": {"name": prefix + "$", "size": 4096}}))
    seeds["many-guests"] = c.req(0, "list").req(0, "list", {"after": 200}).req(0, "status")
    # Not seeded, because each run would cost a second under ASan and starve everything else: 1,025
    # attachments (EDQUOT) and filling a paused client's 4 MiB output queue (it is dropped).

    # The transport: descriptors, oversize, empty datagrams, a reader that stops, reconnects, direct calls.
    c = Conv().hello(0)
    c.req(0, "status", prefix="F").req(0, "status", prefix="O").req(0, "list", prefix="d").rec("d0{")
    c.rec("F0not json").rec("Z1").hello(1).req(0, "status")
    seeds["transport"] = c
    seeds["paused"] = (Conv().hello(1).create(1).rec("p1").rec('*7' + "1" + j({"id": 3, "op": "list"})).rec("p1")
                       .req(1, "status"))
    seeds["reconnect"] = (Conv().hello(0).create(0).req(0, "open", {"name": "g1"}).req(0, "lease", {"name": "g1"})
                          .rec("r0").hello(0).req(0, "lease", {"name": "g1"}).rec("x0").rec("x0").rec("r3").hello(3))
    seeds["restart"] = (vmm_and_device().req(1, "open", {"name": "g1"}).convert(0).rec("v0y").convert(0, target="shared")
                        .rec("R").hello(0).create(0).req(0, "list"))
    seeds["shutdown-then-more"] = Conv().hello(0).create(0).rec("S").req(0, "status").rec("S")
    seeds["bad-json"] = (Conv().rec("0").rec('0{"id":1,"op":"hello","args":{"version":1,"role":"vmm"}} x')
                         .rec('0{"id":1,"op":"hello","args":{"version":1,"role":"vmm","extra":1}}')
                         .rec('0{"id":-5,"op":"hello"}').rec('0{"op":"hello"}').rec('0{"id":1,"op":7}')
                         .rec('0{"id":1,"op":"hello","args":[]}').rec('0{"id":1,"op":"hello","bogus":{}}')
                         .rec('0{"id":2,"op":"' + "\u00e9" * 40 + '"}')
                         .rec('0{"id":3,"op":"open","args":{"name":"\\u00e9\\u0001\\"x"}}'))

    for name, conv in seeds.items():
        write(d, name, conv.text())


# ---------------------------------------------------------------------------------------------------
# dictionaries

def dict_escape(s):
    out = []
    for b in s.encode():
        if b in (0x22, 0x5c):
            out.append("\\" + chr(b))
        elif b < 0x20 or b >= 0x7f:
            out.append("\\x%02x" % b)
        else:
            out.append(chr(b))
    return '"' + "".join(out) + '"'


KEYS = ["id", "op", "args", "result", "error", "errno", "message", "event", "data", "version", "role",
        "features", "client_name", "server", "backend", "enforcing", "client_id", "pool_size", "pool_used",
        "touched", "guests", "clients", "name", "size", "granule", "owner", "holders", "attachments", "leased",
        "after", "next", "guest", "fd", "offset", "length", "kind", "ranges", "target", "content", "force",
        "epoch", "seq", "outcome", "changed", "participants", "latency_us", "refusals", "unverified", "pid",
        "reason", "timed_out", "gone", "vote", "shared_bytes", "private_bytes", "runs", "state", "wave",
        "bytes", "requester_pid", "who", "token", "expires_ms", "attachment", "delegation", "delegations",
        "granules", "ephemeral", "uid", "files", "conversions",
        "committed", "aborted", "unverified", "queued", "window", "p50_us", "p99_us", "quarantined_bytes",
        "slowest_client_id", "slowest_pid", "slowest_name", "slowest_vote_us"]
VALUES = ["vmm", "device", "admin", "mmap", "iommu", "kvm", "shared", "private", "preserve", "zero", "yes", "no",
          "committed", "aborted", "committed-unverified", "queued", "preparing", "committing", "lease",
          "list-pages", "convert", "grants", "publish-map", "ephemeral", "operator", "stats", "uid:60002", "gid:61000", "uid:0", "ENOENT", "EINVAL", "EBUSY", "ETIMEDOUT", "EPERM"]
NUMBERS = ["0", "1", "4096", "8192", "65536", "2097152", "4611686018427387904", "9223372036854775807",
           "9223372036854775808", "-1", "1.5", "1e3"]


def dictionaries():
    tokens = [f'"{k}":' for k in KEYS] + [f'"{v}"' for v in VALUES + OPS + EVENTS] + NUMBERS
    tokens += ["true", "false", "null", "{}", "[]", "\\u0000", "\\ud800", "\\u00e9", "\u00e9", "\U0001f600"]
    with open(os.path.join(HERE, "fuzz-codec.dict"), "w") as f:
        f.write("# libFuzzer dictionary for fuzz-codec (written by gen-corpus.py)\n")
        for i, t in enumerate(tokens):
            f.write(f"t{i}={dict_escape(t)}\n")
    cmds = ["\n0", "\n1", "\n2", "\n3", "\nd0", "\nF1", "\nO0", "\nZ2", "\nx0", "\nx1", "\nr0", "\nr1",
            "\np1", "\nc4", "\nc5", "\nv0y", "\nv1y", "\nv1n", "\nk0", "\nk1", "\nt", "\nS", "\nR", "\n*4", "\n*8", "$", '"@T"',
            '{"id":1,"op":"', '","args":{', '{"offset":0,"length":4096}', '"name":"g1"', '"size":1048576']
    with open(os.path.join(HERE, "fuzz-requests.dict"), "w") as f:
        f.write("# libFuzzer dictionary for fuzz-requests (written by gen-corpus.py)\n")
        for i, t in enumerate(tokens + cmds):
            f.write(f"t{i}={dict_escape(t)}\n")


def main():
    for d in ("corpus-codec", "corpus-requests"):
        shutil.rmtree(os.path.join(HERE, d), ignore_errors=True)
        os.makedirs(os.path.join(HERE, d))
    codec_corpus()
    requests_corpus()
    dictionaries()
    return 0


if __name__ == "__main__":
    sys.exit(main())
