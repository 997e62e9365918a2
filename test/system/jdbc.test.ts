// haPolicy jdbc: the store and the lock in PostgreSQL (a private server started here, see
// test/support/postgres.ts).
//
//   PgStore ──┐
//             ├── PostgreSQL (127.0.0.1, port from the OS)
//   PgLeaseLock a, b ──┘
//
// The Store contract (every store passes it) and the StoreLock contract (every lock passes it)
// on PostgreSQL; then the same broker HA contract as shared-store pairs, with real broker
// processes (test/support/ha-contract.ts).
// @runs-alone: the HA contract asserts takeover times.
import { performance } from 'node:perf_hooks';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PgLeaseLock } from '../../broker/io/pg-lock';
import { PgStore } from '../../broker/store/pg';
import type { StoreLock } from '../../broker/ha/lock';
import { FencedError, StoreOptions } from '../../broker/store/types';
import { brokerConfig, tempDir } from '../support/broker';
import { haContract } from '../support/ha-contract';
import { lockContract, LockPair } from '../support/lock-contract';
import { RunningPostgres, startPostgres } from '../support/postgres';
import { storeContract, synced } from '../support/store-contract';

const TIMING = { pollMs: 20, leaseMs: 400, renewMs: 50 };

async function main(): Promise<void> {
  const pg: RunningPostgres = await startPostgres();
  let groups = 0;

  // Each open() is a fresh group; each open or reopen claims the group's next token, so a store
  // left behind by a simulated crash can commit nothing more.
  let group = '';
  const openStore = async (opts?: StoreOptions) => {
    await pg.sql("INSERT INTO amqp_mesh_lease VALUES ($1, 0, 'contract', 'infinity', false) ON CONFLICT (grp) DO NOTHING", [group]).catch(async () => {
      // The tables are made by the first store; create them, then retry.
      const s = await PgStore.open({ url: pg.url, group: 'schema' });
      await s.close();
      await pg.sql("INSERT INTO amqp_mesh_lease VALUES ($1, 0, 'contract', 'infinity', false) ON CONFLICT (grp) DO NOTHING", [group]);
    });
    const [row] = await pg.sql('UPDATE amqp_mesh_lease SET token = token + 1 WHERE grp = $1 RETURNING token', [group]);
    const token = Number(row.token);
    return PgStore.open({ ...opts, url: pg.url, group, token: () => token });
  };
  storeContract('PgStore', {
    open: (opts) => {
      group = `contract-${++groups}`;
      return openStore(opts);
    },
    reopen: (opts) => openStore(opts),
    cleanup: () => undefined,
  });

  const hooks = new Map<StoreLock, { offset: number; polls: number }>();
  lockContract('PgLeaseLock', (): LockPair => {
    const g = `lock-${++groups}`;
    const make = () => {
      const h = { offset: 0, polls: 0 };
      const l = new PgLeaseLock({ ...TIMING, url: pg.url, group: g, clock: () => performance.now() + h.offset, onPoll: () => h.polls++ });
      hooks.set(l, h);
      return l;
    };
    const a = make();
    const b = make();
    return {
      a, b, ...TIMING,
      polls: (l) => hooks.get(l)!.polls,
      freeze: (l, ms) => (hooks.get(l)!.offset += ms),
      intrude: async (token) => {
        await pg.sql("UPDATE amqp_mesh_lease SET token = $2, holder = 'intruder', released = false, expires_at = clock_timestamp() + $3 * interval '1 millisecond' WHERE grp = $1", [g, token, TIMING.leaseMs]);
      },
      cleanup: async () => {
        await a.release();
        await b.release();
      },
    };
  });

  haContract('jdbc', {
    group() {
      const g = `ha-${++groups}`;
      return {
        config: (id, port, broker) => brokerConfig(tempDir(), {
          id, port, broker: `    haPolicy: jdbc\n    haGroup: ${g}\n    jdbcUrl: ${pg.url}\n${broker ?? ''}`,
        }),
      };
    },
  });

  const fence = suite('jdbc: the database fences a stale live');
  fence('a store whose lease token was claimed by another member commits nothing more, even with its own fence silent', async () => {
    const g = `fence-${++groups}`;
    const a = new PgLeaseLock({ ...TIMING, url: pg.url, group: g });
    const token = await a.acquire();
    // The store's own fence is silent: only the database check stands between it and the table.
    const store = await PgStore.open({ url: pg.url, group: g, token: () => token });
    store.recover();
    store.createQueue('q', {});
    store.addMessage(1, Buffer.from('before'));
    store.addRef('q', 1);
    await synced(store);
    // Another member claims the next token (as after a lapse it did not notice yet).
    await pg.sql('UPDATE amqp_mesh_lease SET token = token + 1 WHERE grp = $1', [g]);
    store.addMessage(2, Buffer.from('after'));
    store.addRef('q', 2);
    const err = await new Promise<Error | null>((resolve) => store.sync(resolve));
    assert.instance(err, FencedError);
    assert.match((err as Error).message, /no longer holds the lease/);
    const rows = await pg.sql('SELECT id FROM amqp_mesh_message WHERE grp = $1 ORDER BY id', [g]);
    assert.equal(rows.map((r) => Number(r.id)), [1], 'only what was committed under the lease');
    await store.close();
    await a.release();
  });
  fence.run();

  const last = suite('jdbc: the database');
  last('the server is still up after the contracts', async () => {
    const [r] = await pg.sql('SELECT count(*)::int AS n FROM amqp_mesh_lease');
    assert.ok((r.n as number) > 0);
  });
  last.after(() => pg.stop());
  last.run();
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
