#!/usr/bin/python3
"""Send messages exercising every AMQP type and section, receive them back on
another link (another connection, optionally to another URL), and print what
was sent and what was received as canonical typed JSON.

The messages are encoded section by section by this script (not by
python-proton's Message class), so the exact types are under our control and
the footer is included. Both sides are decoded with the same decoder
(amqp_common.decode_message), so `sent[i]` and `received[i]` are directly
comparable.

Prints one JSON line:
{"count": K, "sent": [msg...], "received": [msg...], "equal": true,
 "differences": [{"index": i, "section": "message_annotations", "sent": .., "received": ..}],
 "outcomes": {"accepted": K, ...}, "timed_out": false}

`equal` ignores message-annotation keys starting with any --ignore-annotation-prefix
(e.g. router-added x-opt-qd.* keys) and sections named by --ignore-section.
The unfiltered received messages are always printed.
"""

import base64
import collections

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import amqp_common as ac  # noqa: E402

B64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731


def T(t, v=None, **kw):
    d = {"type": t}
    if t != "null":
        d["value"] = v
    d.update(kw)
    return d


def S(s):
    return T("string", s)


def Y(s):
    return T("symbol", s)


def tmap(pairs):
    return T("map", [[k, v] for k, v in pairs])


def primitives():
    """(key, typed value) for every AMQP primitive type, edge values included."""
    return [
        ("null", T("null")),
        ("bool-true", T("boolean", True)),
        ("bool-false", T("boolean", False)),
        ("ubyte", T("ubyte", 255)),
        ("ubyte-0", T("ubyte", 0)),
        ("ushort", T("ushort", 65535)),
        ("uint", T("uint", 4294967295)),
        ("uint-0", T("uint", 0)),
        ("uint-small", T("uint", 200)),
        ("ulong", T("ulong", "18446744073709551615")),
        ("ulong-0", T("ulong", 0)),
        ("ulong-small", T("ulong", 200)),
        ("byte", T("byte", -128)),
        ("short", T("short", -32768)),
        ("int", T("int", -2147483648)),
        ("int-small", T("int", -5)),
        ("long", T("long", "-9223372036854775808")),
        ("long-max", T("long", "9223372036854775807")),
        ("long-small", T("long", 42)),
        ("float", T("float", 3.25)),
        ("float-inf", T("float", "-Infinity")),
        ("double", T("double", 1.0000000000000002)),
        ("double-big", T("double", 1.7976931348623157e308)),
        ("double-nan", T("double", "NaN")),
        ("decimal32", T("decimal32", "3040007b")),
        ("decimal64", T("decimal64", "31c000000000007b")),
        ("decimal128", T("decimal128", "3040000000000000000000000000007b")),
        ("char", T("char", "\u2603")),
        ("char-astral", T("char", "\U0001F600")),
        ("timestamp", T("timestamp", 1700000000123)),
        ("timestamp-neg", T("timestamp", -1000)),
        ("uuid", T("uuid", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6")),
        ("binary", T("binary", B64(bytes(range(256))))),
        ("binary-empty", T("binary", "")),
        ("string", S("h\u00e9llo \u2603 \U0001F600 \"quoted\" \\ \n\t\u0000")),
        ("string-empty", S("")),
        ("string-long", S("x" * 300)),
        ("symbol", Y("a-symbol")),
        ("symbol-long", Y("s" * 300)),
        ("described-symbol", T("described", S("described value"), descriptor=Y("org.example:d"))),
        ("described-ulong", T("described", T("long", 5), descriptor=T("ulong", 0x123400000001))),
    ]


def compound_body():
    prims = primitives()
    return tmap([
        (S("primitives"), tmap([(S(k), v) for k, v in prims])),
        (S("list"), T("list", [v for _, v in prims])),
        (S("empty-list"), T("list", [])),
        (S("empty-map"), T("map", [])),
        (S("nested"), T("list", [T("list", [T("list", [T("int", 1)])]),
                                 tmap([(S("k"), tmap([(S("k2"), T("list", []))]))])])),
        (S("array-int"), T("array", [T("int", 1), T("int", -2), T("int", 3)], element_type="int")),
        (S("array-ulong"), T("array", [T("ulong", 0), T("ulong", "18446744073709551615")],
                              element_type="ulong")),
        (S("array-symbol"), T("array", [Y("a"), Y("bb")], element_type="symbol")),
        (S("array-string"), T("array", [S("x"), S("")], element_type="string")),
        (S("array-empty"), T("array", [], element_type="uint")),
        (S("array-bool"), T("array", [T("boolean", True), T("boolean", False)],
                             element_type="boolean")),
        (S("array-list"), T("array", [T("list", [T("int", 1)]), T("list", [])],
                             element_type="list")),
        (S("array-described"), T("array", [T("long", 1), T("long", 2)], element_type="long",
                                  descriptor=Y("org.example:arr"))),
        (S("described-list"), T("described", T("list", [S("a"), T("int", 1)]),
                                 descriptor=T("ulong", 0x77))),
        # keys of every kind: AMQP maps may have non-string keys
        (T("ulong", 7), S("ulong key")),
        (Y("sym-key"), S("symbol key")),
        (T("int", -1), S("int key")),
        (T("binary", B64(b"\x00\x01")), S("binary key")),
        (T("null"), S("null key")),
        (T("uuid", "00000000-0000-0000-0000-000000000001"), S("uuid key")),
    ])


def messages(large_size):
    prims = primitives()
    app_props = tmap([(S(k), v) for k, v in prims])
    full_header = {"durable": T("boolean", True), "priority": T("ubyte", 7),
                   "ttl": T("uint", 600000), "first_acquirer": T("boolean", True),
                   "delivery_count": T("uint", 0)}
    full_props = {
        "message_id": T("ulong", 1), "user_id": T("binary", B64(b"alice")),
        "to": S("ignored-to"), "subject": S("kitchen sink"), "reply_to": S("replies"),
        "correlation_id": T("uuid", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
        "content_type": Y("application/x-amqp"), "content_encoding": Y("identity"),
        "absolute_expiry_time": T("timestamp", 4102444800000),
        "creation_time": T("timestamp", 1700000000123), "group_id": S("group-1"),
        "group_sequence": T("uint", 4294967295), "reply_to_group_id": S("rgroup"),
    }
    msgs = [
        {   # 0: every section, every type
            "header": full_header,
            "delivery_annotations": tmap([(Y("x-opt-da-user"), S("delivery annotation")),
                                          (Y("da-ulong"), T("ulong", 5)),
                                          (Y("da-described"), T("described", S("v"),
                                                                descriptor=Y("d")))]),
            "message_annotations": tmap([(Y("x-opt-user-string"), S("message annotation")),
                                         (Y("x-opt-user-ulong"), T("ulong", "18446744073709551615")),
                                         (Y("x-opt-user-uuid"),
                                          T("uuid", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6")),
                                         (Y("x-opt-user-list"), T("list", [T("int", 1), S("two")])),
                                         (Y("x-opt-user-map"), tmap([(S("k"), T("double", 0.5))])),
                                         (Y("user-key-no-prefix"), T("boolean", True)),
                                         (T("ulong", 99), S("ulong annotation key"))]),
            "properties": full_props,
            "application_properties": app_props,
            "body_section": "amqp-value",
            "body": compound_body(),
            "footer": tmap([(Y("x-opt-footer"), S("footer value")),
                            (Y("checksum"), T("binary", B64(b"\xde\xad\xbe\xef"))),
                            (Y("count"), T("uint", 3))]),
        },
        {   # 1: one Data section, id/correlation of other kinds
            "properties": {"message_id": T("uuid", "12345678-1234-5678-1234-567812345678"),
                           "correlation_id": T("binary", B64(b"\x00corr\xff"))},
            "application_properties": tmap([(S("index"), T("int", 1))]),
            "body_section": "data",
            "body": T("binary", B64(bytes(range(256)) * 2)),
        },
        {   # 2: several Data sections
            "properties": {"message_id": T("binary", B64(b"\x01\x02\x03")),
                           "correlation_id": T("ulong", "18446744073709551615")},
            "body_section": "data",
            "body": [T("binary", B64(b"first")), T("binary", B64(b"")),
                     T("binary", B64(b"third"))],
        },
        {   # 3: two amqp-sequence sections
            "properties": {"message_id": S("string-id"), "correlation_id": S("string-corr")},
            "body_section": "amqp-sequence",
            "body": [T("list", [T("int", 1), S("two"), T("null")]),
                     T("list", [T("list", []), tmap([])])],
        },
        {   # 4: minimal: only an amqp-value null body
            "body_section": "amqp-value",
            "body": T("null"),
        },
        {   # 5: body is a described value; header with non-default delivery_count
            "header": {"durable": T("boolean", False), "priority": T("ubyte", 0),
                       "delivery_count": T("uint", 3)},
            "application_properties": tmap([]),
            "body_section": "amqp-value",
            "body": T("described", T("list", [S("a"), T("ubyte", 1)]),
                      descriptor=Y("com.example:record")),
        },
        {   # 6: large body, spans many transfer frames
            "properties": {"message_id": S("large"), "subject": S("large")},
            "application_properties": tmap([(S("size"), T("uint", large_size))]),
            "body_section": "data",
            "body": T("binary", B64(bytes((i * 7 + 3) % 256 for i in range(large_size)))),
            "footer": tmap([(Y("x-opt-footer"), S("after a large body"))]),
        },
        {   # 7: amqp-value of each scalar kind via an array of arrays and a plain string
            "message_annotations": tmap([(Y("x-opt-only-annotation"), T("char", "a"))]),
            "body_section": "amqp-value",
            "body": T("array", [T("array", [T("short", 1)], element_type="short"),
                                T("array", [], element_type="short")], element_type="array"),
        },
    ]
    return msgs


SECTIONS = ["header", "delivery_annotations", "message_annotations", "properties",
            "application_properties", "body_section", "body", "footer"]


def filter_annotations(m, prefixes):
    if not prefixes or not m.get("message_annotations"):
        return m
    m = dict(m)
    ma = m["message_annotations"]
    kept = [[k, v] for k, v in ma["value"]
            if not (k.get("type") in ("symbol", "string")
                    and any(str(k.get("value")).startswith(p) for p in prefixes))]
    m["message_annotations"] = dict(ma, value=kept) if kept else None
    return m


class RoundTrip(ac.ClientBase):
    def __init__(self, opts):
        super().__init__(opts)
        self.specs = messages(opts.large_size)
        self.encoded = [ac.encode_message(m) for m in self.specs]
        self.sent_canon = [ac.decode_message(b) for b in self.encoded]
        self.received = []
        self.received_raw_sizes = []
        self.sent = 0
        self.outcomes = collections.Counter()
        self.outcome_count = 0
        self.sender = None

    def setup(self):
        rconn = self.connect(self.opts.receive_url or self.opts.url)
        self.receiver = self.container.create_receiver(rconn, self.opts.address)
        self.receiver.flow(len(self.encoded))
        self.sconn = self.connect(self.opts.url)

    def on_link_opened(self, event):
        if event.link == self.receiver and self.sender is None:
            ac.event_stderr({"event": "ready", "address": self.opts.address})
            target = None if self.opts.anonymous else self.opts.address
            self.sender = self.container.create_sender(self.sconn, target)

    def on_link_flow(self, event):
        link = event.link
        if link != self.sender or self.finished:
            return
        while link.credit > 0 and self.sent < len(self.encoded):
            data = self.encoded[self.sent]
            if self.opts.anonymous:
                spec = dict(self.specs[self.sent])
                spec["properties"] = dict(spec.get("properties") or {}, to=S(self.opts.address))
                data = ac.encode_message(spec)
            dlv = link.delivery("rt-%d" % self.sent)
            link.send(data)
            link.advance()
            if self.opts.settled:
                dlv.settle()
            self.sent += 1
        self.done_check()

    def on_delivery(self, event):
        dlv = event.delivery
        if dlv.link.is_sender:
            if ac.record_outcome(dlv, self.outcomes):
                self.outcome_count += 1
                self.done_check()
            return
        if dlv.aborted:
            dlv.settle()
            return
        if not dlv.readable:
            return
        raw = ac.read_delivery(dlv)
        if raw is None:
            return
        self.received_raw_sizes.append(len(raw))
        try:
            self.received.append(ac.decode_message(raw))
        except Exception as e:
            self.received.append({"decode_error": str(e), "raw": ac.base64.b64encode(raw).decode()})
        dlv.update(ac.Delivery.ACCEPTED)
        dlv.settle()
        self.done_check()

    def done_check(self):
        if self.finished:
            return
        n = len(self.encoded)
        if (len(self.received) >= n and self.sent >= n
                and (self.opts.settled or self.outcome_count >= n)):
            self.finish()

    def result(self):
        prefixes = self.opts.ignore_annotation_prefix or []
        ignored = set(self.opts.ignore_section or [])
        if self.opts.anonymous:
            # the 'to' we added for the anonymous relay is part of what was sent
            sent = [ac.decode_message(ac.encode_message(
                dict(s, properties=dict(s.get("properties") or {}, to=S(self.opts.address)))))
                for s in self.specs]
        else:
            sent = self.sent_canon
        diffs = []
        for i, s in enumerate(sent):
            if i >= len(self.received):
                diffs.append({"index": i, "section": "*", "sent": "present",
                              "received": "missing"})
                continue
            a = filter_annotations(s, prefixes)
            b = filter_annotations(self.received[i], prefixes)
            for sec in SECTIONS:
                if sec in ignored:
                    continue
                if a.get(sec) != b.get(sec):
                    diffs.append({"index": i, "section": sec, "sent": a.get(sec),
                                  "received": b.get(sec)})
            if "decode_error" in b:
                diffs.append({"index": i, "section": "*", "sent": "decodable",
                              "received": b["decode_error"]})
        if len(self.received) > len(sent):
            diffs.append({"index": len(sent), "section": "*", "sent": "nothing",
                          "received": "extra messages"})
        res = {"count": len(sent), "sent_count": self.sent,
               "received_count": len(self.received),
               "equal": not diffs and len(self.received) == len(sent),
               "differences": diffs,
               "outcomes": dict(self.outcomes),
               "encoded_sizes": [len(b) for b in self.encoded],
               "received_sizes": self.received_raw_sizes}
        if not self.opts.summary:
            res["sent"] = sent
            res["received"] = self.received
        return res


def main():
    p = ac.base_parser("Round-trip messages of every AMQP type and compare")
    p.add_argument("--address", required=True)
    p.add_argument("--receive-url", default=None,
                   help="URL for the receiving connection (default: --url)")
    p.add_argument("--anonymous", action="store_true",
                   help="send on an anonymous link (properties.to = address)")
    p.add_argument("--settled", action="store_true", help="send pre-settled")
    p.add_argument("--large-size", type=int, default=100000,
                   help="body size of the multi-frame message (default 100000)")
    p.add_argument("--ignore-annotation-prefix", action="append",
                   help="drop message-annotation keys with this prefix before comparing "
                        "(repeatable), e.g. x-opt-qd.")
    p.add_argument("--ignore-section", action="append", choices=SECTIONS,
                   help="do not compare this section (repeatable)")
    p.add_argument("--summary", action="store_true",
                   help="omit the sent/received message lists (differences still shown)")
    opts = p.parse_args()
    ac.run(RoundTrip(opts))


if __name__ == "__main__":
    main()
