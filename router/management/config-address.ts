/** Management entity `router.config.address`: the address rules (prefix or pattern, distribution, waypoint, phases). */
import { withAllAttributes, type EntityModule } from './view';

export const configAddressEntity: EntityModule = {
  name: 'router.config.address',
  bases: ['configurationEntity','entity'],
  // qdrouterd's core agent's column order (a QUERY without attributeNames answers in it; scripts index it).
  attributes: ['name', 'identity', 'type', 'prefix', 'distribution', 'waypoint', 'ingressPhase', 'egressPhase', 'pattern', 'priority', 'enableFallback'],
  operations: ['CREATE', 'DELETE', 'READ'],
  // No default in qdrouterd's schema (unset means the distribution's own priority).
  schema: { priority: { type: 'integer' } },
  read(v) {
    return v.configured('address').map((a) => withAllAttributes(configAddressEntity.attributes, { ...a, type: 'org.apache.qpid.dispatch.router.config.address' }));
  },
};
