/** Management entity `router.config.address`: the address rules (prefix or pattern, distribution, waypoint, phases). */
import { withAllAttributes, type EntityModule } from './view';

export const configAddressEntity: EntityModule = {
  name: 'router.config.address',
  bases: ['configurationEntity','entity'],
  attributes: ['prefix', 'pattern', 'distribution', 'waypoint', 'ingressPhase', 'egressPhase', 'priority', 'enableFallback', 'name', 'identity', 'type'],
  operations: ['CREATE', 'DELETE', 'READ'],
  read(v) {
    return v.configured('address').map((a) => withAllAttributes(configAddressEntity.attributes, { ...a, type: 'org.apache.qpid.dispatch.router.config.address' }));
  },
};
