/** Management entity `router.node`: The routers of the mesh (this one first, nextHop "(self)", as qdrouterd): next hop, cost, valid origins, advertised neighbours. */
import { typed, type EntityModule } from './view';

export const nodeEntity: EntityModule = {
  name: 'router.node',
  bases: ['operationalEntity','entity'],
  attributes: ['id', 'protocolVersion', 'instance', 'linkState', 'nextHop', 'validOrigins', 'address', 'routerLink', 'cost', 'lastTopoChange', 'index', 'name', 'identity', 'type'],
  operations: ['READ'],
  schema: {
    ...typed('integer', ['protocolVersion', 'instance', 'cost', 'lastTopoChange', 'index']),
    ...typed('list', ['linkState', 'validOrigins']),
    routerLink: { type: 'entityId' },
  },
  read(v) {
    return v.nodes().map((n, i) => ({
      name: `router.node/${n.id}`, identity: `router.node/${n.id}`, type: 'org.apache.qpid.dispatch.router.node',
      id: n.id, protocolVersion: 1, instance: n.instance, linkState: n.linkState, nextHop: n.self ? '(self)' : n.neighbour ? null : n.nextHop,
      validOrigins: n.validOrigins, address: `amqp:/_topo/0/${n.id}`, routerLink: n.routerLink, cost: n.cost, lastTopoChange: null, index: n.self ? 0 : i,
    }));
  },
};
