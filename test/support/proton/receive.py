#!/usr/bin/python3
"""Receive N messages from an address and settle them with a chosen outcome.

Prints one JSON line, e.g.
{"received": 2, "messages": ["message-0", "message-1"], "accepted": 2, ...}
With --dump each entry of "messages" is the full typed message (see README.md).
Writes {"event": "ready", ...} on stderr once the peer has attached the link.
"""

import base64

import sys
sys.dont_write_bytecode = True  # keep the source tree clean

import amqp_common as ac  # noqa: E402
from proton import Condition, Delivery, Link

OUTCOMES = ["accept", "reject", "release", "modify-failed", "modify-undeliverable",
            "modify-failed-undeliverable"]


def short_body(msg):
    """Plain body for the compact (non --dump) listing; binaries as their size."""
    body = msg["body"]
    if body is None:
        return None

    def conv(t):
        if isinstance(t, list):
            return [conv(x) for x in t]
        if t.get("type") == "binary":
            return {"binary_size": len(base64.b64decode(t["value"]))}
        return ac.plain(t)
    return conv(body)


class Receiver(ac.ClientBase):
    def __init__(self, opts):
        super().__init__(opts)
        self.received = 0
        self.messages = []
        self.counts = {"accepted": 0, "rejected": 0, "released": 0, "modified": 0,
                       "unsettled_kept": 0, "presettled": 0, "settled_by_sender": 0,
                       "aborted": 0, "decode_errors": 0}
        self.awaiting_sender_settle = 0
        self.link_opened = False
        self.settle_modes = (None, None)
        self.source_address = None

    def setup(self):
        conn = self.connect()
        opts = []
        if self.opts.rcv_settle_second:
            opts.append(ac.SettleModeOption(rcv=Link.RCV_SECOND))
        self.receiver = self.container.create_receiver(
            conn, self.opts.address, name=self.opts.link_name, options=opts or None)
        self.top_up()

    def wanted(self):
        if self.opts.count == 0:
            return self.opts.credit
        return max(0, min(self.opts.credit, self.opts.count - self.received))

    def top_up(self):
        if self.finished:
            return
        link = self.receiver
        want = self.wanted()
        if link.credit < want:
            # replenish in batches (at least half the window) like most clients do
            if self.opts.count != 0 and self.opts.count - self.received <= self.opts.credit:
                link.flow(want - link.credit)
            elif link.credit <= want // 2 or link.credit == 0:
                link.flow(want - link.credit)

    def on_link_opened(self, event):
        if event.link == self.receiver:
            self.link_opened = True
            self.settle_modes = ac.settle_mode_names(event.link)
            self.source_address = event.link.remote_source.address
            ac.event_stderr({"event": "ready", "address": self.source_address,
                             "remote_snd_settle_mode": self.settle_modes[0],
                             "remote_rcv_settle_mode": self.settle_modes[1]})
            if self.opts.count == 0 and self.opts.timeout <= 0:
                self.finish()

    def apply_outcome(self, dlv):
        o = self.opts.outcome
        if o == "accept":
            dlv.update(Delivery.ACCEPTED)
            self.counts["accepted"] += 1
        elif o == "reject":
            dlv.local.condition = Condition("test:rejected",
                                            "rejected by receive.py")
            dlv.update(Delivery.REJECTED)
            self.counts["rejected"] += 1
        elif o == "release":
            dlv.update(Delivery.RELEASED)
            self.counts["released"] += 1
        else:
            dlv.local.failed = o in ("modify-failed", "modify-failed-undeliverable")
            dlv.local.undeliverable = o in ("modify-undeliverable", "modify-failed-undeliverable")
            dlv.update(Delivery.MODIFIED)
            self.counts["modified"] += 1

    def on_delivery(self, event):
        dlv = event.delivery
        if not dlv.link.is_receiver:
            return
        if getattr(dlv, "_mesh_done", False):
            # rcv-settle-mode second: the sender settles after seeing our outcome
            if dlv.settled:
                self.counts["settled_by_sender"] += 1
                self.awaiting_sender_settle -= 1
                dlv.settle()
                self.done_check()
            return
        if dlv.aborted:
            self.counts["aborted"] += 1
            dlv.settle()
            self.top_up()
            return
        if not dlv.readable:
            return
        raw = ac.read_delivery(dlv)
        if raw is None:
            return  # more frames to come
        dlv._mesh_done = True
        self.received += 1
        settled_on_arrival = bool(dlv.settled)
        if settled_on_arrival:
            self.counts["presettled"] += 1
        if not self.opts.quiet:
            try:
                msg = ac.decode_message(raw)
                if self.opts.dump:
                    msg["delivery"] = {"tag": bytes(dlv.tag, "latin-1").hex()
                                       if isinstance(dlv.tag, str) else bytes(dlv.tag).hex(),
                                       "settled_on_arrival": settled_on_arrival,
                                       "size": len(raw)}
                    self.messages.append(msg)
                else:
                    self.messages.append(short_body(msg))
            except Exception as e:
                self.counts["decode_errors"] += 1
                self.messages.append({"decode_error": str(e),
                                      "raw": base64.b64encode(raw).decode("ascii")})
        if settled_on_arrival:
            dlv.settle()
        elif self.opts.no_settle:
            self.counts["unsettled_kept"] += 1
        else:
            self.apply_outcome(dlv)
            if self.opts.rcv_settle_second:
                self.awaiting_sender_settle += 1
            else:
                dlv.settle()
        self.top_up()
        self.done_check()

    def done_check(self):
        if self.finished or self.opts.count == 0:
            return
        if self.received >= self.opts.count and self.awaiting_sender_settle <= 0:
            self.finish()

    def before_close(self):
        if self.opts.end == "detach":
            if self.receiver and not (self.receiver.state & ac.Endpoint.LOCAL_CLOSED):
                self.receiver.detach()
        elif self.receiver and not (self.receiver.state & ac.Endpoint.LOCAL_CLOSED):
            self.receiver.close()

    def result(self):
        res = {"received": self.received}
        if not self.opts.quiet:
            res["messages"] = self.messages
        res.update(self.counts)
        res["awaiting_sender_settle"] = self.awaiting_sender_settle
        res["link_opened"] = self.link_opened
        res["source_address"] = self.source_address
        res["remote_snd_settle_mode"], res["remote_rcv_settle_mode"] = self.settle_modes
        return res


def main():
    p = ac.base_parser("Receive N messages and settle them with an outcome")
    p.add_argument("--address", required=True, help="source address")
    p.add_argument("--count", type=int, default=1,
                   help="messages to receive; 0 = until --timeout (default 1)")
    p.add_argument("--credit", type=int, default=100,
                   help="credit window (never more than the messages still wanted)")
    p.add_argument("--outcome", choices=OUTCOMES, default="accept")
    p.add_argument("--no-settle", action="store_true",
                   help="send no disposition, keep deliveries unsettled, then close the link")
    p.add_argument("--dump", action="store_true",
                   help="list every message with all sections as typed JSON")
    p.add_argument("--quiet", action="store_true", help="omit the messages list")
    p.add_argument("--rcv-settle-second", action="store_true",
                   help="attach with rcv-settle-mode second: outcome sent unsettled, "
                        "settled after the sender settles")
    p.add_argument("--end", choices=["close", "detach"], default="close",
                   help="at the end close the link (default) or detach it (closed=false)")
    p.add_argument("--link-name", default=None)
    opts = p.parse_args()
    if opts.credit <= 0:
        ac.emit({"error": "--credit must be > 0"}, 2)
    ac.run(Receiver(opts))


if __name__ == "__main__":
    main()
