/**
 * Shared steps of the wire tests: attach links and wait for the router's replies, wait for
 * credit, and a well-behaved peer that proves the router still routes for everyone else.
 */
import * as assert from 'uvu/assert';
import { D } from '../../amqp/performatives';
import { Frame, RawClient, section } from '../support/raw-client';
import { RunningRouter } from '../support/router';
import { waitFor } from '../support/wait';

/** Encoded delivery states as the tests send them. */
export const ACCEPTED = Buffer.from([0x00, 0x53, 0x24, 0x45]);
export const RELEASED = Buffer.from([0x00, 0x53, 0x26, 0x45]);
/** modified with delivery-failed = true (what the router makes for a lost delivery). */
export const MODIFIED_FAILED = Buffer.from([0x00, 0x53, 0x27, 0xc0, 0x02, 0x01, 0x41]);

/** A one-section message: amqp-value holding `text`. */
export function textMessage(text: string): Buffer {
  return section(D.AmqpValue, text);
}

/** Router log lines written since `mark` (an index into r.log), joined. */
export function logSince(r: RunningRouter, mark: number): string {
  return r.log.slice(mark).join('\n');
}

/** Waits for the router's attach reply for link `name`; returns it. */
export function attachReply(c: RawClient, name: string, timeoutMs = 3000): Promise<Frame> {
  return c.waitForFrame((f) => f.name === 'attach' && f.fields[0] === name, timeoutMs);
}

/** Attaches a sender and returns the router's handle for it (from its attach reply). */
export async function openSender(c: RawClient, ch: number, handle: number, name: string, address: unknown): Promise<number> {
  c.attachSender(ch, handle, name, address);
  const a = await attachReply(c, name);
  return a.fields[1] as number;
}

/** Attaches a receiver, grants it `credit`, and returns the router's handle for it. */
export async function openReceiver(c: RawClient, ch: number, handle: number, name: string, address: unknown, credit: number): Promise<number> {
  c.attachReceiver(ch, handle, name, address);
  const a = await attachReply(c, name);
  if (credit > 0) c.flow(ch, { handle, deliveryCount: 0, linkCredit: credit });
  return a.fields[1] as number;
}

/** A flow from the router for its link `routerHandle` on our session `ch`. */
export function isLinkFlow(f: Frame, ch: number, routerHandle: number): boolean {
  return f.name === 'flow' && f.session === ch && f.fields[4] === routerHandle;
}

/** Waits for the router to give link `routerHandle` credit > 0; returns that flow. */
export function waitCredit(c: RawClient, ch: number, routerHandle: number, since = 0, timeoutMs = 3000): Promise<Frame> {
  return c.waitForFrame((f) => isLinkFlow(f, ch, routerHandle) && (f.fields[6] as number) > 0, timeoutMs, since);
}

/** The disposition (on our session `ch`, from the router as `role`) covering delivery `id`. */
export function dispositionFor(c: RawClient, ch: number, id: number, since = 0, timeoutMs = 3000): Promise<Frame> {
  return c.waitForFrame((f) => {
    if (f.name !== 'disposition' || f.session !== ch) return false;
    const first = f.fields[1] as number;
    const last = f.fields[2] == null ? first : (f.fields[2] as number);
    return id >= first && id <= last;
  }, timeoutMs, since);
}

/**
 * A well-behaved client: one connection, one session, a receiver (credit 100) and a sender on
 * the same address. {@link roundTrip} sends one message through the router and back, accepts
 * it, and checks the sender sees accepted: the router still routes for everyone else.
 */
export class GoodPeer {
  private n = 0;
  private constructor(readonly c: RawClient, readonly ch: number, readonly address: string, readonly rxHandle: number, readonly txHandle: number, private readonly hBase: number) {}

  /** Opens a new connection (or uses `client`, on session `ch`) and attaches both links. */
  static async start(port: number, address: string, client?: RawClient, ch = 0, hBase = 0): Promise<GoodPeer> {
    const c = client ?? (await RawClient.open(port, { session: true, containerId: `good-${address}` }));
    const rx = await openReceiver(c, ch, hBase, `${address}-rx-${ch}`, address, 100);
    const since = c.mark;
    const tx = await openSender(c, ch, hBase + 1, `${address}-tx-${ch}`, address);
    await waitCredit(c, ch, tx, since);
    return new GoodPeer(c, ch, address, rx, tx, hBase);
  }

  /** One message out and back, accepted end to end. */
  async roundTrip(): Promise<void> {
    const body = textMessage(`ping ${this.address} ${++this.n}`);
    const since = this.c.mark;
    assert.not.ok(this.c.closed, 'the well-behaved client was disconnected');
    const id = this.c.sendMessage(this.ch, this.hBase + 1, body);
    const t = await this.c.waitForFrame((f) => f.name === 'transfer' && f.session === this.ch && f.fields[0] === this.rxHandle, 3000, since);
    assert.equal(t.payload, body, 'the well-behaved client got its message intact');
    this.c.disposition(this.ch, { role: true, first: t.fields[1] as number, settled: true, state: ACCEPTED });
    const d = await dispositionFor(this.c, this.ch, id, since);
    assert.equal(d.raw[4], ACCEPTED, 'the well-behaved sender saw accepted');
  }

  close(): void {
    this.c.destroy();
  }
}

/**
 * Checks "everyone else keeps working": `good` (connected before the trouble) still routes, and
 * a client connecting now can too.
 */
export async function everyoneElseWorks(r: RunningRouter, good: GoodPeer, port = r.port): Promise<void> {
  assert.is(r.proc.exitCode, null, `router exited:\n${r.log.join('\n')}`);
  await good.roundTrip();
  const fresh = await GoodPeer.start(port, `${good.address}.fresh${Date.now()}`);
  try {
    await fresh.roundTrip();
  } finally {
    fresh.close();
  }
}

/** Waits for the client's socket to drain its write buffer (or to close). */
export function drained(c: RawClient): Promise<void> {
  if (c.socket.writableLength === 0 || c.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      c.socket.off('drain', done);
      c.socket.off('close', done);
      resolve();
    };
    c.socket.on('drain', done);
    c.socket.on('close', done);
  });
}

/**
 * Sends an empty frame (a heartbeat) on each client every `ms` until the returned function is
 * called: a client that holds resources while staying within the idle timeout, as a hostile one would.
 */
export function keepAlive(clients: RawClient[], ms = 1000): () => void {
  const t = setInterval(() => {
    for (const c of clients) if (!c.closed) c.send(RawClient.frameBytes(0, 0, Buffer.alloc(0)));
  }, ms);
  return () => clearInterval(t);
}

/**
 * Sends `bytes` of one delivery on link `handle` and never its last frame: every frame has
 * more=true, so the router must hold it all as an incomplete delivery. 16,000-byte pieces (under
 * the default max-frame-size), sent as the socket drains.
 */
export async function sendIncomplete(c: RawClient, ch: number, handle: number, deliveryId: number, bytes: number): Promise<void> {
  const piece = Buffer.alloc(16_000, 0x61);
  for (let sent = 0; sent < bytes && !c.closed; sent += piece.length) {
    const first = sent === 0;
    c.transfer(ch, { handle, deliveryId: first ? deliveryId : null, deliveryTag: first ? undefined : null, more: true, payload: piece });
    if (c.socket.writableLength > 1 << 20) await drained(c);
  }
}

/**
 * Sends `n` unsettled messages on link `handle` as the router's credit allows (it tops credit up
 * as messages leave). Returns the delivery-ids used.
 */
export async function sendWithCredit(c: RawClient, ch: number, handle: number, routerHandle: number, n: number, body: (i: number) => Buffer, timeoutMs = 30_000): Promise<number[]> {
  const ids: number[] = [];
  const limit = () => {
    for (let i = c.frames.length - 1; i >= 0; i--) {
      const f = c.frames[i];
      if (isLinkFlow(f, ch, routerHandle)) return (f.fields[5] as number) + (f.fields[6] as number);
    }
    return 0;
  };
  while (ids.length < n) {
    await waitFor(() => limit() > ids.length || c.closed, timeoutMs, `credit for message ${ids.length}`);
    assert.not.ok(c.closed, 'the sender was disconnected');
    c.batch(() => {
      const to = Math.min(n, limit());
      while (ids.length < to) ids.push(c.sendMessage(ch, handle, body(ids.length)));
    });
    await drained(c);
  }
  return ids;
}
