"""Shared helpers for the Proton (python3-qpid-proton) test clients.

Not a script: imported by send.py, receive.py, request_reply.py, responder.py
and raw_roundtrip.py (they live in the same folder, so a plain `import
amqp_common` works when they are run as `/usr/bin/python3 path/to/script.py`).

Contents:
  * typed JSON <-> AMQP value codec (see README.md, "Typed JSON"),
  * a raw AMQP message section parser / encoder (python-proton's Message class
    knows nothing about the footer section, and hides which body section kind
    was used, so the clients decode the transfer bytes themselves),
  * ClientBase: a MessagingHandler with the common plumbing (connect without
    reconnect, --timeout, error reporting, one JSON line on stdout).
"""

import argparse
import base64
import json
import math
import sys
import time
import uuid

from proton import (Data, Delivery, Endpoint, Link, symbol, char, decimal32, decimal64,
                    decimal128)
from proton.handlers import MessagingHandler, EndpointStateHandler

MAX_SAFE_INT = 2 ** 53 - 1

# ---------------------------------------------------------------------------
# Typed JSON codec
# ---------------------------------------------------------------------------

_TYPE_NAMES = {
    Data.NULL: "null", Data.BOOL: "boolean", Data.UBYTE: "ubyte", Data.BYTE: "byte",
    Data.USHORT: "ushort", Data.SHORT: "short", Data.UINT: "uint", Data.INT: "int",
    Data.CHAR: "char", Data.ULONG: "ulong", Data.LONG: "long",
    Data.TIMESTAMP: "timestamp", Data.FLOAT: "float", Data.DOUBLE: "double",
    Data.DECIMAL32: "decimal32", Data.DECIMAL64: "decimal64",
    Data.DECIMAL128: "decimal128", Data.UUID: "uuid", Data.BINARY: "binary",
    Data.STRING: "string", Data.SYMBOL: "symbol", Data.DESCRIBED: "described",
    Data.ARRAY: "array", Data.LIST: "list", Data.MAP: "map",
}
_TYPE_CODES = {v: k for k, v in _TYPE_NAMES.items()}
_TYPE_CODES["bool"] = Data.BOOL


def _int_out(v):
    v = int(v)
    return v if -MAX_SAFE_INT <= v <= MAX_SAFE_INT else str(v)


def _float_out(v):
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def _float_in(v):
    if isinstance(v, str):
        return float({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}.get(v, v))
    return float(v)


def typed_from_data(d):
    """Typed JSON for the value at the current position of proton Data `d`."""
    t = d.type()
    name = _TYPE_NAMES.get(t)
    if name is None:
        return {"type": "unknown", "value": str(t)}
    if t == Data.NULL:
        return {"type": "null"}
    if t == Data.BOOL:
        return {"type": name, "value": bool(d.get_bool())}
    if t in (Data.UBYTE, Data.BYTE, Data.USHORT, Data.SHORT, Data.UINT, Data.INT,
             Data.ULONG, Data.LONG, Data.TIMESTAMP):
        getter = {Data.UBYTE: d.get_ubyte, Data.BYTE: d.get_byte,
                  Data.USHORT: d.get_ushort, Data.SHORT: d.get_short,
                  Data.UINT: d.get_uint, Data.INT: d.get_int, Data.ULONG: d.get_ulong,
                  Data.LONG: d.get_long, Data.TIMESTAMP: d.get_timestamp}[t]
        return {"type": name, "value": _int_out(getter())}
    if t == Data.FLOAT:
        return {"type": name, "value": _float_out(d.get_float())}
    if t == Data.DOUBLE:
        return {"type": name, "value": _float_out(d.get_double())}
    if t == Data.DECIMAL32:  # raw IEEE 754 decimal bits, as hex
        return {"type": name, "value": "%08x" % (int(d.get_decimal32()) & 0xffffffff)}
    if t == Data.DECIMAL64:
        return {"type": name, "value": "%016x" % (int(d.get_decimal64()) & 0xffffffffffffffff)}
    if t == Data.DECIMAL128:
        return {"type": name, "value": bytes(d.get_decimal128()).hex()}
    if t == Data.CHAR:
        return {"type": name, "value": str(d.get_char())}
    if t == Data.UUID:
        return {"type": name, "value": str(d.get_uuid())}
    if t == Data.BINARY:
        return {"type": name, "value": base64.b64encode(bytes(d.get_binary())).decode("ascii")}
    if t == Data.STRING:
        return {"type": name, "value": d.get_string()}
    if t == Data.SYMBOL:
        return {"type": name, "value": str(d.get_symbol())}
    if t == Data.DESCRIBED:
        d.enter()
        d.next()
        desc = typed_from_data(d)
        d.next()
        val = typed_from_data(d)
        d.exit()
        return {"type": name, "descriptor": desc, "value": val}
    if t == Data.LIST:
        n = d.get_list()
        d.enter()
        out = []
        for _ in range(n):
            d.next()
            out.append(typed_from_data(d))
        d.exit()
        return {"type": name, "value": out}
    if t == Data.MAP:
        n = d.get_map()
        d.enter()
        out = []
        for _ in range(n // 2):
            d.next()
            k = typed_from_data(d)
            d.next()
            v = typed_from_data(d)
            out.append([k, v])
        d.exit()
        return {"type": name, "value": out}
    if t == Data.ARRAY:
        n, described, etype = d.get_array()
        d.enter()
        res = {"type": name, "element_type": _TYPE_NAMES.get(etype, str(etype))}
        if described:
            d.next()
            res["descriptor"] = typed_from_data(d)
        out = []
        for _ in range(n):
            d.next()
            out.append(typed_from_data(d))
        d.exit()
        res["value"] = out
        return res
    return {"type": "unknown", "value": str(t)}


def is_typed(j):
    return (isinstance(j, dict) and isinstance(j.get("type"), str)
            and j["type"] in _TYPE_CODES and set(j.keys()) <= {"type", "value", "descriptor", "element_type"})


def put_json(d, j):
    """Put a JSON value into proton Data `d`.

    Typed form {"type": T, "value": V} is honoured; plain JSON maps to:
    null->null, bool->boolean, int->long, float->double, str->string,
    list->list, object->map with string keys.
    """
    if is_typed(j):
        return _put_typed(d, j)
    if j is None:
        d.put_null()
    elif isinstance(j, bool):
        d.put_bool(j)
    elif isinstance(j, int):
        d.put_long(j)
    elif isinstance(j, float):
        d.put_double(j)
    elif isinstance(j, str):
        d.put_string(j)
    elif isinstance(j, list):
        d.put_list()
        d.enter()
        for x in j:
            put_json(d, x)
        d.exit()
    elif isinstance(j, dict):
        d.put_map()
        d.enter()
        for k, v in j.items():
            d.put_string(k)
            put_json(d, v)
        d.exit()
    else:
        raise ValueError("cannot encode %r" % (j,))


def _put_typed(d, j):
    t = j["type"]
    v = j.get("value")
    if t == "null":
        d.put_null()
    elif t in ("boolean", "bool"):
        d.put_bool(bool(v))
    elif t == "ubyte":
        d.put_ubyte(int(v))
    elif t == "byte":
        d.put_byte(int(v))
    elif t == "ushort":
        d.put_ushort(int(v))
    elif t == "short":
        d.put_short(int(v))
    elif t == "uint":
        d.put_uint(int(v))
    elif t == "int":
        d.put_int(int(v))
    elif t == "ulong":
        d.put_ulong(int(v))
    elif t == "long":
        d.put_long(int(v))
    elif t == "timestamp":
        d.put_timestamp(int(v))
    elif t == "float":
        d.put_float(_float_in(v))
    elif t == "double":
        d.put_double(_float_in(v))
    elif t == "decimal32":
        d.put_decimal32(decimal32(int(v, 16) if isinstance(v, str) else int(v)))
    elif t == "decimal64":
        n = int(v, 16) if isinstance(v, str) else int(v)
        if n >= 2 ** 63:
            n -= 2 ** 64
        d.put_decimal64(decimal64(n))
    elif t == "decimal128":
        d.put_decimal128(decimal128(bytes.fromhex(v)))
    elif t == "char":
        d.put_char(char(v))
    elif t == "uuid":
        d.put_uuid(uuid.UUID(v))
    elif t == "binary":
        d.put_binary(base64.b64decode(v) if v else b"")
    elif t == "string":
        d.put_string(v)
    elif t == "symbol":
        d.put_symbol(symbol(v))
    elif t == "described":
        d.put_described()
        d.enter()
        put_json(d, j["descriptor"])
        put_json(d, v)
        d.exit()
    elif t == "list":
        d.put_list()
        d.enter()
        for x in v or []:
            put_json(d, x)
        d.exit()
    elif t == "map":
        d.put_map()
        d.enter()
        pairs = v.items() if isinstance(v, dict) else v
        for k, x in pairs or []:
            put_json(d, k)
            put_json(d, x)
        d.exit()
    elif t == "array":
        etype = _TYPE_CODES[j["element_type"]]
        described = "descriptor" in j
        d.put_array(described, etype)
        d.enter()
        if described:
            put_json(d, j["descriptor"])
        for x in v or []:
            if is_typed(x):
                if _TYPE_CODES[x["type"]] != etype:
                    raise ValueError("array element %r is not %s" % (x, j["element_type"]))
                put_json(d, x)
            else:
                put_json(d, {"type": j["element_type"], "value": x})
        d.exit()
    else:
        raise ValueError("unknown AMQP type %r" % t)


def encode_json(j):
    d = Data()
    put_json(d, j)
    return d.encode()


def typed_map_keys(j, key_type):
    """{"k": v} plain object -> typed map whose keys have type key_type (symbol/string)."""
    if is_typed(j):
        return j
    if not isinstance(j, dict):
        raise ValueError("expected a JSON object, got %r" % (j,))
    return {"type": "map", "value": [[{"type": key_type, "value": k}, v] for k, v in j.items()]}


def plain(t):
    """Typed JSON -> plain JSON (types dropped; maps with string/symbol keys -> objects)."""
    if not isinstance(t, dict) or "type" not in t:
        return t
    ty = t["type"]
    v = t.get("value")
    if ty == "null":
        return None
    if ty == "list" or ty == "array":
        return [plain(x) for x in v]
    if ty == "map":
        if all(k.get("type") in ("string", "symbol") for k, _ in v):
            return {k["value"]: plain(x) for k, x in v}
        return [[plain(k), plain(x)] for k, x in v]
    if ty == "described":
        return {"descriptor": plain(t["descriptor"]), "value": plain(v)}
    return v


# ---------------------------------------------------------------------------
# Raw message sections
# ---------------------------------------------------------------------------

SECTION_CODES = {
    0x70: "header", 0x71: "delivery_annotations", 0x72: "message_annotations",
    0x73: "properties", 0x74: "application_properties", 0x75: "data",
    0x76: "amqp_sequence", 0x77: "amqp_value", 0x78: "footer",
}
SECTION_SYMBOLS = {
    "amqp:header:list": 0x70, "amqp:delivery-annotations:map": 0x71,
    "amqp:message-annotations:map": 0x72, "amqp:properties:list": 0x73,
    "amqp:application-properties:map": 0x74, "amqp:data:binary": 0x75,
    "amqp:amqp-sequence:list": 0x76, "amqp:amqp-value:*": 0x77, "amqp:footer:map": 0x78,
}
HEADER_FIELDS = ["durable", "priority", "ttl", "first_acquirer", "delivery_count"]
PROPERTY_FIELDS = ["message_id", "user_id", "to", "subject", "reply_to", "correlation_id",
                   "content_type", "content_encoding", "absolute_expiry_time",
                   "creation_time", "group_id", "group_sequence", "reply_to_group_id"]
HEADER_DEFAULTS = {"durable": False, "priority": 4, "first_acquirer": False,
                   "delivery_count": 0}
HEADER_TYPES = {"durable": "boolean", "priority": "ubyte", "ttl": "uint",
                "first_acquirer": "boolean", "delivery_count": "uint"}
PROPERTY_TYPES = {"user_id": "binary", "to": "string", "subject": "string",
                  "reply_to": "string", "content_type": "symbol",
                  "content_encoding": "symbol", "absolute_expiry_time": "timestamp",
                  "creation_time": "timestamp", "group_id": "string",
                  "group_sequence": "uint", "reply_to_group_id": "string"}


def split_sections(raw):
    """Bytes of a message -> list of (code, typed value). Raises on bad data."""
    raw = bytes(raw)
    out = []
    pos = 0
    while pos < len(raw):
        d = Data()
        n = d.decode(raw[pos:])
        if n <= 0:
            raise ValueError("cannot decode message section at offset %d" % pos)
        pos += n
        d.rewind()
        d.next()
        v = typed_from_data(d)
        if v["type"] != "described":
            raise ValueError("message section at offset %d is not described: %r" % (pos, v))
        desc = v["descriptor"]
        code = None
        if desc["type"] == "ulong":
            code = int(desc["value"])
        elif desc["type"] == "symbol":
            code = SECTION_SYMBOLS.get(desc["value"])
        out.append((code, v["value"], v))
    return out


def _named_fields(lst, names):
    res = {}
    for i, x in enumerate(lst.get("value", []) if lst["type"] == "list" else []):
        if i < len(names) and x["type"] != "null":
            res[names[i]] = x
        elif i >= len(names) and x["type"] != "null":
            res["field_%d" % i] = x
    return res


def decode_message(raw):
    """Bytes of a message -> canonical typed JSON dict (see README.md)."""
    res = {"header": None, "delivery_annotations": None, "message_annotations": None,
           "properties": None, "application_properties": None,
           "body_section": None, "body": None, "footer": None}
    bodies = []
    for code, val, whole in split_sections(raw):
        name = SECTION_CODES.get(code)
        if name == "header":
            res["header"] = _named_fields(val, HEADER_FIELDS)
        elif name == "properties":
            res["properties"] = _named_fields(val, PROPERTY_FIELDS)
        elif name in ("delivery_annotations", "message_annotations",
                      "application_properties", "footer"):
            res[name] = val
        elif name in ("data", "amqp_sequence", "amqp_value"):
            res["body_section"] = name.replace("_", "-")
            bodies.append(val)
        else:
            res.setdefault("unknown_sections", []).append(whole)
    # Header fields equal to their default are dropped (an encoder may or may not
    # write them). Proton's encoder always writes (possibly empty) header and
    # properties sections; an empty one means "all defaults", like an absent one.
    if res["header"]:
        res["header"] = {k: v for k, v in res["header"].items()
                         if not (k in HEADER_DEFAULTS and v.get("value") == HEADER_DEFAULTS[k])}
    for k in ("header", "properties"):
        if res[k] == {}:
            res[k] = None
    if res["body_section"] == "amqp-value":
        res["body"] = bodies[0]
        if len(bodies) > 1:
            res["extra_bodies"] = bodies[1:]
    elif res["body_section"] is not None:
        res["body"] = bodies[0] if len(bodies) == 1 else bodies
    return res


def _section(code, j):
    return encode_json({"type": "described", "descriptor": {"type": "ulong", "value": code},
                        "value": j})


def _fields_list(fields, names, types):
    unknown = set(fields) - set(names)
    if unknown:
        raise ValueError("unknown fields %s" % sorted(unknown))
    last = max([names.index(k) for k in fields] + [-1])
    out = []
    for name in names[:last + 1]:
        v = fields.get(name)
        if v is None:
            out.append({"type": "null"})
        elif is_typed(v):
            out.append(v)
        elif name in types:
            out.append({"type": types[name], "value": v})
        else:  # message_id / correlation_id given as plain JSON
            out.append({"type": "ulong", "value": v} if isinstance(v, int) and v >= 0
                       else {"type": "string", "value": str(v)})
    return {"type": "list", "value": out}


def encode_message(m):
    """Canonical-shaped dict -> message bytes. Keys as produced by decode_message:
    header / properties are {field: typed-or-plain}, annotation / property / footer
    maps are typed maps (or plain objects: symbol keys for annotations and footer,
    string keys for application_properties), body_section is 'amqp-value' (default),
    'data' (body = binary or list of binaries) or 'amqp-sequence' (body = list or list
    of lists)."""
    out = b""
    if m.get("header"):
        out += _section(0x70, _fields_list(m["header"], HEADER_FIELDS, HEADER_TYPES))
    if m.get("delivery_annotations") is not None:
        out += _section(0x71, typed_map_keys(m["delivery_annotations"], "symbol"))
    if m.get("message_annotations") is not None:
        out += _section(0x72, typed_map_keys(m["message_annotations"], "symbol"))
    if m.get("properties"):
        out += _section(0x73, _fields_list(m["properties"], PROPERTY_FIELDS, PROPERTY_TYPES))
    if m.get("application_properties") is not None:
        out += _section(0x74, typed_map_keys(m["application_properties"], "string"))
    kind = m.get("body_section") or "amqp-value"
    body = m.get("body")
    if kind == "amqp-value":
        out += _section(0x77, body)
    elif kind == "data":
        for b in (body if isinstance(body, list) else [body]):
            if isinstance(b, (bytes, bytearray)):
                b = {"type": "binary", "value": base64.b64encode(bytes(b)).decode("ascii")}
            out += _section(0x75, b)
    elif kind == "amqp-sequence":
        seqs = body if isinstance(body, list) else [body]
        for s in seqs:
            out += _section(0x76, s)
    else:
        raise ValueError("unknown body_section %r" % kind)
    if m.get("footer") is not None:
        out += _section(0x78, typed_map_keys(m["footer"], "symbol"))
    return out


def footer_bytes(j):
    return _section(0x78, typed_map_keys(j, "symbol"))


def to_proton_object(j):
    """Typed/plain JSON -> python-proton object (for Message attributes)."""
    d = Data()
    put_json(d, j)
    d.rewind()
    d.next()
    return d.get_object()


def to_symbol_keyed(j):
    """Plain JSON object or typed map -> dict usable as Message.annotations/instructions."""
    return to_proton_object(typed_map_keys(j, "symbol"))


# ---------------------------------------------------------------------------
# Client plumbing
# ---------------------------------------------------------------------------

def emit(obj, code=0):
    sys.stdout.write(json.dumps(obj, sort_keys=False, allow_nan=False) + "\n")
    sys.stdout.flush()
    sys.exit(code)


def event_stderr(obj):
    """Progress events for test harnesses (e.g. {"event":"ready"}), one JSON per line."""
    sys.stderr.write(json.dumps(obj) + "\n")
    sys.stderr.flush()


def json_arg(text, what):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        emit({"error": "bad JSON for %s: %s" % (what, e)}, 2)


SSL_VERIFY_MODES = ("peer-name", "peer", "none")


class _Parser(argparse.ArgumentParser):
    """ArgumentParser that also checks the TLS/SASL options against each other."""

    def parse_args(self, *args, **kwargs):
        o = super().parse_args(*args, **kwargs)
        check_tls_options(self, o)
        return o


def base_parser(description):
    p = _Parser(description=description)
    p.add_argument("--url", default="amqp://127.0.0.1:5672",
                   help="amqp://HOST:PORT, or amqps://HOST:PORT for TLS (default %(default)s)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds before stopping and reporting what was done (default 10)")
    p.add_argument("--no-sasl", action="store_true",
                   help="do not use a SASL layer (default: SASL ANONYMOUS)")
    p.add_argument("--container-id", default=None, help="AMQP container-id")
    t = p.add_argument_group("TLS (amqps:// URLs only) and SASL")
    t.add_argument("--ssl-ca", default=None, metavar="PEM",
                   help="CA certificates (PEM) the server's certificate must chain to")
    t.add_argument("--ssl-cert", default=None, metavar="PEM",
                   help="client certificate (PEM) presented to the server (with --ssl-key)")
    t.add_argument("--ssl-key", default=None, metavar="PEM",
                   help="private key (PEM) of --ssl-cert")
    t.add_argument("--ssl-key-password", default=None, help="password of an encrypted --ssl-key")
    t.add_argument("--ssl-verify", choices=SSL_VERIFY_MODES, default="peer-name",
                   help="peer-name (default): the server's certificate must chain to --ssl-ca and "
                        "name the host (--ssl-peer-name, else the URL's host); peer: chain only; "
                        "none: anything is accepted")
    t.add_argument("--ssl-peer-name", default=None, metavar="NAME",
                   help="host name sent as SNI and checked against the server's certificate "
                        "(default: the URL's host)")
    t.add_argument("--sasl-mechs", default=None, metavar="MECHS",
                   help="SASL mechanisms the client may use, space separated (e.g. EXTERNAL; "
                        "default: Proton's choice, ANONYMOUS without credentials)")
    return p


def _url_scheme(url):
    return url.split("://", 1)[0].lower() if "://" in url else "amqp"


def check_tls_options(parser, o):
    """Exit 2 (argparse) on TLS options that would be silently ignored."""
    if not hasattr(o, "ssl_ca"):
        return
    given = [n for n in ("ssl_ca", "ssl_cert", "ssl_key", "ssl_key_password", "ssl_peer_name")
             if getattr(o, n) is not None]
    urls = [getattr(o, n) for n in ("url", "receive_url") if getattr(o, n, None)]
    if given and not any(_url_scheme(u) == "amqps" for u in urls):
        parser.error("--%s needs an amqps:// URL (Proton uses TLS for amqps:// only)"
                     % given[0].replace("_", "-"))
    if (o.ssl_cert is None) != (o.ssl_key is None):
        parser.error("--ssl-cert and --ssl-key go together")
    if o.ssl_key_password is not None and o.ssl_key is None:
        parser.error("--ssl-key-password needs --ssl-key")
    if o.sasl_mechs is not None and o.no_sasl:
        parser.error("--sasl-mechs and --no-sasl exclude each other")


def ssl_domain(o):
    """A client proton.SSLDomain from the --ssl-* options (used for amqps:// URLs)."""
    from proton import SSLDomain
    d = SSLDomain(SSLDomain.MODE_CLIENT)
    if getattr(o, "ssl_ca", None):
        d.set_trusted_ca_db(o.ssl_ca)
    if getattr(o, "ssl_cert", None):
        d.set_credentials(o.ssl_cert, o.ssl_key, o.ssl_key_password)
    mode = {"peer-name": SSLDomain.VERIFY_PEER_NAME, "peer": SSLDomain.VERIFY_PEER,
            "none": SSLDomain.ANONYMOUS_PEER}[getattr(o, "ssl_verify", None) or "peer-name"]
    d.set_peer_authentication(mode)
    return d


class _Stopper:
    def __init__(self, client, kind):
        self.client = client
        self.kind = kind

    def on_timer_task(self, event):
        if self.kind == "timeout":
            self.client.on_timeout()
        else:
            event.container.stop()


def condition_json(cond):
    if cond is None:
        return None
    res = {"condition": cond.name, "description": cond.description}
    if cond.info:
        try:
            res["info"] = json.loads(json.dumps(cond.info, default=str))
        except Exception:
            res["info"] = str(cond.info)
    return res


def outcome_name(state):
    return {Delivery.ACCEPTED: "accepted", Delivery.REJECTED: "rejected",
            Delivery.RELEASED: "released", Delivery.MODIFIED: "modified",
            Delivery.RECEIVED: "received"}.get(state)


class ClientBase(MessagingHandler):
    """MessagingHandler keeping only the endpoint-state plumbing: subclasses handle
    on_delivery / on_link_flow themselves (raw bytes in, raw bytes out)."""

    def __init__(self, opts):
        super().__init__(prefetch=0, auto_accept=False, auto_settle=False,
                         peer_close_is_error=False)
        self.handlers = [h for h in self.handlers if isinstance(h, EndpointStateHandler)]
        self.opts = opts
        self.container = None
        self.connections = []
        self.closed_transports = 0
        self.finished = False
        self.timed_out = False
        self.error = None
        self.started = None

    # -- lifecycle ---------------------------------------------------------
    def on_start(self, event):
        self.container = event.container
        if self.opts.container_id:
            self.container.container_id = self.opts.container_id
        self.started = time.monotonic()
        self.timer = self.container.schedule(self.opts.timeout, _Stopper(self, "timeout"))
        try:
            self.setup()
        except Exception as e:  # bad arguments and the like
            self.fail("setup failed: %s" % e)

    def connect(self, url=None):
        url = url or self.opts.url
        kw = {"reconnect": False}
        if self.opts.no_sasl:
            kw["sasl_enabled"] = False
        mechs = getattr(self.opts, "sasl_mechs", None)
        if mechs:
            kw["allowed_mechs"] = mechs
        if _url_scheme(url) == "amqps":
            kw["ssl_domain"] = ssl_domain(self.opts)
            if getattr(self.opts, "ssl_peer_name", None):
                kw["sni"] = self.opts.ssl_peer_name
        conn = self.container.connect(url, **kw)
        self.connections.append(conn)
        return conn

    def on_connection_opened(self, event):
        """Records the TLS protocol and cipher (while the transport is alive) for the result."""
        ssl = getattr(getattr(event.connection, "_overrides", None), "ssl", None)
        if ssl is not None:
            try:
                # attributes live in the pn_connection's record (as _mesh_buf on deliveries)
                event.connection._mesh_tls = {"protocol": ssl.protocol_name(),
                                              "cipher": ssl.cipher_name()}
            except Exception:  # noqa: BLE001
                pass

    def tls_info(self):
        """Per connection: {"protocol", "cipher"} of an opened TLS connection, else None."""
        return [getattr(c, "_mesh_tls", None) for c in self.connections]

    def setup(self):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def on_timeout(self):
        if not self.finished:
            self.timed_out = True
            self.finish()

    def finish(self):
        """Close everything; the container stops when the transports are closed
        (or after 2 s if the peer does not answer the close)."""
        if self.finished:
            return
        self.finished = True
        self.before_close()
        for c in self.connections:
            if not (c.state & Endpoint.LOCAL_CLOSED):
                c.close()
        self.container.schedule(2.0, _Stopper(self, "stop"))
        self._maybe_stop()

    def before_close(self):
        pass

    def fail(self, message, generic=False, **extra):
        """Record an error (the first specific one wins over generic ones such as
        'disconnected') and finish."""
        if self.error is None or (self.error.get("_generic") and not generic):
            self.error = dict({"error": message}, **extra)
            if generic:
                self.error["_generic"] = True
        self.finish()

    def _maybe_stop(self):
        if self.finished and self.closed_transports >= len(self.connections):
            self.container.stop()

    # -- endpoint events ---------------------------------------------------
    def on_transport_error(self, event):
        cond = condition_json(event.transport.condition) or {}
        if not self.finished or (self.error and self.error.get("_generic")):
            self.fail("transport error", **cond)

    def on_transport_closed(self, event):
        self.closed_transports += 1
        if not self.finished:
            self.fail("connection lost", generic=True)
        self._maybe_stop()

    def on_disconnected(self, event):
        if not self.finished:
            self.fail("disconnected", generic=True)

    def on_connection_error(self, event):
        self.fail("connection closed by peer with error",
                  **(condition_json(event.connection.remote_condition) or {}))

    def on_connection_closing(self, event):
        if not self.finished:
            self.fail("connection closed by peer")

    def on_session_error(self, event):
        self.fail("session ended by peer with error",
                  **(condition_json(event.session.remote_condition) or {}))

    def on_session_closing(self, event):
        if not self.finished:
            self.fail("session ended by peer")

    def on_link_error(self, event):
        self.fail("link detached by peer with error", link=event.link.name,
                  **(condition_json(event.link.remote_condition) or {}))

    def on_link_closing(self, event):
        if not self.finished:
            self.fail("link detached by peer", link=event.link.name)

    def on_link_remote_detach(self, event):
        if not self.finished:
            cond = condition_json(event.link.remote_condition) or {}
            self.fail("link detached (closed=false) by peer", link=event.link.name, **cond)

    # -- helpers -----------------------------------------------------------
    def elapsed(self):
        return time.monotonic() - self.started if self.started else 0.0


def record_outcome(dlv, counts):
    """Counts a sent delivery's terminal outcome (or bare settlement) into `counts` and settles
    it. Returns True when it counted."""
    name = outcome_name(dlv.remote_state)
    if name in ("accepted", "rejected", "released", "modified") or dlv.settled:
        counts[name or "settled_no_outcome"] += 1
        dlv.settle()
        return True
    return False


def run(client):
    from proton.reactor import Container
    try:
        Container(client).run()
    except KeyboardInterrupt:
        pass
    except Exception as e:
        if client.error is None:
            client.error = {"error": "%s: %s" % (type(e).__name__, e)}
    try:
        res = client.result()
    except Exception as e:
        res = {"result_error": "%s: %s" % (type(e).__name__, e)}
    res["timed_out"] = client.timed_out
    tls = client.tls_info() if hasattr(client, "tls_info") else []
    if any(t is not None for t in tls):
        res["tls"] = tls
    if client.error:
        client.error.pop("_generic", None)
        res.update(client.error)
        emit(res, 1)
    emit(res, 0)


class SettleModeOption:
    """Link option setting snd/rcv settle modes (python-proton has no ready-made one)."""

    def __init__(self, snd=None, rcv=None):
        self.snd = snd
        self.rcv = rcv

    def apply(self, link):
        if self.snd is not None:
            link.snd_settle_mode = self.snd
        if self.rcv is not None:
            link.rcv_settle_mode = self.rcv

    def test(self, link):
        return True


def settle_mode_names(link):
    snd = {Link.SND_UNSETTLED: "unsettled", Link.SND_SETTLED: "settled",
           Link.SND_MIXED: "mixed"}.get(link.remote_snd_settle_mode)
    rcv = {Link.RCV_FIRST: "first", Link.RCV_SECOND: "second"}.get(link.remote_rcv_settle_mode)
    return snd, rcv


def read_delivery(dlv):
    """Read the available bytes of an incoming delivery; returns complete bytes or None."""
    buf = getattr(dlv, "_mesh_buf", None)
    link = dlv.link
    chunk = link.recv(dlv.pending)
    if buf is None:
        buf = bytearray()
    if chunk:
        buf += chunk
    if dlv.partial:
        dlv._mesh_buf = buf  # attributes live in the pn_delivery's record
        return None
    link.advance()  # move past this delivery (settling would do it, keeping it unsettled not)
    return bytes(buf)
