#!/usr/bin/python3
"""Client side of request/reply.

Attaches a receiver with a dynamic source (the peer picks the reply address;
--reply-to ADDR uses a fixed address instead), then sends N requests to the
service ADDRESS with reply_to = that address, correlation_id = "corr-<i>" and
body "request-<i>", and waits for the N replies.

Prints one JSON line, e.g.
{"sent": 3, "accepted": 3, "rejected": 0, "released": 0, "modified": 0,
 "replies": 3, "matched": 3, "unexpected": 0, "reply_to": "<dynamic address>",
 "replies_detail": [{"correlation_id": "corr-0", "body": "REQUEST-0",
                     "responder": "responder"}, ...],
 "rtt_ms": {"min": .., "p50": .., "max": ..}, "timed_out": false}
"""

import collections
import time

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import amqp_common as ac  # noqa: E402
from proton import Delivery, Message


class Requester(ac.ClientBase):
    def __init__(self, opts):
        super().__init__(opts)
        self.reply_to = None
        self.sent = 0
        self.outcomes = collections.Counter()
        self.outcome_count = 0
        self.sent_at = {}
        self.replies = []
        self.matched = 0
        self.unexpected = 0
        self.rtts = []
        self.sender = None

    def setup(self):
        self.conn = self.connect()
        if self.opts.reply_to:
            self.receiver = self.container.create_receiver(self.conn, self.opts.reply_to)
        else:
            self.receiver = self.container.create_receiver(self.conn, None, dynamic=True)
        self.receiver.flow(min(self.opts.credit, self.opts.count) or 1)

    def on_link_opened(self, event):
        if event.link == self.receiver and self.sender is None:
            self.reply_to = self.opts.reply_to or event.link.remote_source.address
            if not self.reply_to:
                self.fail("peer attached the dynamic receiver without an address")
                return
            ac.event_stderr({"event": "ready", "reply_to": self.reply_to})
            self.sender = self.container.create_sender(self.conn, self.opts.address)

    def on_link_flow(self, event):
        link = event.link
        if link != self.sender or self.finished:
            return
        while link.credit > 0 and self.sent < self.opts.count:
            m = Message(body="request-%d" % self.sent)
            m.reply_to = self.reply_to
            m.correlation_id = "corr-%d" % self.sent
            m.id = "req-%d" % self.sent
            link.delivery(str(self.sent))
            link.send(m.encode())
            link.advance()
            self.sent_at[m.correlation_id] = time.monotonic()
            self.sent += 1

    def on_delivery(self, event):
        dlv = event.delivery
        link = dlv.link
        if link.is_sender:
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
        m = Message()
        try:
            m.decode(raw)
        except Exception as e:
            self.unexpected += 1
            self.replies.append({"decode_error": str(e)})
            dlv.update(Delivery.REJECTED)
            dlv.settle()
            return
        corr = m.correlation_id
        detail = {"correlation_id": corr if isinstance(corr, (str, int)) or corr is None
                  else str(corr),
                  "body": m.body if isinstance(m.body, (str, int, float)) else str(m.body),
                  "responder": (m.properties or {}).get("responder")}
        t0 = self.sent_at.pop(corr, None) if isinstance(corr, str) else None
        if t0 is not None:
            self.matched += 1
            self.rtts.append((time.monotonic() - t0) * 1000.0)
        else:
            self.unexpected += 1
        self.replies.append(detail)
        dlv.update(Delivery.ACCEPTED)
        dlv.settle()
        if len(self.replies) + link.credit < self.opts.count:
            link.flow(1)
        self.done_check()

    def done_check(self):
        if self.finished:
            return
        if (self.sent >= self.opts.count and self.outcome_count >= self.sent
                and len(self.replies) >= self.opts.count):
            self.finish()

    def result(self):
        rtts = sorted(self.rtts)
        res = {"sent": self.sent, "accepted": self.outcomes["accepted"],
               "rejected": self.outcomes["rejected"], "released": self.outcomes["released"],
               "modified": self.outcomes["modified"], "replies": len(self.replies),
               "matched": self.matched, "unexpected": self.unexpected,
               "reply_to": self.reply_to}
        if not self.opts.quiet:
            res["replies_detail"] = self.replies
        if rtts:
            res["rtt_ms"] = {"min": round(rtts[0], 3),
                             "p50": round(rtts[len(rtts) // 2], 3),
                             "max": round(rtts[-1], 3)}
        return res


def main():
    p = ac.base_parser("Send requests to a service and wait for the replies")
    p.add_argument("--address", required=True, help="service address")
    p.add_argument("--count", type=int, default=1, help="requests to send (default 1)")
    p.add_argument("--credit", type=int, default=100, help="credit on the reply receiver")
    p.add_argument("--reply-to", default=None,
                   help="use this fixed reply address instead of a dynamic receiver")
    p.add_argument("--quiet", action="store_true", help="omit replies_detail")
    opts = p.parse_args()
    if opts.count < 1:
        ac.emit({"error": "--count must be >= 1"}, 2)
    ac.run(Requester(opts))


if __name__ == "__main__":
    main()
