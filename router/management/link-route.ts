/** Management entity `router.config.linkRoute`: Link routes and whether their connection is up. */
import type { EntityModule } from './view';

export const linkRouteEntity: EntityModule = {
  name: 'router.config.linkRoute',
  bases: ['configurationEntity','entity'],
  attributes: ['prefix', 'pattern', 'addExternalPrefix', 'delExternalPrefix', 'containerId', 'connection', 'distribution', 'direction', 'operStatus', 'name', 'identity', 'type'],
  operations: ['CREATE', 'DELETE', 'READ'],
  read(v) {
    return (v.settings.linkRoutes ?? []).map((l) => ({
      name: l.name, identity: `linkRoute/${l.name}`, type: 'org.apache.qpid.dispatch.router.config.linkRoute', prefix: l.prefix ?? null, pattern: l.pattern ?? null,
      direction: l.direction, connection: l.connection, distribution: 'linkBalanced',
      operStatus: v.routeContainers.some((rc) => rc.settings.name === l.connection && rc.state === 'active') ? 'active' : 'inactive',
    }));
  },
};
