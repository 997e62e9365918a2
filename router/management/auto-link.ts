/** Management entity `router.config.autoLink`: the auto-links to brokers with their live state. */
import { withAllAttributes, type EntityModule } from './view';

export const autoLinkEntity: EntityModule = {
  name: 'router.config.autoLink',
  bases: ['configurationEntity','entity'],
  // qdrouterd's core agent's column order (a QUERY without attributeNames answers in it; scripts index it).
  attributes: ['name', 'identity', 'type', 'address', 'addr', 'direction', 'dir', 'phase', 'connection', 'containerId', 'externalAddress', 'externalAddr', 'linkRef', 'operStatus', 'lastError', 'fallback'],
  operations: ['CREATE', 'DELETE', 'READ'],
  unlisted: ['addr', 'dir', 'externalAddr'],
  read(v) {
    return v.configured('autoLink').map((a) => {
      // Live where a route-container connection carries it (the first active one for a containerId).
      const live = v.routeContainers.filter((rc) => !rc.retiring).flatMap((rc) => rc.autoLinks).filter((x) => x.settings.name === a.name);
      const best = live.find((x) => x.state === 'active') ?? live[0];
      return withAllAttributes(autoLinkEntity.attributes, { ...a, type: 'org.apache.qpid.dispatch.router.config.autoLink', operStatus: best?.state ?? 'inactive', lastError: best?.lastError ?? null });
    });
  },
};
