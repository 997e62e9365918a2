#!/usr/bin/python3
"""Service side of request/reply: receive requests on ADDRESS and send a reply to
each request's reply_to, with correlation_id = the request's correlation_id (or
its message_id when it has none).

Reply body: the request's amqp-value body; strings are upper-cased
("request-0" -> "REQUEST-0"). The reply has application property
"responder" = --name.

Replies go over one anonymous sender (null target, properties.to = reply_to) by
default; --no-anonymous opens one sender per reply_to address instead.

Prints one JSON line, e.g.
{"handled": 3, "replied": 3, "reply_accepted": 3, "reply_rejected": 0,
 "reply_released": 0, "reply_modified": 0, "no_reply_to": 0, "timed_out": false}
Writes {"event": "ready", ...} on stderr once the request link is attached.
"""

import collections

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import amqp_common as ac  # noqa: E402
from proton import Delivery, Message


class Responder(ac.ClientBase):
    def __init__(self, opts):
        super().__init__(opts)
        self.handled = 0
        self.replied = 0
        self.no_reply_to = 0
        self.decode_errors = 0
        self.reply_outcomes = collections.Counter()
        self.reply_outcome_count = 0
        self.pending = collections.deque()  # (address, bytes) waiting for credit
        self.senders = {}
        self.anon = None
        self.link_opened = False

    def setup(self):
        self.conn = self.connect()
        self.receiver = self.container.create_receiver(self.conn, self.opts.address)
        self.receiver.flow(self.opts.credit)
        if not self.opts.no_anonymous:
            self.anon = self.container.create_sender(self.conn, None)

    def on_link_opened(self, event):
        if event.link == self.receiver:
            self.link_opened = True
            ac.event_stderr({"event": "ready", "address": self.opts.address})

    def sender_for(self, address):
        if self.anon is not None:
            return self.anon
        s = self.senders.get(address)
        if s is None:
            s = self.container.create_sender(self.conn, address)
            self.senders[address] = s
        return s

    def on_delivery(self, event):
        dlv = event.delivery
        link = dlv.link
        if link.is_sender:
            if ac.record_outcome(dlv, self.reply_outcomes):
                self.reply_outcome_count += 1
                self.done_check()
            return
        if dlv.aborted:
            dlv.settle()
            link.flow(1)
            return
        if not dlv.readable:
            return
        raw = ac.read_delivery(dlv)
        if raw is None:
            return
        self.handled += 1
        req = Message()
        try:
            req.decode(raw)
        except Exception:
            self.decode_errors += 1
            dlv.update(Delivery.REJECTED)
            dlv.settle()
            link.flow(1)
            return
        if req.reply_to:
            rep = Message()
            body = req.body
            rep.body = body.upper() if isinstance(body, str) else body
            rep.correlation_id = req.correlation_id if req.correlation_id is not None else req.id
            rep.properties = {"responder": self.opts.name}
            if self.anon is not None:
                rep.address = req.reply_to
            self.pending.append((req.reply_to, rep.encode()))
            self.flush()
        else:
            self.no_reply_to += 1
        dlv.update(Delivery.ACCEPTED)
        dlv.settle()
        if self.opts.count == 0 or self.handled + self.receiver.credit < self.opts.count:
            link.flow(1)
        self.done_check()

    def flush(self):
        kept = collections.deque()
        while self.pending:
            address, data = self.pending.popleft()
            s = self.sender_for(address)
            if s.credit > 0:
                s.delivery(str(self.replied))
                s.send(data)
                s.advance()
                self.replied += 1
            else:
                kept.append((address, data))
        self.pending = kept

    def on_link_flow(self, event):
        if event.link.is_sender:
            self.flush()

    def done_check(self):
        if self.finished or self.opts.count == 0:
            return
        if (self.handled >= self.opts.count and not self.pending
                and self.reply_outcome_count >= self.replied):
            self.finish()

    def result(self):
        return {"handled": self.handled, "replied": self.replied,
                "reply_accepted": self.reply_outcomes["accepted"],
                "reply_rejected": self.reply_outcomes["rejected"],
                "reply_released": self.reply_outcomes["released"],
                "reply_modified": self.reply_outcomes["modified"],
                "replies_unsent": len(self.pending),
                "no_reply_to": self.no_reply_to, "decode_errors": self.decode_errors,
                "link_opened": self.link_opened}


def main():
    p = ac.base_parser("Reply to requests received on an address")
    p.add_argument("--address", required=True, help="service address to receive requests on")
    p.add_argument("--count", type=int, default=1,
                   help="requests to handle before exiting; 0 = until --timeout")
    p.add_argument("--credit", type=int, default=100)
    p.add_argument("--name", default="responder", help="value of the 'responder' property")
    p.add_argument("--no-anonymous", action="store_true",
                   help="one sender per reply_to address instead of an anonymous sender")
    opts = p.parse_args()
    if opts.count:
        opts.credit = min(opts.credit, opts.count)
    ac.run(Responder(opts))


if __name__ == "__main__":
    main()
