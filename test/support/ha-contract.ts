/**
 * The broker HA contract: what every haPolicy guarantees, run with real broker processes over
 * each backend (shared-store in test/system/broker-ha.test.ts, jdbc in test/system/jdbc.test.ts).
 * Not a test file: `haContract` registers and runs one uvu suite.
 *
 *   rhea producer (fails over using failover-server-list)
 *        |             \
 *   [master M :p1]    [slave S :p2, no listener until live]
 *         \            /
 *       the group's store and lock (a shared dataDir, or PostgreSQL)
 *
 * kill -9 of the master mid-stream loses nothing accepted; a master frozen past its lease
 * (SIGSTOP) steps down when it resumes and writes nothing more; two brokers started together
 * yield exactly one live one.
 */
import { performance } from 'node:perf_hooks';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import rhea = require('rhea');
import { RunningBroker, freePort, startBroker } from './broker';
import { waitFor } from './wait';
import { connect, receiver } from '../system/broker-helpers';

/** How a backend makes the members of one group. */
export interface HaBackend {
  /** A new group (fresh store): `config` gives member `id`'s whole configuration. */
  group(): { config(id: string, port: number, brokerExtra?: string): string };
  /** Members of a group (default 2: a master and a slave). */
  members?: number;
}

/** The failover-server-list ports a broker announces in its open frame. */
export async function announcedBy(port: number): Promise<number[]> {
  const c = await connect({ port });
  try {
    const list = (c.conn as unknown as { properties?: Record<string, unknown> }).properties?.['failover-server-list'];
    return Array.isArray(list) ? list.map((e: { port?: unknown }) => Number(e.port)) : [];
  } finally {
    await c.close();
  }
}

/** A producer that sends ids 0..n-1 durably and, on losing its broker, resends whatever was not yet accepted. */
export class FailoverProducer {
  readonly accepted = new Set<number>();
  private readonly inflight = new Set<number>();
  private readonly resend: number[] = [];
  private next = 0;
  /** host:port of each member known, the one to try next first. */
  servers: string[];
  private serverIdx = 0;
  private conn: rhea.Connection | null = null;
  readonly container = rhea.create_container({ id: `failover-producer-${process.pid}` });
  connects = 0;
  announced: number[] = [];
  /** Outcomes `accepted`, by the server (host:port) that sent them. */
  readonly acceptedBy = new Map<string, number>();
  resent = 0;
  private stopped = false;

  constructor(readonly n: number, readonly address: string, firstPort: number | string) {
    this.servers = [typeof firstPort === 'number' ? `127.0.0.1:${firstPort}` : firstPort];
  }

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.conn?.close();
  }

  private connect(): void {
    if (this.stopped) return;
    const server = this.servers[this.serverIdx % this.servers.length];
    const [host, port] = [server.slice(0, server.lastIndexOf(':')), Number(server.slice(server.lastIndexOf(':') + 1))];
    const conn = this.container.connect({ host, port, reconnect: false } as rhea.ConnectionOptions);
    this.conn = conn;
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      for (const id of this.inflight) this.resend.push(id);
      this.resent += this.inflight.size;
      this.inflight.clear();
      this.serverIdx++;
      setTimeout(() => this.connect(), 50);
    };
    conn.on('connection_open', (ctx: any) => {
      this.connects++;
      const list = ctx.connection.properties?.['failover-server-list'];
      if (Array.isArray(list) && list.length > 0) {
        this.announced = list.map((e: any) => Number(e.port));
        const known = list.map((e: any) => `${e['network-host'] ?? e.hostname}:${e.port}`);
        // Try the other members first when this one goes.
        this.servers = [server, ...known.filter((k: string) => k !== server)];
        this.serverIdx = 0;
      }
      const s = conn.open_sender({ target: { address: this.address } });
      const pump = () => {
        while (s.sendable()) {
          let id: number;
          if (this.resend.length > 0) id = this.resend.shift() as number;
          else if (this.next < this.n) id = this.next++;
          else return;
          this.inflight.add(id);
          const d = s.send({ body: id, message_id: id, durable: true });
          (d as any).msgId = id;
        }
      };
      const retry = (c: any) => {
        const id = c.delivery.msgId as number;
        if (this.inflight.delete(id)) this.resend.push(id);
        pump();
      };
      s.on('sendable', pump);
      s.on('accepted', (c: any) => {
        const id = c.delivery.msgId as number;
        this.inflight.delete(id);
        this.accepted.add(id);
        this.acceptedBy.set(server, (this.acceptedBy.get(server) ?? 0) + 1);
      });
      s.on('released', retry);
      s.on('modified', retry);
      s.on('rejected', retry);
    });
    conn.on('disconnected', onLost);
    conn.on('connection_close', onLost);
    conn.on('connection_error', () => undefined);
  }
}

/** Registers and runs the contract for one backend. */
export function haContract(name: string, backend: HaBackend): void {
  const t = suite(`broker HA contract: ${name}`);
  const size = backend.members ?? 2;
  const ids = ['master', 'slave', ...Array.from({ length: Math.max(0, size - 2) }, (_, i) => `member${i + 3}`)];
  /**
   * The members of a new group, started together; `m` is the one that went live, `others` the
   * rest. Returns once `m` announces every member.
   */
  const pair = async (opts: { broker?: string } = {}): Promise<{ m: RunningBroker; others: RunningBroker[]; ports: number[] }> => {
    const g = backend.group();
    const ports: number[] = [];
    for (let i = 0; i < size; i++) ports.push(await freePort());
    const all = await Promise.all(ids.map((id, i) => startBroker(g.config(id, ports[i], opts.broker), { name: id, waitLive: false })));
    const m = await waitFor(() => all.find((b) => b.live), 20_000, 'one member to go live');
    await waitFor(async () => (await announcedBy(m.port)).length === size, 10_000, 'the live member to announce every member');
    return { m, others: all.filter((b) => b !== m), ports };
  };

  t('kill -9 of the master during 10,000 persistent sends: the slave takes over in under 2 s and every accepted message is received', async () => {
    const { m, others, ports } = await pair();
    const N = 10_000;
    const p = new FailoverProducer(N, 'ha.q', m.port);
    try {
      p.start();
      await waitFor(() => p.accepted.size >= 3000, 20_000, '3000 accepted by the master');
      const acceptedBeforeKill = p.accepted.size;
      const t0 = performance.now();
      await m.kill('SIGKILL');
      const s = await waitFor(() => others.find((o) => o.live), 10_000, 'a slave to go live');
      const takeoverMs = performance.now() - t0;
      await waitFor(() => p.accepted.size === N, 60_000, `all ${N} accepted (have ${p.accepted.size})`);
      assert.equal(p.announced.sort(), [...ports].sort(), 'the producer learnt the pair from failover-server-list');
      const c = await connect(s);
      const rx = await receiver(c, 'ha.q', { credit: 1000 });
      await waitFor(() => new Set(rx.messages.map((x) => x.body)).size >= N, 30_000, 'every message received');
      // Let any duplicates arrive too before counting them.
      const before = rx.messages.length;
      await waitFor(() => rx.messages.length === before, 500).catch(() => undefined);
      const ids = rx.messages.map((x) => x.body as number);
      const unique = new Set(ids);
      const lost = [...p.accepted].filter((id) => !unique.has(id));
      assert.equal(lost, [], 'no accepted message lost');
      const duplicates = ids.length - unique.size;
      process.stdout.write(`  HA kill -9: takeover ${takeoverMs.toFixed(0)} ms; ${acceptedBeforeKill} accepted before the kill; ${p.resent} resent after failover; ${duplicates} duplicates received\n`);
      assert.ok(takeoverMs < 2000, `takeover took ${takeoverMs.toFixed(0)} ms`);
      await c.close();
    } finally {
      p.stop();
      await m.stop();
      for (const o of others) await o.stop();
    }
  });

  t('a master frozen (SIGSTOP) past its lease: the slave takes over; resumed, the old master writes nothing and exits 3', async () => {
    const { m, others } = await pair({ broker: '    lockPollMs: 200\n    leaseMs: 1000\n' });
    try {
      const c = await connect(m);
      const sender = c.conn.open_sender({ target: { address: 'fence.q' } });
      let accepted = 0;
      sender.on('accepted', () => accepted++);
      await waitFor(() => sender.sendable(), 5000);
      for (let i = 0; i < 20; i++) sender.send({ body: `before-${i}`, durable: true });
      await waitFor(() => accepted === 20, 5000, '20 accepted by the master');
      await m.kill('SIGSTOP');
      // Sent while the master is frozen: they sit in its socket buffer.
      for (let i = 0; i < 5; i++) sender.send({ body: `frozen-${i}`, durable: true });
      const s = await waitFor(() => others.find((o) => o.live), 10_000, 'a slave takes over from the frozen master');
      const c2 = await connect(s);
      const out = c2.conn.open_sender({ target: { address: 'fence.q' } });
      let acc2 = 0;
      out.on('accepted', () => acc2++);
      await waitFor(() => out.sendable(), 5000);
      for (let i = 0; i < 5; i++) out.send({ body: `after-${i}`, durable: true });
      await waitFor(() => acc2 === 5, 5000);
      m.proc.kill('SIGCONT');
      const code = await Promise.race([m.exited, new Promise((r) => setTimeout(() => r('still running'), 5000))]);
      assert.is(code, 3, 'the resumed master steps down with exit code 3');
      assert.ok(m.log.some((l) => /stepping down/.test(l)), m.log.slice(-5).join('\n'));
      assert.is(accepted, 20, 'nothing sent to the frozen master was accepted');
      const rx = await receiver(c2, 'fence.q');
      await waitFor(() => rx.messages.length === 25, 5000, '20 + 5 messages');
      await waitFor(() => rx.messages.length > 25, 300).catch(() => undefined);
      const bodies = rx.messages.map((x) => x.body as string);
      assert.is(bodies.length, 25, bodies.join(','));
      assert.ok(bodies.every((b) => !b.startsWith('frozen')), 'nothing from the frozen master reached the store');
      await c.close().catch(() => undefined);
      await c2.close();
    } finally {
      m.proc.kill('SIGCONT');
      await m.stop();
      for (const o of others) await o.stop();
    }
  });

  t('two brokers started together on one group, 5 rounds: exactly one is live each time (100 rounds at the lock level: lock.test)', async () => {
    for (let round = 0; round < 5; round++) {
      const g = backend.group();
      const cfgs = ids.map((id) => g.config(id, 0, '    lockPollMs: 200\n'));
      const all = await Promise.all(cfgs.map((cfg, i) => startBroker(cfg, { waitLive: false, name: `r${round}-${i}` })));
      try {
        await waitFor(() => all.some((b) => b.live), 10_000, 'one live');
        await waitFor(() => all.filter((b) => b.live).length > 1, 600).catch(() => undefined);
        assert.is(all.filter((b) => b.live).length, 1, `round ${round}: exactly one live`);
      } finally {
        for (const b of all) await b.stop();
      }
    }
  });

  t.run();
}
