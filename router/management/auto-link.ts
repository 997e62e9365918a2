/** Management entity `router.config.autoLink`: Auto-links to brokers with their live state. */
import type { EntityModule } from './view';

export const autoLinkEntity: EntityModule = {
  name: 'router.config.autoLink',
  bases: ['configurationEntity','entity'],
  attributes: ['address', 'direction', 'phase', 'containerId', 'connection', 'externalAddress', 'fallback', 'linkRef', 'operStatus', 'lastError', 'name', 'identity', 'type'],
  operations: ['CREATE', 'DELETE', 'READ'],
  read(v) {
    return [
      ...v.routeContainers.flatMap((rc) => rc.autoLinks.map((a) => ({
        name: a.settings.name, identity: `autoLink/${a.settings.name}`, type: 'org.apache.qpid.dispatch.router.config.autoLink', address: a.settings.address,
        direction: a.settings.direction, phase: a.settings.phase, connection: rc.settings.name, externalAddress: a.settings.externalAddress ?? null,
        operStatus: a.state, lastError: a.lastError,
      }))),
      // No route-container connector of that name (yet): inactive, as qdrouterd reports them.
      ...(v.settings.unboundAutoLinks ?? []).map((a) => ({
        name: a.name, identity: `autoLink/${a.name}`, type: 'org.apache.qpid.dispatch.router.config.autoLink', address: a.address,
        direction: a.direction, phase: a.phase, connection: a.connection, externalAddress: a.externalAddress ?? null,
        operStatus: 'inactive', lastError: null,
      })),
    ];
  },
};
