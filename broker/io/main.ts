/**
 * The broker process: loads the configuration, takes the store lock (waiting as the slave while
 * the other member of the pair holds it), recovers the journal, and only then listens. Loses the
 * lock → stops at once without writing anything more (fencing), so the new live broker owns the
 * store alone.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BrokerConfig, loadBrokerConfigFile, matchAddress } from '../config';
import { listenerSocketSettings } from '../../config/listener';
import { loggerFromConfig } from '../../config/logger';
import { usersFor, type Users } from '../../config/users';
import { EXIT_FENCED, exitIfCannotListen, exitOnConfigError, stopOnSignals } from '../../lib/lifecycle';
import { Logger } from '../../lib/log';
import { VERSION } from '../../lib/version';
import { normalizeAddress } from '../../amqp/address';
import { BrokerCore, AddressSettings } from '../core/broker';
import { BrokerServer, BrokerServerSettings, type BrokerListenerSettings } from './server';
import { FilePager } from './pager';
import { prepareHa } from './ha';
import { MemoryStore } from '../store/memory';
import type { Store } from '../store/types';
import type { StoreLock } from '../ha/lock';

/** Artemis's default dead-letter and expiry addresses (its stock broker.xml sets them for `#`). */
export const DEFAULT_DLA = 'DLQ';
export const DEFAULT_EXPIRY = 'ExpiryQueue';

export { EXIT_CONFIG, EXIT_FENCED, EXIT_LISTEN } from '../../lib/lifecycle';

function announceHost(host: string): string {
  return host === '' || host === '0.0.0.0' || host === '::' ? os.hostname() : host;
}

/** The server's listeners from the configuration's (TLS, WebSocket and handshake deadline in `transport`). */
export function listenerSettings(listeners: BrokerConfig['listeners']): BrokerListenerSettings[] {
  // Name, address, SASL, limits and transport, as the router's listeners.
  return listeners.map((l, i) => listenerSocketSettings(l, i));
}

/** Runs a broker from a loaded configuration until it is stopped or fenced. */
export async function runBroker(cfg: BrokerConfig, logger: Logger, users?: Users): Promise<void> {
  const b = cfg.broker;
  const persistent = b.persistent && b.dataDir !== undefined;
  const dataDir = b.dataDir;
  const first = cfg.listeners[0];
  const ha = persistent && dataDir ? await prepareHa(b, logger) : null;
  const members = ha?.members ?? null;
  const announce = async (port: number) => {
    try {
      await members?.announce({ id: b.id, host: announceHost(first.host), port });
    } catch (e) {
      logger.log('BROKER', 'warning', `Broker ${b.id}: could not announce its endpoint to the group: ${(e as Error).message}`);
    }
  };
  if (ha && dataDir) {
    fs.mkdirSync(dataDir, { recursive: true });
    if (first && first.port > 0) await announce(first.port);
  }

  const lock: StoreLock | null = ha?.lock ?? null;
  if (ha) {
    logger.log('BROKER', 'notice', `Broker ${b.id}: waiting for the store lock in ${ha.where} (slave until it is free)`);
    const t0 = Date.now();
    const token = await ha.lock.acquire();
    logger.log('BROKER', 'notice', `Broker ${b.id}: holds the store lock (fencing token ${token}) after ${Date.now() - t0} ms; live`);
  }
  const store: Store = ha ? await ha.openStore() : new MemoryStore();

  const resolveSettings = (address: string): AddressSettings => {
    const s = matchAddress(cfg.addresses, normalizeAddress(address));
    return {
      multicast: s.routingType === 'multicast',
      maxDeliveryAttempts: s.maxDeliveryAttempts,
      deadLetterAddress: s.deadLetterAddress ?? DEFAULT_DLA,
      expiryAddress: s.expiryAddress ?? DEFAULT_EXPIRY,
      maxSizeBytes: s.maxSizeBytes,
      addressFullPolicy: s.addressFullPolicy,
      autoCreate: s.autoCreate,
    };
  };

  const serverSettings: BrokerServerSettings = {
    id: b.id,
    listeners: listenerSettings(cfg.listeners),
    maxMessageSize: b.maxMessageSize,
    maxAddressLength: 4096,
    users,
    policy: cfg.policy,
    linkCredit: 1000,
    failoverServers: () => members?.list() ?? [],
  };

  const server = new BrokerServer(serverSettings, logger);
  // Bodies the journal does not hold spill here once the page cache is full (not kept across restarts).
  const pager = new FilePager(dataDir ? path.join(dataDir, 'paging', `${b.id}.page`) : path.join(os.tmpdir(), `amqp-mesh-${b.id}-${process.pid}.page`));
  const core = new BrokerCore(store, server, { pageCacheBytes: b.pageCacheBytes, resolveSettings, pager, persistent });
  server.core = core;

  const stepDown = (why: string) => {
    logger.log('BROKER', 'critical', `Broker ${b.id}: ${why}; stepping down without writing anything more`);
    server.abort();
    process.exit(EXIT_FENCED);
  };
  lock?.onLost((reason) => stepDown(`lost the store lock (${reason})`));
  server.onStoreFailure = (e) => stepDown(`store write refused: ${e.message}`);

  const t0 = Date.now();
  const rec = store.recover();
  // Recovery blocks the event loop (renewals included): renew at once so the lease counts from now.
  (lock as { renewNow?: () => void } | null)?.renewNow?.();
  core.recover(rec, Date.now());
  for (const q of cfg.queues) core.declareQueue(q.name, q.address, q.routingType === 'multicast', q.durable);
  let messages = 0;
  for (const q of core.queues.values()) messages += q.depth;
  logger.log('BROKER', 'notice', `Recovered ${core.queues.size} queues and ${messages} messages in ${Date.now() - t0} ms${rec.truncated ? `; truncated a torn journal tail in ${rec.truncated.file} at ${rec.truncated.offset} (${rec.truncated.droppedBytes} bytes: ${rec.truncated.reason})` : ''}`);

  await exitIfCannotListen(() => server.start());
  if (persistent && dataDir && first) await announce(server.bound[0].port);
  logger.log('BROKER', 'notice', `Broker ${b.id} ready, amqp-mesh broker ${VERSION}`);

  stopOnSignals(logger, 'BROKER', () => server
    .stop()
    .then(() => store.close())
    .then(() => pager.close())
    .then(() => lock?.release())
    .then(() => members?.close())
    .then(() => ha?.close()));
  // SIGUSR2: memory figures (after a full GC when node runs with --expose-gc), for operators and tests.
  process.on('SIGUSR2', async () => {
    // Array buffer memory is released after the collection that finds it dead (on a later turn):
    // collect, let it go, collect again, then measure.
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc) {
      gc();
      await new Promise((r) => setTimeout(r, 50));
      gc();
    }
    const m = process.memoryUsage();
    const mb = (n: number) => (n / 1048576).toFixed(1);
    logger.log('BROKER', 'notice', `memory: rss ${mb(m.rss)} MB, heap used ${mb(m.heapUsed)} MB, array buffers ${mb(m.arrayBuffers)} MB, cached bodies ${mb(core.cached)} MB, evicted ${core.stats.evicted}, paged ${core.stats.paged}`);
  });
}

/** Runs a broker from its configuration file (the `amqp-mesh broker -c FILE` command). */
export async function runBrokerFile(file: string): Promise<void> {
  const cfg: BrokerConfig = exitOnConfigError(() => loadBrokerConfigFile(file));
  const logger = loggerFromConfig(cfg.logs);
  for (const w of cfg.warnings) logger.log('BROKER', 'warning', w.message);
  const users = exitOnConfigError(() => usersFor(cfg.broker, cfg.listeners, 'broker'));
  for (const w of users?.warnings ?? []) logger.log('BROKER', 'warning', w);
  await runBroker(cfg, logger, users);
}
