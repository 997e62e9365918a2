/** Management entity `router.config.address`: The address rules (prefix or pattern, distribution, waypoint, phases). */
import type { EntityModule } from './view';

export const configAddressEntity: EntityModule = {
  name: 'router.config.address',
  bases: ['configurationEntity','entity'],
  attributes: ['prefix', 'pattern', 'distribution', 'waypoint', 'ingressPhase', 'egressPhase', 'priority', 'enableFallback', 'name', 'identity', 'type'],
  operations: ['CREATE', 'DELETE', 'READ'],
  read(v) {
    return v.settings.addresses.map((a, i) => ({
      name: `address/${i}`, identity: String(i), type: 'org.apache.qpid.dispatch.router.config.address', prefix: a.prefix ?? null, pattern: a.pattern ?? null, distribution: a.distribution,
      waypoint: !!a.waypoint, ingressPhase: a.ingressPhase ?? 0, egressPhase: a.egressPhase ?? (a.waypoint ? 1 : 0), priority: -1, enableFallback: false,
    }));
  },
};
