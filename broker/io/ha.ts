/**
 * What each haPolicy puts under the broker: where members announce themselves, the lock that
 * makes one member live, and the store it writes once live. The process (main.ts) runs the same
 * steps whatever the policy: announce, acquire, open the store, recover, listen.
 *
 * - shared-store: the file lease lock and the journal in one dataDir both members reach.
 * - jdbc: lease row, store and member list in PostgreSQL (docs/decisions/0011-broker-jdbc.md).
 * - replication: ZooKeeper elects; each member keeps its own journal, the live streams to the
 *   others (docs/decisions/0012-broker-replication.md).
 */
import * as net from 'node:net';
import * as path from 'node:path';
import type { BrokerEntity } from '../config';
import type { StoreLock } from '../ha/lock';
import { Logger } from '../../lib/log';
import { JournalStore } from '../store/journal';
import { PgStore } from '../store/pg';
import { redact } from '../store/pg-schema';
import type { Store } from '../store/types';
import { FileLeaseLock } from './file-lock';
import { FileMembers, MemberDirectory, PgMembers } from './members';
import { FilePager } from './pager';
import { PgLeaseLock } from './pg-lock';
import { ReplicaFollower } from './replica-follower';
import { ReplicatedStore, acceptFollower } from './replicated-store';
import { ZkElection } from './zk-election';

/** A persistent broker's high-availability parts. */
export interface HaParts {
  members: MemberDirectory;
  lock: StoreLock;
  /** Where the lock lives, for the log. */
  where: string;
  /** The store, once `lock` is held. */
  openStore(): Promise<Store>;
  /** Frees what the policy holds besides the lock and members (the replication listener). */
  close(): Promise<void>;
}

type Level = 'error' | 'warning' | 'info' | 'debug';

/** Builds the parts of `b.haPolicy` (b.dataDir set: the broker is persistent). */
export async function prepareHa(b: BrokerEntity, logger: Logger): Promise<HaParts> {
  const dataDir = b.dataDir as string;
  const storeLog = (level: Level, msg: string) => logger.log('STORE', level, msg);
  const haLog = (level: Level, msg: string) => logger.log('BROKER', level, msg);
  if (b.haPolicy === 'jdbc') {
    const url = b.jdbcUrl as string;
    const group = b.haGroup as string;
    const lock = new PgLeaseLock({ url, group, pollMs: b.lockPollMs, leaseMs: b.leaseMs, owner: { id: b.id }, log: haLog });
    return {
      members: new PgMembers(url, group, (m) => logger.log('BROKER', 'warning', m)),
      lock,
      where: `group ${group} in ${redact(url)}`,
      openStore: () => PgStore.open({
        url,
        group,
        token: () => lock.token,
        fence: () => lock.checkFence(),
        bodies: new FilePager(path.join(dataDir, 'jdbc', `${b.id}.bodies`)),
        log: storeLog,
      }),
      close: async () => undefined,
    };
  }
  if (b.haPolicy === 'replication') return prepareReplication(b, logger, haLog, storeLog);
  const lock = new FileLeaseLock({ dir: dataDir, pollMs: b.lockPollMs, leaseMs: b.leaseMs, owner: { id: b.id } });
  return {
    members: new FileMembers(dataDir),
    lock,
    where: dataDir,
    openStore: async () => new JournalStore(dataDir, { fence: () => lock.checkFence(), log: storeLog, compactMinBytes: b.journalCompactMinBytes }),
    close: async () => undefined,
  };
}

async function prepareReplication(b: BrokerEntity, logger: Logger, haLog: (l: Level, m: string) => void, storeLog: (l: Level, m: string) => void): Promise<HaParts> {
  const group = b.haGroup as string;
  const follower = new ReplicaFollower({ dir: path.join(b.dataDir as string, 'replica'), group, id: b.id, log: haLog, journal: { compactMinBytes: b.journalCompactMinBytes } });
  let live: ReplicatedStore | null = null;
  let election: ZkElection | null = null;
  // Every member listens for replication; only the live one takes followers.
  const server = net.createServer((socket) => acceptFollower(socket, (h) => {
    if (h.group !== group) return `this member serves group ${group}, not ${h.group}`;
    const epoch = election?.token ?? 0;
    if (live === null || epoch === 0) return 'not the live member';
    if (h.epoch !== epoch) return `epoch ${h.epoch} is not the live epoch ${epoch}`;
    return null;
  }, (h, socket) => live?.attach(h.id, socket)));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(b.replicationPort, b.replicationHost, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const repl = `${b.replicationHost.includes(':') ? `[${b.replicationHost}]` : b.replicationHost}:${port}`;
  logger.log('BROKER', 'notice', `Broker ${b.id}: replication listener on ${repl}; position ${follower.position.epoch}/${follower.position.seq}`);
  election = new ZkElection({
    connect: b.zookeeper as string,
    group,
    id: b.id,
    groupSize: b.groupSize,
    sessionTimeoutMs: b.leaseMs,
    repl,
    follower,
    log: haLog,
  });
  const lock = election;
  return {
    members: election,
    lock,
    where: `group ${group} (${b.groupSize} members, ZooKeeper ${b.zookeeper})`,
    openStore: async () => {
      const position = follower.position;
      const dir = await follower.close();
      const inner = new JournalStore(dir, { fence: () => lock.checkFence(), log: storeLog, compactMinBytes: b.journalCompactMinBytes });
      live = new ReplicatedStore(inner, { epoch: lock.token, position, groupSize: b.groupSize, graceMs: b.leaseMs, log: haLog });
      return live;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
