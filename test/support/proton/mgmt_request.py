#!/usr/bin/python3
"""AMQP management requests as qdstat and qdmanage (qdrouterd 1.19) send them.

Attaches a receiver with a dynamic source and a sender to --address (default
"$management"; with --anonymous, an anonymous sender and each request's `to` =
--address), then sends each request of --requests, a JSON list of
{"properties": {application properties}, "body": <amqp-value>}, in order, with
reply_to = the dynamic address and correlation_id = "1", "2", ... and NO
message-id (the tools set only a correlation-id). Integers in the application
properties go out as AMQP long (offset, count: as qdstat sends them).

Prints one JSON line:
{"reply_to": "<dynamic address>", "accepted": N, "rejected": N,
 "replies": [{"correlation_id": "1", "to": "...", "statusCode": 200,
              "statusDescription": "OK", "body": ...}, ...], "timed_out": false}
Replies are listed in arrival order.
"""

import collections
import json

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import amqp_common as ac  # noqa: E402
from proton import Delivery, Message


def plain_json(v):
    """Reply values as JSON (symbols as strings, anything else by str)."""
    if isinstance(v, dict):
        return {str(k): plain_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain_json(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v if not isinstance(v, str) else str(v)
    return str(v)


class Requester(ac.ClientBase):
    def __init__(self, opts):
        super().__init__(opts)
        self.requests = ac.json_arg(opts.requests, "--requests")
        self.reply_to = None
        self.sender = None
        self.sent = 0
        self.outcomes = collections.Counter()
        self.replies = []

    def setup(self):
        self.conn = self.connect()
        self.receiver = self.container.create_receiver(self.conn, None, dynamic=True)
        self.receiver.flow(max(1, len(self.requests)))

    def on_link_opened(self, event):
        if event.link == self.receiver and self.sender is None:
            self.reply_to = event.link.remote_source.address
            if not self.reply_to:
                self.fail("peer attached the dynamic receiver without an address")
                return
            target = None if self.opts.anonymous else self.opts.address
            self.sender = self.container.create_sender(self.conn, target)

    def on_link_flow(self, event):
        link = event.link
        if link != self.sender or self.finished:
            return
        while link.credit > 0 and self.sent < len(self.requests):
            r = self.requests[self.sent]
            m = Message(body=r.get("body", {}))
            m.properties = r.get("properties", {})
            m.reply_to = self.reply_to
            if self.opts.anonymous:
                m.address = self.opts.address
            m.correlation_id = str(self.sent + 1)
            link.delivery(str(self.sent + 1))
            link.send(m.encode())
            link.advance()
            self.sent += 1

    def on_delivery(self, event):
        dlv = event.delivery
        if dlv.link.is_sender:
            ac.record_outcome(dlv, self.outcomes)
            self.done_check()
            return
        if not dlv.readable or dlv.partial:
            return
        raw = ac.read_delivery(dlv)
        if raw is None:
            return
        m = Message()
        m.decode(raw)
        props = m.properties or {}
        self.replies.append({
            "correlation_id": plain_json(m.correlation_id),
            "to": m.address,
            "statusCode": props.get("statusCode"),
            "statusDescription": plain_json(props.get("statusDescription")),
            "body": plain_json(m.body),
        })
        dlv.update(Delivery.ACCEPTED)
        dlv.settle()
        self.done_check()

    def done_check(self):
        if len(self.replies) >= len(self.requests) and sum(self.outcomes.values()) >= self.sent:
            self.finish()

    def result(self):
        return {"reply_to": self.reply_to, "accepted": self.outcomes["accepted"],
                "rejected": self.outcomes["rejected"], "replies": self.replies}


def main():
    p = ac.base_parser("Send AMQP management requests as qdstat/qdmanage do")
    p.add_argument("--address", default="$management", help="management node address")
    p.add_argument("--anonymous", action="store_true",
                   help="send on an anonymous sender, each request's 'to' = --address")
    p.add_argument("--requests", required=True, help="JSON list of {properties, body}")
    opts = p.parse_args()
    ac.run(Requester(opts))


if __name__ == "__main__":
    main()
