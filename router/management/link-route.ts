/** Management entity `router.config.linkRoute`: the link routes and whether their connection is up. */
import { withAllAttributes, type EntityModule } from './view';

export const linkRouteEntity: EntityModule = {
  name: 'router.config.linkRoute',
  bases: ['configurationEntity','entity'],
  // qdrouterd's core agent's column order (a QUERY without attributeNames answers in it; scripts index it).
  attributes: ['name', 'identity', 'type', 'prefix', 'distribution', 'connection', 'containerId', 'direction', 'dir', 'operStatus', 'pattern', 'addExternalPrefix', 'delExternalPrefix'],
  operations: ['CREATE', 'DELETE', 'READ'],
  unlisted: ['dir'],
  read(v) {
    return v.configured('linkRoute').map((l) => {
      const up = v.routeContainers.some((rc) => rc.state === 'active' && !rc.retiring
        && (rc.settings.name === l.connection || (l.containerId !== undefined && rc.conn?.remoteOpen?.containerId === l.containerId)));
      return withAllAttributes(linkRouteEntity.attributes, { ...l, type: 'org.apache.qpid.dispatch.router.config.linkRoute', operStatus: up ? 'active' : 'inactive' });
    });
  },
};
