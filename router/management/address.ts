/** Management entity `router.address`: Live addresses of the routing core, named as qdrouterd names them (M0queue, L..., with their class letter and phase). */
import { parsePhaseKey } from '../core/addresses';

/**
 * qdrouterd's name of a routing key: a class letter, then for mobile addresses the phase digit.
 * `_topo/0/<self>/x` is this router's local address `Lx`; another router's is topological (`T`);
 * an edge router's summary address `_edge/<id>` is `H<id>`.
 */
export function addressName(key: string, self: string): string {
  if (key.startsWith('_topo/0/')) {
    const rest = key.slice(8);
    const end = rest.indexOf('/');
    const id = end < 0 ? rest : rest.slice(0, end);
    return id === self && end >= 0 ? `L${rest.slice(end + 1)}` : `T${key}`;
  }
  if (key.startsWith('_edge/')) {
    // An edge's summary address on its interior is qdrouterd's `H<edge id>`; an edge's own
    // `_edge/<self>/x` is local (`Lx`).
    const rest = key.slice(6);
    const end = rest.indexOf('/');
    if (end < 0) return `H${rest}`;
    return rest.slice(0, end) === self ? `L${rest.slice(end + 1)}` : `H${rest.slice(0, end)}`;
  }
  if (key === '_edge') return 'L_edge';
  if (key.startsWith('$')) return `L${key}`;
  if (key.startsWith('_local/')) return `L${key.slice(7)}`;
  const { address, phase } = parsePhaseKey(key);
  return `M${phase}${address}`;
}
import { counters, typed, type EntityModule } from './view';

export const addressEntity: EntityModule = {
  name: 'router.address',
  bases: ['operationalEntity','entity'],
  attributes: ['distribution', 'inProcess', 'subscriberCount', 'remoteCount', 'containerCount', 'deliveriesIngress', 'deliveriesEgress', 'deliveriesTransit', 'deliveriesToContainer', 'deliveriesFromContainer', 'deliveriesIngressRouteContainer', 'deliveriesEgressRouteContainer', 'deliveriesRedirectedToFallback', 'key', 'remoteHostRouters', 'transitOutstanding', 'trackedDeliveries', 'priority', 'name', 'identity', 'type'],
  operations: ['READ'],
  schema: {
    distribution: { type: ['flood', 'multicast', 'closest', 'balanced', 'linkBalanced', 'unavailable'] },
    ...typed('integer', ['inProcess', 'trackedDeliveries', 'priority']),
    ...counters(['subscriberCount', 'remoteCount', 'containerCount', 'deliveriesIngress', 'deliveriesEgress', 'deliveriesTransit', 'deliveriesToContainer',
      'deliveriesFromContainer', 'deliveriesIngressRouteContainer', 'deliveriesEgressRouteContainer', 'deliveriesRedirectedToFallback']),
    ...typed('list', ['remoteHostRouters', 'transitOutstanding']),
  },
  read(v) {
    const self = v.settings.id;
    // `$management` is the agent's alias of its L$management: one row.
    const rows: Record<string, unknown>[] = v.addresses().filter((a) => a.key !== '$management').map((a) => {
      const name = addressName(a.key, self);
      // The agent consumes `_local/$management` (also this router's `_topo/0/<id>/$management`) in process (qdrouterd's L$management).
      const agent = a.key === '_local/$management' ? 1 : 0;
      return {
        name, identity: name, type: 'org.apache.qpid.dispatch.router.address', key: name,
        distribution: a.distribution, inProcess: agent, subscriberCount: a.consumers - agent, remoteCount: a.topo ? 0 : a.remotes.length, containerCount: 0,
        deliveriesIngress: a.deliveriesIngress, deliveriesEgress: a.deliveriesEgress, deliveriesTransit: a.deliveriesTransit,
        deliveriesToContainer: 0, deliveriesFromContainer: 0, deliveriesIngressRouteContainer: 0, deliveriesEgressRouteContainer: 0,
        deliveriesRedirectedToFallback: 0, remoteHostRouters: a.topo ? [] : a.remotes, transitOutstanding: null, trackedDeliveries: 0, priority: -1,
      };
    });
    // Link routes, as qdrouterd lists them: C/D (prefix in/out), E/F (pattern in/out), with the
    // route-container connections serving them here and the routers advertising them.
    for (const r of v.linkRouteAddresses()) {
      rows.push({
        name: r.key, identity: r.key, type: 'org.apache.qpid.dispatch.router.address', key: r.key, distribution: 'linkBalanced', inProcess: 0,
        subscriberCount: 0, remoteCount: r.remoteRouters.length, containerCount: r.containerCount, deliveriesIngress: 0, deliveriesEgress: 0,
        deliveriesTransit: 0, deliveriesToContainer: 0, deliveriesFromContainer: 0, deliveriesIngressRouteContainer: 0, deliveriesEgressRouteContainer: 0,
        deliveriesRedirectedToFallback: 0, remoteHostRouters: r.remoteRouters, transitOutstanding: null, trackedDeliveries: 0, priority: -1,
      });
    }
    return rows;
  },
};
