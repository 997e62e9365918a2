#!/usr/bin/python3
"""Send N messages to an address and count the remote outcomes.

Prints one JSON line, e.g.
{"sent": 10, "accepted": 10, "rejected": 0, "released": 0, "modified": 0,
 "modified_failed": 0, "undeliverable": 0, "settled_no_outcome": 0,
 "unsettled": 0, "credit_received": true, "seconds": 0.01, "timed_out": false}
See README.md.
"""

import base64
import time

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import amqp_common as ac  # noqa: E402
from proton import Link, Message


_PROP_ATTRS = {"message_id": "id", "to": "address", "absolute_expiry_time": "expiry_time"}


def set_message_property(m, k, v):
    """Set a properties-section field on a python-proton Message from JSON."""
    if k in ("message_id", "correlation_id"):
        v = ac.to_proton_object(v)
    elif k == "user_id":
        v = base64.b64decode(v) if isinstance(v, str) else ac.to_proton_object(v)
    elif k in ("absolute_expiry_time", "creation_time"):
        v = v / 1000.0  # python-proton uses seconds, the JSON uses ms like AMQP
    elif k in ("content_type", "content_encoding"):
        v = ac.symbol(v)
    attr = _PROP_ATTRS.get(k, k)
    if not hasattr(m, attr) or attr.startswith("_"):
        raise ValueError("unknown message property %r" % k)
    setattr(m, attr, v)


class Sender(ac.ClientBase):
    def __init__(self, opts):
        super().__init__(opts)
        self.sent = 0
        self.counts = {"accepted": 0, "rejected": 0, "released": 0, "modified": 0,
                       "modified_failed": 0, "undeliverable": 0, "settled_no_outcome": 0,
                       "outcome_unsettled_by_peer": 0}
        self.outcomes = 0
        self.reject_conditions = []
        self.link_opened = False
        self.credit_seen = False
        self.settle_modes = (None, None)
        self.t_first = None
        self.t_last = None
        self.app_props = ac.json_arg(opts.properties, "--properties")
        self.annotations = ac.json_arg(opts.annotations, "--annotations")
        self.instructions = ac.json_arg(opts.delivery_annotations, "--delivery-annotations")
        self.msg_props = ac.json_arg(opts.message_properties, "--message-properties") or {}
        self.footer = ac.json_arg(opts.footer, "--footer")
        self.body_json = ac.json_arg(opts.body_json, "--body-json")

    def setup(self):
        conn = self.connect()
        opts = []
        if self.opts.settled:
            opts.append(ac.SettleModeOption(snd=Link.SND_SETTLED))
        target = None if self.opts.anonymous else self.opts.address
        self.sender = self.container.create_sender(conn, target, name=self.opts.link_name,
                                                   options=opts or None)

    def on_link_opened(self, event):
        if event.link == self.sender:
            self.link_opened = True
            self.settle_modes = ac.settle_mode_names(event.link)
            self.done_check()

    def make_message(self, i):
        o = self.opts
        m = Message()
        if self.body_json is not None:
            m.body = ac.to_proton_object(self.body_json)
        elif o.body_size is not None:
            pattern = ("%d:" % i).encode() + bytes(range(256))
            m.body = (pattern * (o.body_size // len(pattern) + 1))[:o.body_size]
            m.inferred = True  # bytes body -> one Data section
        else:
            m.body = "%s%d" % (o.body_prefix, i)
        if self.app_props is not None:
            m.properties = ac.to_proton_object(ac.typed_map_keys(self.app_props, "string"))
        if self.annotations is not None:
            m.annotations = ac.to_symbol_keyed(self.annotations)
        if self.instructions is not None:
            m.instructions = ac.to_symbol_keyed(self.instructions)
        for k, v in self.msg_props.items():
            set_message_property(m, k, v)
        if o.message_id_prefix is not None:
            m.id = "%s%d" % (o.message_id_prefix, i)
        if o.durable:
            m.durable = True
        if o.ttl is not None:
            m.ttl = o.ttl / 1000.0
        if o.priority is not None:
            m.priority = o.priority
        if o.anonymous:
            m.address = o.address
        data = m.encode()
        if self.footer is not None:
            data += ac.footer_bytes(self.footer)
        return data

    def on_link_flow(self, event):
        link = event.link
        if link != self.sender or self.finished:
            return
        if link.credit > 0:
            self.credit_seen = True
        while link.credit > 0 and self.sent < self.opts.count:
            data = self.make_message(self.sent)
            dlv = link.delivery(str(self.sent))
            link.send(data)
            link.advance()
            if self.t_first is None:
                self.t_first = time.monotonic()
            self.sent += 1
            if self.opts.settled:
                dlv.settle()
        self.done_check()

    def on_delivery(self, event):
        dlv = event.delivery
        if not dlv.link.is_sender:
            return
        if getattr(dlv, "_mesh_counted", False):
            return
        state = dlv.remote_state
        name = ac.outcome_name(state)
        if name in ("accepted", "rejected", "released", "modified"):
            self.counts[name] += 1
            if name == "modified":
                if dlv.remote.failed:
                    self.counts["modified_failed"] += 1
                if dlv.remote.undeliverable:
                    self.counts["undeliverable"] += 1
            if name == "rejected" and len(self.reject_conditions) < 10:
                self.reject_conditions.append(ac.condition_json(dlv.remote.condition))
        elif dlv.settled:
            self.counts["settled_no_outcome"] += 1
        else:
            return  # e.g. a non-terminal 'received' state
        dlv._mesh_counted = True
        self.outcomes += 1
        self.t_last = time.monotonic()
        if not dlv.settled:
            self.counts["outcome_unsettled_by_peer"] += 1
        dlv.settle()  # terminal outcome: settle (completes rcv-settle-mode second too)
        self.done_check()

    def done_check(self):
        if self.finished:
            return
        if self.opts.count == 0:
            if self.link_opened:
                self.finish()
            return
        if self.sent < self.opts.count:
            return
        if self.opts.settled or self.outcomes >= self.sent:
            self.finish()

    def result(self):
        res = {"sent": self.sent}
        res.update(self.counts)
        res["unsettled"] = 0 if self.opts.settled else self.sent - self.outcomes
        res["credit_received"] = self.credit_seen
        res["link_opened"] = self.link_opened
        res["remote_snd_settle_mode"], res["remote_rcv_settle_mode"] = self.settle_modes
        if self.reject_conditions:
            res["reject_conditions"] = self.reject_conditions
        end = self.t_last if self.t_last else time.monotonic()
        res["seconds"] = round(end - self.t_first, 6) if self.t_first else 0.0
        return res


def main():
    p = ac.base_parser("Send N messages and count remote outcomes")
    p.add_argument("--address", required=True, help="target address")
    p.add_argument("--count", type=int, default=1, help="messages to send (default 1)")
    p.add_argument("--settled", action="store_true",
                   help="send pre-settled (snd-settle-mode settled); no outcomes expected")
    p.add_argument("--body-size", type=int, default=None,
                   help="body = one Data section of B bytes (default: amqp-value string)")
    p.add_argument("--body-prefix", default="message-",
                   help="default body is the amqp-value string PREFIX+index")
    p.add_argument("--body-json", default=None, help="amqp-value body as (typed) JSON")
    p.add_argument("--properties", default=None,
                   help="application properties, JSON object (values may be typed)")
    p.add_argument("--annotations", default=None,
                   help="message annotations, JSON object (symbol keys)")
    p.add_argument("--delivery-annotations", default=None,
                   help="delivery annotations, JSON object (symbol keys)")
    p.add_argument("--message-properties", default=None,
                   help="properties section fields, JSON object: message_id, user_id, to, "
                        "subject, reply_to, correlation_id, content_type, ...")
    p.add_argument("--footer", default=None, help="footer, JSON object (symbol keys)")
    p.add_argument("--message-id-prefix", default=None, help="message_id = PREFIX+index")
    p.add_argument("--durable", action="store_true")
    p.add_argument("--ttl", type=int, default=None, help="header ttl in ms")
    p.add_argument("--priority", type=int, default=None)
    p.add_argument("--anonymous", action="store_true",
                   help="attach with a null target and set message.to (properties.to)")
    p.add_argument("--link-name", default=None)
    opts = p.parse_args()
    ac.run(Sender(opts))


if __name__ == "__main__":
    main()
