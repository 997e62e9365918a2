/**
 * Shared steps of the broker system tests: a broker per test (always stopped), and promise
 * wrappers for rhea senders and receivers. Not a test file.
 */
import rhea = require('rhea');
import * as assert from 'uvu/assert';
import { RunningBroker, brokerConfig, startBroker, tempDir } from '../support/broker';
import { waitFor } from '../support/wait';
import { RheaClient, once, rheaConnect } from './helpers';

export { waitFor, once, tempDir, brokerConfig, startBroker };

/** Boots a broker on a fresh data dir (or `config`), runs `fn`, stops it (exit 0 expected). */
export async function withBroker<T>(fn: (b: RunningBroker, dataDir: string) => Promise<T>, opts: { extra?: string; broker?: string; dataDir?: string; nodeArgs?: string[] } = {}): Promise<T> {
  const dataDir = opts.dataDir ?? tempDir();
  const b = await startBroker(brokerConfig(dataDir, { extra: opts.extra, broker: opts.broker }), { nodeArgs: opts.nodeArgs });
  let failed = true;
  try {
    const v = await fn(b, dataDir);
    failed = false;
    return v;
  } catch (e) {
    if (!process.env.BROKER_LOG) process.stderr.write(`--- broker log (last 40 lines) ---\n${b.log.slice(-40).join('\n')}\n`);
    throw e;
  } finally {
    const code = await b.stop();
    if (!failed) assert.is(code, 0, 'broker exits 0 on SIGTERM');
  }
}

/** Connects rhea (container id `id` when given: durable subscriptions are named by it). */
export function connect(b: RunningBroker | { port: number }, id?: string): Promise<RheaClient> {
  return rheaConnect({ port: b.port }, 0, id ? ({ container_id: id } as never) : {});
}

/** Sends `messages` on one link; resolves with each message's outcome, in order. */
export async function sendAll(c: RheaClient, target: string | rhea.TargetTerminusOptions, messages: rhea.Message[], ms = 10_000): Promise<string[]> {
  const s = c.conn.open_sender(typeof target === 'string' ? { target: { address: target } } : { target });
  const results: string[] = new Array(messages.length).fill('');
  let next = 0;
  let done = 0;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`sendAll: ${done}/${messages.length} outcomes after ${ms} ms`)), ms);
    const pump = () => {
      while (next < messages.length && s.sendable()) {
        const i = next++;
        const d = s.send(messages[i]);
        (d as any).index = i;
      }
    };
    const finish = (ctx: any, what: string) => {
      results[ctx.delivery.index] = what === 'rejected' ? `rejected:${ctx.delivery.remote_state?.error?.condition ?? ''}` : what;
      if (++done === messages.length) {
        clearTimeout(t);
        resolve();
      }
    };
    s.on('sendable', pump);
    s.on('accepted', (ctx) => finish(ctx, 'accepted'));
    s.on('rejected', (ctx) => finish(ctx, 'rejected'));
    s.on('released', (ctx) => finish(ctx, 'released'));
    s.on('modified', (ctx) => finish(ctx, 'modified'));
    s.on('sender_error', (ctx: any) => {
      clearTimeout(t);
      reject(new Error(`sender error ${ctx.sender.error?.condition}: ${ctx.sender.error?.description}`));
    });
    if (messages.length === 0) {
      clearTimeout(t);
      resolve();
    }
    pump();
  });
  s.close();
  return results;
}

/** A receiver that keeps what arrives; `accept` decides the outcome of each (default accept). */
export interface Rx {
  receiver: rhea.Receiver;
  messages: rhea.Message[];
  deliveries: rhea.Delivery[];
  close(): Promise<void>;
  detach(): Promise<void>;
}

export async function receiver(
  c: RheaClient,
  source: string | rhea.ReceiverOptions['source'],
  opts: { credit?: number; name?: string; settle?: (m: rhea.Message, d: rhea.Delivery) => 'accept' | 'release' | 'modify' | 'reject' | 'undeliverable' | 'none' } = {},
): Promise<Rx> {
  const r = c.conn.open_receiver({
    source: typeof source === 'string' ? { address: source } : source,
    autoaccept: false,
    credit_window: opts.credit ?? 100,
    name: opts.name,
  } as rhea.ReceiverOptions);
  const rx: Rx = {
    receiver: r,
    messages: [],
    deliveries: [],
    async close() {
      r.close();
      await once(r as any, 'receiver_close').catch(() => undefined);
    },
    async detach() {
      r.detach();
      await once(r as any, 'receiver_close').catch(() => undefined);
    },
  };
  r.on('message', (ctx) => {
    rx.messages.push(ctx.message);
    rx.deliveries.push(ctx.delivery);
    const what = opts.settle ? opts.settle(ctx.message, ctx.delivery) : 'accept';
    if (what === 'accept') ctx.delivery.accept();
    else if (what === 'release') ctx.delivery.release();
    else if (what === 'modify') ctx.delivery.release({ delivery_failed: true });
    else if (what === 'undeliverable') ctx.delivery.release({ undeliverable_here: true });
    else if (what === 'reject') ctx.delivery.reject({ condition: 'test:rejected', description: 'rejected by test' });
  });
  await once(r as any, 'receiver_open');
  return rx;
}

/** Bodies of the messages received, in order. */
export function bodies(rx: Rx): unknown[] {
  return rx.messages.map((m) => m.body);
}

/** Messages m0..m(n-1) with body `${prefix}${i}`. */
export function numbered(n: number, prefix = 'm', extra: (i: number) => Partial<rhea.Message> = () => ({})): rhea.Message[] {
  return Array.from({ length: n }, (_, i) => ({ body: `${prefix}${i}`, durable: true, ...extra(i) }));
}

/**
 * An AMQP Management QUERY (as qdmanage sends it) to a router's `$management`; resolves with the
 * rows as objects keyed by attribute name.
 */
export async function managementQuery(c: RheaClient, entityType: string, ms = 5000): Promise<Record<string, unknown>[]> {
  const rx = c.conn.open_receiver({ source: { dynamic: true }, credit_window: 10 } as never);
  const opened: any = await once(rx as any, 'receiver_open', ms);
  const replyTo = opened.receiver.source.address as string;
  const tx = c.conn.open_sender({ target: { address: '$management' } });
  await once(tx as any, 'sendable', ms);
  const reply = new Promise<any>((resolve) => rx.once('message', (ctx: any) => resolve(ctx.message)));
  tx.send({ message_id: 'q1', reply_to: replyTo, application_properties: { operation: 'QUERY', type: 'org.amqp.management', entityType, name: 'self' }, body: { attributeNames: [] } });
  const m = await Promise.race([reply, new Promise((_, reject) => setTimeout(() => reject(new Error('no management reply')), ms))]);
  rx.close();
  tx.close();
  assert.is(m.application_properties?.statusCode, 200, JSON.stringify(m.application_properties));
  assert.is(m.correlation_id, 'q1');
  const names: string[] = m.body.attributeNames;
  return (m.body.results as unknown[][]).map((row) => Object.fromEntries(names.map((n, i) => [n, row[i]])));
}

/**
 * A producer of ids 0..n-1 (durable) on one link that resends whatever comes back released,
 * modified or rejected (what a router reports for deliveries in flight to a lost broker), and
 * records the longest gap between accepted outcomes once `measure()` is called.
 */
export class RetryingProducer {
  readonly accepted = new Set<number>();
  private readonly retry: number[] = [];
  private next = 0;
  resent = 0;
  maxGap = 0;
  private lastAccept = 0;
  private measuring = false;
  readonly sender: rhea.Sender;

  constructor(c: RheaClient, address: string, readonly n: number, events: string[] = []) {
    const s = c.conn.open_sender({ target: { address } });
    this.sender = s;
    s.on('sendable', () => this.pump());
    s.on('sender_close', () => events.push('producer link detached'));
    s.on('accepted', (ctx: any) => {
      const now = performance.now();
      if (this.measuring) this.maxGap = Math.max(this.maxGap, now - this.lastAccept);
      this.lastAccept = now;
      this.accepted.add(ctx.delivery.msgId);
    });
    for (const ev of ['released', 'modified', 'rejected']) {
      s.on(ev as any, (ctx: any) => {
        this.retry.push(ctx.delivery.msgId);
        this.resent++;
        this.pump();
      });
    }
  }

  private pump(): void {
    const s = this.sender;
    while (s.sendable()) {
      const id = this.retry.length > 0 ? (this.retry.shift() as number) : this.next < this.n ? this.next++ : -1;
      if (id < 0) return;
      (s.send({ body: id, durable: true }) as any).msgId = id;
    }
  }

  /** Starts timing gaps between accepted outcomes (call just before the fault). */
  measure(): void {
    this.measuring = true;
    this.lastAccept = performance.now();
  }

  get done(): boolean {
    return this.accepted.size === this.n;
  }
}

/** A consumer on one link that keeps every body it gets (ids from {@link RetryingProducer}). */
export function collectingConsumer(c: RheaClient, address: string, credit: number, events: string[] = []): number[] {
  const received: number[] = [];
  const r = c.conn.open_receiver({ source: { address }, credit_window: credit });
  r.on('message', (ctx) => received.push(ctx.message.body as number));
  r.on('receiver_close', () => events.push('consumer link detached'));
  return received;
}

/** Records connection-level trouble of clients as "NAME event" strings. */
export function watchConnections(clients: [string, RheaClient][], events: string[]): void {
  for (const [n, cl] of clients) {
    for (const e of ['connection_close', 'disconnected', 'connection_error']) cl.conn.on(e as any, () => events.push(`${n} ${e}`));
  }
}

/** Asserts every accepted id arrived; returns the number of duplicates received. */
export function assertNoneLost(accepted: Set<number>, received: number[]): number {
  const unique = new Set(received);
  assert.equal([...accepted].filter((id) => !unique.has(id)), [], 'nothing accepted is lost');
  return received.length - unique.size;
}

/** The broker's memory after a full GC (SIGUSR2; the broker runs with --expose-gc): heap + buffers, MB. */
export async function brokerMemoryMb(b: RunningBroker): Promise<{ heap: number; buffers: number; cached: number }> {
  const from = b.log.length;
  b.proc.kill('SIGUSR2');
  let line = '';
  await waitFor(() => {
    line = b.log.slice(from).find((l) => l.includes('memory: rss')) ?? '';
    return line !== '';
  }, 5000, 'the memory report');
  const num = (re: RegExp) => Number((line.match(re) ?? [])[1]);
  return { heap: num(/heap used ([\d.]+) MB/), buffers: num(/array buffers ([\d.]+) MB/), cached: num(/cached bodies ([\d.]+) MB/) };
}
