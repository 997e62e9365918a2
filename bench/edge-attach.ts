/**
 * Attach latency at an edge router against the same attach at its interior. Before an edge
 * serves a client's attach that no route of its own serves, it asks the interior whether a link
 * route serves the address (`_$qd.addr_lookup`, one round trip, as qdrouterd's edges do); this
 * prints what that costs.
 *
 *   rhea --attach--> [interior I]                               (baseline)
 *   rhea --attach--> [edge E] --lookup over the uplink--> [I]   (what an edge's client sees)
 *
 * Receivers on new mobile addresses, one attach at a time (attach sent -> attach answered), on
 * one connection each. Figures only; nothing asserted.
 */
import rhea from 'rhea';
import type { Connection } from 'rhea';
import { QUIET_LOG, startRouterProcess, until, type RouterProcess } from './router-proc';
import { percentile } from './rhea-perf';

/** One connection's attach round trips, in microseconds, sorted. */
async function attachTimes(port: number, n: number, tag: string): Promise<Float64Array> {
  const conn: Connection = rhea.create_container({ id: `bench-edge-attach-${tag}` }).connect({ host: '127.0.0.1', port, reconnect: false });
  await new Promise<void>((resolve, reject) => {
    conn.once('connection_open', () => resolve());
    conn.once('connection_error', () => reject(new Error(`connection to ${port} refused`)));
    conn.once('disconnected', () => reject(new Error(`connection to ${port} lost`)));
  });
  const times = new Float64Array(n);
  try {
    for (let i = 0; i < n; i++) {
      const address = `bench.edge.${tag}.${i}`;
      const started = process.hrtime.bigint();
      const link = conn.open_receiver({ source: { address }, credit_window: 0 });
      await new Promise<void>((resolve) => link.once('receiver_open', () => resolve()));
      times[i] = Number(process.hrtime.bigint() - started) / 1000;
      link.close();
    }
  } finally {
    conn.close();
  }
  return times.sort();
}

function line(what: string, t: Float64Array): string {
  return `${what}: p50 ${(percentile(t, 50) / 1000).toFixed(2)} ms, p99 ${(percentile(t, 99) / 1000).toFixed(2)} ms (${t.length} attaches)`;
}

/** Prints the attach latency of `n` receivers at the interior and `n` at the edge. */
export async function benchEdgeAttach(n: number): Promise<void> {
  let interior: RouterProcess | null = null;
  let edge: RouterProcess | null = null;
  try {
    interior = await startRouterProcess({
      config: 'router {\n  mode: interior\n  id: I\n}\n' +
        'listener {\n  name: client\n  host: 127.0.0.1\n  port: 0\n}\nlistener {\n  name: edge\n  host: 127.0.0.1\n  port: 0\n  role: edge\n}\n' + QUIET_LOG,
      listeners: ['client', 'edge'],
    });
    edge = await startRouterProcess({
      config: 'router {\n  mode: edge\n  id: E\n}\nlistener {\n  name: client\n  host: 127.0.0.1\n  port: 0\n}\n' +
        `connector {\n  name: uplink\n  host: 127.0.0.1\n  port: ${interior.ports.edge}\n  role: edge\n}\n` + QUIET_LOG +
        'log {\n  module: ROUTER\n  enable: info+\n}\n',
      listeners: ['client'],
    });
    const e = edge;
    await until(() => e.log.some((l) => l.includes('edge: active edge connection')), 10_000, 'the edge to connect to its interior');
    // Warm both processes (JIT, first lookups) before measuring.
    await attachTimes(interior.ports.client, 50, 'warm-i');
    await attachTimes(edge.ports.client, 50, 'warm-e');
    const atInterior = await attachTimes(interior.ports.client, n, 'interior');
    const atEdge = await attachTimes(edge.ports.client, n, 'edge');
    console.log(line('receiver attach at an interior router', atInterior));
    console.log(line('receiver attach at an edge router (looked up at its interior)', atEdge));
    console.log(`edge / interior attach latency, p50: ${(percentile(atEdge, 50) / percentile(atInterior, 50)).toFixed(2)}x`);
  } finally {
    await edge?.stop();
    await interior?.stop();
  }
}

if (require.main === module) {
  benchEdgeAttach(Number(process.env.BENCH_ATTACHES ?? 1000)).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
