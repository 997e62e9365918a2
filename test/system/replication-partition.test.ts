// haPolicy replication across a network partition, with hosts in network namespaces (root only;
// test/support/netns.ts):
//
//                     the test (producer, consumer)  .100
//                                  |
//   [lan br0] --+-- n1: member m1 (.1) --+-- n2: member m2 (.2) --+-- n3: member m3 (.3)
//               +-- n4: ZooKeeper (.4)
//
// The live member is cut off from the other members and from ZooKeeper (blackhole routes in its
// namespace); the test still reaches it, as its own clients would. It must accept nothing more,
// step down (exit 3) once its ZooKeeper session may have expired, and close its clients'
// connections so that their unsettled work goes elsewhere; the others elect a new live that has
// every accepted message. Healed, the old live rejoins as a follower.
// @runs-alone: network namespaces and lease timing.
import { performance } from 'node:perf_hooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RunningBroker, startBroker, tempDir } from '../support/broker';
import { FailoverProducer } from '../support/ha-contract';
import { createLan, netnsAvailable } from '../support/netns';
import { waitFor } from '../support/wait';
import { startZookeeper, zookeeperInstalled } from '../support/zookeeper';
import { receiver } from './broker-helpers';
import { rheaConnect } from './helpers';

const LEASE_MS = 1500;

function memberConfig(dataDir: string, i: number, addr: string, zk: string): string {
  return `broker {\n    id: m${i}\n    dataDir: ${dataDir}\n    haPolicy: replication\n    haGroup: part\n    zookeeper: ${zk}\n    groupSize: 3\n` +
    `    leaseMs: ${LEASE_MS}\n    lockPollMs: 200\n    replicationHost: ${addr}\n    replicationPort: 5673\n}\n` +
    `listener {\n    host: ${addr}\n    port: 5672\n    saslMechanisms: ANONYMOUS\n}\n`;
}

if (!netnsAvailable() || !zookeeperInstalled()) {
  process.stdout.write(`replication-partition: not run here (${!netnsAvailable() ? 'needs root and iproute2 for network namespaces' : 'ZooKeeper not installed'})\n`);
} else {
  test('a live member cut off from the group by a partition accepts nothing more, steps down, and loses nothing accepted', async () => {
    const lan = createLan(4);
    const members: RunningBroker[] = [];
    const dirs = [1, 2, 3].map(() => tempDir());
    let zk: Awaited<ReturnType<typeof startZookeeper>> | null = null;
    let p: FailoverProducer | null = null;
    try {
      zk = await startZookeeper({ host: lan.addr(4), netns: lan.ns(4) });
      const connectString = zk.connect;
      const start = (i: number) => startBroker(memberConfig(dirs[i - 1], i, lan.addr(i), connectString), { name: `m${i}`, netns: lan.ns(i), waitLive: false });
      for (const i of [1, 2, 3]) members[i] = await start(i);
      const live = await waitFor(() => [1, 2, 3].find((i) => members[i].live), 20_000, 'a live member');
      const others = [1, 2, 3].filter((i) => i !== live);
      const server = `${lan.addr(live)}:5672`;
      // The producer learns the group from failover-server-list (every member's address).
      await waitFor(async () => {
        const c = await rheaConnect({ port: 5672 }, 0, { host: lan.addr(live) });
        const list = (c.conn as unknown as { properties?: Record<string, unknown> }).properties?.['failover-server-list'];
        await c.close();
        return Array.isArray(list) && list.length === 3;
      }, 10_000, 'the live member to announce the group');
      const N = 3000;
      p = new FailoverProducer(N, 'part.q', server);
      p.start();
      await waitFor(() => p!.accepted.size >= 500, 20_000, '500 accepted before the partition');

      lan.cut(live, [...others, 4]);
      const t0 = performance.now();
      // What was on its way before the cut settles within a moment; after that the cut-off
      // member has no quorum and must not accept anything.
      await waitFor(() => false, 300).catch(() => undefined);
      const acceptedByOldLive = p.acceptedBy.get(server) ?? 0;
      const code = await Promise.race([members[live].exited, new Promise((r) => setTimeout(() => r('still running'), 4 * LEASE_MS + 5000))]);
      const stepDownMs = performance.now() - t0;
      assert.is(code, 3, 'the cut-off live steps down with exit code 3 (fenced)');
      assert.ok(members[live].log.some((l) => /stepping down/.test(l)), members[live].log.slice(-5).join('\n'));
      const next = await waitFor(() => others.find((i) => members[i].live), 15_000, 'a new live member');
      const takeoverMs = performance.now() - t0;
      await waitFor(() => p!.accepted.size === N, 60_000, `all ${N} accepted (have ${p.accepted.size})`);
      assert.is(p.acceptedBy.get(server) ?? 0, acceptedByOldLive, 'the cut-off member accepted nothing after the partition');

      // Healed, the old live comes back as a follower of the new one.
      lan.heal(live, [...others, 4]);
      members[live] = await start(live);
      const c = await rheaConnect({ port: 5672 }, 0, { host: lan.addr(next) });
      const rx = await receiver(c, 'part.q', { credit: 1000 });
      await waitFor(() => new Set(rx.messages.map((m) => m.body)).size >= N, 30_000, 'every message from the new live');
      const got = new Set(rx.messages.map((m) => m.body as number));
      assert.equal([...p.accepted].filter((id) => !got.has(id)), [], 'no accepted message lost');
      assert.is(members[live].live, false, 'the healed member follows; it does not go live');
      process.stdout.write(`  partition: the cut-off live stepped down after ${stepDownMs.toFixed(0)} ms, new live after ${takeoverMs.toFixed(0)} ms (session timeout ${LEASE_MS} ms); ${acceptedByOldLive} accepted by it before the cut; ${p.resent} resent\n`);
      await c.close();
    } finally {
      p?.stop();
      for (const m of members) if (m) await m.stop();
      await zk?.stop();
      lan.remove();
    }
  });

  test.run();
}
