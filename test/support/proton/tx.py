#!/usr/bin/python3
"""Transactional send or receive with Proton's TransactionHandler (AMQP local transactions).

  tx.py --url URL --address ADDR --mode send --count N [--rollback]
  tx.py --url URL --address ADDR --mode receive --count N [--rollback]

Declares one transaction on the coordinator link; sends N messages (bodies "tx-<i>") or
receives N and accepts them inside it; then commits, or rolls back with --rollback.
Prints one JSON line: {"declared": true, "sent": N, "received": [...], "outcome": "committed"|
"aborted"} or {"error": ...} (exit 1).
"""
import argparse
import json
import sys
sys.dont_write_bytecode = True  # keep the source tree clean

from proton import Message  # noqa: E402
from proton.handlers import MessagingHandler, TransactionHandler  # noqa: E402
from proton.reactor import Container  # noqa: E402


class Tx(MessagingHandler, TransactionHandler):
    def __init__(self, o):
        super().__init__(prefetch=0, auto_accept=False)
        self.o = o
        self.sent = 0
        self.received = []
        self.outcome = None
        self.error = None
        self.txn = None
        self.conn = None
        self.sender = None
        self.discharging = False

    def on_start(self, event):
        self.container = event.container
        self.conn = event.container.connect(self.o.url, reconnect=False)
        event.container.declare_transaction(self.conn, handler=self)
        self.timer = event.container.schedule(self.o.timeout, self)

    def on_timer_task(self, event):
        if self.outcome is None and self.error is None:
            self.error = "timed out"
            self.conn.close()

    def on_transaction_declared(self, event):
        self.txn = event.transaction
        if self.o.mode == "send":
            self.sender = event.container.create_sender(self.conn, self.o.address)
        else:
            r = event.container.create_receiver(self.conn, self.o.address)
            r.flow(self.o.count)

    def on_transaction_declare_failed(self, event):
        self.error = "declare failed"
        self.conn.close()

    def on_sendable(self, event):
        if self.txn is None or event.sender != self.sender:
            return
        while event.sender.credit > 0 and self.sent < self.o.count:
            self.txn.send(event.sender, Message(body="tx-%d" % self.sent, durable=True))
            self.sent += 1
        if self.sent == self.o.count:
            self.discharge()

    def on_message(self, event):
        self.received.append(event.message.body)
        self.txn.accept(event.delivery)
        if len(self.received) == self.o.count:
            self.discharge()

    def discharge(self):
        if self.discharging:
            return
        self.discharging = True
        if self.o.rollback:
            self.txn.abort()
        else:
            self.txn.commit()

    def done(self, outcome):
        self.outcome = outcome
        self.timer.cancel()
        self.conn.close()

    def on_transaction_committed(self, event):
        self.done("committed")

    def on_transaction_aborted(self, event):
        self.done("aborted")

    def on_transaction_failed(self, event):
        self.error = "transaction failed"
        self.conn.close()

    def on_transport_error(self, event):
        if self.outcome is None:
            self.error = "transport error: %s" % event.transport.condition


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="amqp://127.0.0.1:5672")
    p.add_argument("--address", required=True)
    p.add_argument("--mode", choices=["send", "receive"], required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--rollback", action="store_true")
    p.add_argument("--timeout", type=float, default=10.0)
    o = p.parse_args()
    h = Tx(o)
    Container(h).run()
    out = {"declared": h.txn is not None, "sent": h.sent, "received": h.received, "outcome": h.outcome}
    if h.error:
        out["error"] = h.error
    sys.stdout.write(json.dumps(out) + "\n")
    sys.exit(1 if h.error else 0)


if __name__ == "__main__":
    main()
