// haPolicy replication: groups of three brokers, each with its own dataDir, coordinated by a
// private ZooKeeper started here (test/support/zookeeper.ts).
//
//              ZooKeeper (127.0.0.1, port from the OS)
//             /          |          \
//   [member A: live] --stream--> [member B] , [member C]   (each: own journal in its own dataDir)
//        ^ clients (failover-server-list names all three)
//
// The broker HA contract (test/support/ha-contract.ts) on a group of three, then what only
// replication has: catching up a member restarted empty, and rounds of killing whoever is live.
// @runs-alone: the HA contract asserts takeover times; 20 rounds of kill -9 under load.
import * as fs from 'node:fs';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FrameType, encodeJsonFrame } from '../../broker/ha/replication';
import { RunningBroker, brokerConfig, freePort, startBroker, tempDir } from '../support/broker';
import { FailoverProducer, announcedBy, haContract } from '../support/ha-contract';
import { waitFor } from '../support/wait';
import { connect, numbered, receiver, sendAll } from './broker-helpers';
import { RunningZookeeper, startZookeeper } from '../support/zookeeper';

/** Writes `bytes` to 127.0.0.1:port and returns whatever comes back before the peer closes (2 s at most). */
function rawExchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (d) => got.push(d));
    sock.on('close', () => resolve(Buffer.concat(got)));
    sock.on('error', () => undefined);
    sock.setTimeout(2000, () => sock.destroy());
  });
}

async function main(): Promise<void> {
  const zk: RunningZookeeper = await startZookeeper();
  let groups = 0;
  const replicated = (g: string, extra = '') => `    haPolicy: replication\n    haGroup: ${g}\n    zookeeper: ${zk.connect}\n    groupSize: 3\n${extra}`;

  haContract('replication (3 members)', {
    members: 3,
    group() {
      const g = `ha-${++groups}`;
      return { config: (id, port, broker) => brokerConfig(tempDir(), { id, port, broker: replicated(g, broker) }) };
    },
  });

  /** One group of three members, each with its own dataDir; members can be killed, wiped and restarted. */
  class Group {
    readonly name = `grp-${++groups}`;
    readonly dirs = new Map<string, string>();
    readonly ports = new Map<string, number>();
    readonly procs = new Map<string, RunningBroker>();
    constructor(readonly ids = ['a', 'b', 'c']) {}

    async start(): Promise<RunningBroker> {
      for (const id of this.ids) {
        this.dirs.set(id, tempDir());
        this.ports.set(id, await freePort());
      }
      await Promise.all(this.ids.map((id) => this.startMember(id)));
      const live = await this.waitLive();
      // Clients learn the group from failover-server-list: wait until it names every member.
      await waitFor(async () => (await announcedBy(live.port)).length === this.ids.length, 10_000, 'the live member to announce the group');
      return live;
    }

    async startMember(id: string, opts: { wipe?: boolean } = {}): Promise<RunningBroker> {
      const dir = this.dirs.get(id) as string;
      if (opts.wipe) fs.rmSync(dir, { recursive: true, force: true });
      const b = await startBroker(brokerConfig(dir, { id, port: this.ports.get(id), broker: replicated(this.name) }), { name: `${this.name}/${id}`, waitLive: false });
      this.procs.set(id, b);
      return b;
    }

    live(): RunningBroker | undefined {
      return [...this.procs.values()].find((b) => b.live && b.exitCode === undefined);
    }

    idOf(b: RunningBroker): string {
      return [...this.procs].find(([, p]) => p === b)?.[0] as string;
    }

    waitLive(except?: RunningBroker, ms = 15_000): Promise<RunningBroker> {
      return waitFor(() => {
        const l = this.live();
        return l !== except ? l : undefined;
      }, ms, `a live member of ${this.name}`);
    }

    async stop(): Promise<void> {
      for (const b of this.procs.values()) await b.stop();
    }
  }

  /** Runs `body` on a fresh group of three, and stops every member after it, whatever happened. */
  async function withGroup(body: (g: Group) => Promise<void>): Promise<void> {
    const g = new Group();
    try {
      await body(g);
    } finally {
      await g.stop();
    }
  }

  const only = suite('replication: what a replicated group adds');

  only('a member restarted empty catches up from the live (snapshot, then the tail) and can then take over; a stale member is not elected', () => withGroup(async (g) => {
    const l = await g.start();
    const [f1, f2] = g.ids.filter((id) => id !== g.idOf(l));
    let c = await connect(l);
    assert.equal(new Set(await sendAll(c, 'catch.q', numbered(200, 'm'))), new Set(['accepted']));
    // f2 loses its disk and comes back empty; then f1 goes: only f2 can make a quorum with the live.
    await g.procs.get(f2)!.kill('SIGKILL');
    await g.startMember(f2, { wipe: true });
    await g.procs.get(f1)!.kill('SIGKILL');
    assert.equal(new Set(await sendAll(c, 'catch.q', numbered(100, 'n'), 20_000)), new Set(['accepted']), 'accepted with the live and the caught-up member as the quorum');
    await c.close();
    // The live goes; f1 returns with what it had before (no n messages): f2 must win.
    await l.kill('SIGKILL');
    await g.startMember(f1);
    const next = await g.waitLive(l);
    assert.is(g.idOf(next), f2, `the most advanced member is elected, not ${g.idOf(next)}`);
    c = await connect(next);
    const rx = await receiver(c, 'catch.q', { credit: 500 });
    await waitFor(() => rx.messages.length >= 300, 10_000, 'every accepted message from the new live');
    const got = new Set(rx.messages.map((m) => m.body as string));
    for (let i = 0; i < 200; i++) assert.ok(got.has(`m${i}`), `m${i}`);
    for (let i = 0; i < 100; i++) assert.ok(got.has(`n${i}`), `n${i}`);
    await c.close();
  }));

  only('acknowledgements and dead-lettering replicate: after a failover the new live holds only what was not consumed; strangers on the replication port are refused', () => withGroup(async (g) => {
    const l = await g.start();
    let c = await connect(l);
    assert.equal(new Set(await sendAll(c, 'acks.q', numbered(100, 'a'))), new Set(['accepted']));
    let accepted = 0;
    // 60 accepted; whatever else arrives stays unsettled and goes back when the link closes.
    const rx = await receiver(c, 'acks.q', { credit: 60, settle: () => (accepted++ < 60 ? 'accept' : 'none') });
    await waitFor(() => rx.messages.length >= 60, 5000, '60 delivered and accepted');
    await rx.close();
    // A rejected message moves to the dead-letter address: that move replicates too.
    assert.equal(await sendAll(c, 'dead.q', numbered(1, 'd')), ['accepted']);
    const dead = await receiver(c, 'dead.q', { credit: 1, settle: () => 'reject' });
    await waitFor(() => dead.messages.length === 1, 5000, 'the message to reject');
    await dead.close();
    // The stream is ordered: once a later durable message is accepted, a quorum has the acks.
    assert.equal(await sendAll(c, 'marker.q', numbered(1, 'z')), ['accepted']);
    await c.close();

    // A stranger on the live's replication port: garbage is dropped, a Hello of another group refused.
    const port = Number(l.log.map((x) => x.match(/replication listener on [^\s]+:(\d+)/)?.[1]).find(Boolean));
    const garbage = await rawExchange(port, Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    assert.is(garbage.length, 0, 'garbage: closed without an answer');
    const refused = await rawExchange(port, encodeJsonFrame(FrameType.Hello, { group: 'other', id: 'x', epoch: 1 }));
    assert.is(refused[4], FrameType.Refuse);
    assert.match(refused.subarray(5).toString('utf8'), /this member serves group grp-\d+, not other/);

    await l.kill('SIGKILL');
    const next = await g.waitLive(l);
    c = await connect(next);
    const rest = await receiver(c, 'acks.q', { credit: 200 });
    await waitFor(() => rest.messages.length >= 40, 10_000, 'the 40 not consumed');
    await waitFor(() => rest.messages.length > 40, 500).catch(() => undefined);
    const firstAccepted = new Set(rx.messages.slice(0, 60).map((m) => m.body as string));
    const left = rest.messages.map((m) => m.body as string);
    assert.is(left.length, 40, left.join(','));
    assert.ok(left.every((b) => !firstAccepted.has(b)), 'nothing acknowledged before the failover comes back');
    const dlq = await receiver(c, 'DLQ', { credit: 10 });
    await waitFor(() => dlq.messages.length >= 1, 10_000, 'the dead-lettered message on the new live');
    assert.equal(dlq.messages.map((m) => m.body), ['d0']);
    const back = await receiver(c, 'dead.q', { credit: 10 });
    await waitFor(() => back.messages.length > 0, 500).catch(() => undefined);
    assert.is(back.messages.length, 0, 'the rejected message is not back on its queue');
    await c.close();
  }));

  only('with fewer than a quorum alive durable sends are refused (amqp:resource-limit-exceeded, never accepted), and accepted again once a member is back', () => withGroup(async (g) => {
    const l = await g.start();
    const followers = g.ids.filter((id) => id !== g.idOf(l));
    for (const id of followers) await g.procs.get(id)!.kill('SIGKILL');
    const c = await connect(l);
    // The live sees its followers' connections close at once; it waits for them for leaseMs
    // (a sync meanwhile gets no outcome), then refuses.
    const early = c.conn.open_sender({ target: { address: 'quorum.q' } });
    const earlyOutcomes: string[] = [];
    for (const ev of ['accepted', 'released', 'modified', 'rejected']) early.on(ev as never, () => earlyOutcomes.push(ev));
    await waitFor(() => early.sendable(), 5000, 'credit');
    early.send({ body: 'early', durable: true });
    const outcomes = await waitFor(async () => {
      // Within the grace period these are held (no outcome): try again until they are refused.
      const o = await sendAll(c, 'quorum.q', numbered(5, 'q'), 1000).catch(() => [] as string[]);
      return o.length > 0 && o.every((x) => x.startsWith('rejected')) ? o : undefined;
    }, 15_000, 'durable sends refused without a quorum');
    assert.is(earlyOutcomes.includes('accepted'), false, 'nothing accepted without a quorum');
    assert.equal(new Set(outcomes), new Set(['rejected:amqp:resource-limit-exceeded']));
    // A non-durable message needs no quorum.
    assert.equal(await sendAll(c, 'quorum.q', [{ body: 'transient', durable: false }]), ['accepted']);
    await g.startMember(followers[0]);
    await waitFor(async () => (await sendAll(c, 'quorum.q', numbered(1, 'back')))[0] === 'accepted', 20_000, 'durable sends accepted once the quorum is back');
    await waitFor(() => earlyOutcomes.length === 1, 10_000, 'the message held without a quorum completes');
    assert.equal(earlyOutcomes, ['accepted']);
    await c.close();
  }));

  only('20 rounds of kill -9 of whichever member is live, during persistent sends: nothing accepted is lost', async () => {
    const g = new Group();
    const N = 20_000;
    let p: FailoverProducer | null = null;
    try {
      let l = await g.start();
      p = new FailoverProducer(N, 'rounds.q', l.port);
      p.start();
      const takeovers: number[] = [];
      for (let round = 0; round < 20; round++) {
        const target = Math.min(N, p.accepted.size + 300);
        await waitFor(() => p!.accepted.size >= target || p!.accepted.size === N, 30_000, `round ${round}: ${target} accepted`);
        const id = g.idOf(l);
        const t0 = performance.now();
        await l.kill('SIGKILL');
        const next = await g.waitLive(l);
        takeovers.push(performance.now() - t0);
        await g.startMember(id);
        l = next;
      }
      await waitFor(() => p!.accepted.size === N, 60_000, `all ${N} accepted (have ${p.accepted.size})`);
      const c = await connect(l);
      const rx = await receiver(c, 'rounds.q', { credit: 2000 });
      await waitFor(() => new Set(rx.messages.map((m) => m.body)).size >= N, 60_000, 'every message received');
      const ids = new Set(rx.messages.map((m) => m.body as number));
      assert.equal([...p.accepted].filter((id) => !ids.has(id)), [], 'no accepted message lost');
      takeovers.sort((a, b) => a - b);
      process.stdout.write(`  replication, 20 kill -9 rounds: takeover median ${takeovers[10].toFixed(0)} ms, max ${takeovers[19].toFixed(0)} ms; ${p.resent} resent; ${rx.messages.length - ids.size} duplicates\n`);
      await c.close();
    } finally {
      p?.stop();
      await g.stop();
    }
  });
  only.run();

  const last = suite('replication: ZooKeeper');
  last('the server is still up after the tests', () => {
    assert.ok(zk.pid > 0);
  });
  last.after(() => zk.stop());
  last.run();
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
