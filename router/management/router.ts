/** Management entity `router`: The router itself: its identity, mode and the counts and delivery counters of the running core. */
import { counters, type EntityModule } from './view';
import { addressEntity } from './address';

export const routerEntity: EntityModule = {
  name: 'router',
  bases: ['configurationEntity','entity'],
  attributes: ['id', 'mode', 'area', 'version', 'hostName', 'helloIntervalSeconds', 'helloMaxAgeSeconds', 'raIntervalSeconds', 'raIntervalFluxSeconds', 'remoteLsMaxAgeSeconds', 'workerThreads', 'debugDumpFile', 'saslConfigDir', 'saslConfigName', 'allowResumableLinkRoute', 'timestampsInUTC', 'timestampFormat', 'allowUnsettledMulticast', 'defaultDistribution', 'metadata', 'addrCount', 'linkCount', 'blockedLinkCount', 'nodeCount', 'linkRouteCount', 'autoLinkCount', 'connectionCount', 'presettledDeliveries', 'droppedPresettledDeliveries', 'acceptedDeliveries', 'rejectedDeliveries', 'releasedDeliveries', 'modifiedDeliveries', 'deliveriesDelayed1Sec', 'deliveriesDelayed10Sec', 'deliveriesStuck', 'deliveriesIngress', 'deliveriesEgress', 'deliveriesTransit', 'deliveriesIngressRouteContainer', 'deliveriesEgressRouteContainer', 'deliveriesRedirectedToFallback', 'uptimeSeconds', 'memoryUsage', 'name', 'identity', 'type'],
  operations: ['READ'],
  schema: counters(['addrCount', 'linkCount', 'blockedLinkCount', 'nodeCount', 'linkRouteCount', 'autoLinkCount', 'connectionCount', 'presettledDeliveries',
    'droppedPresettledDeliveries', 'acceptedDeliveries', 'rejectedDeliveries', 'releasedDeliveries', 'modifiedDeliveries', 'deliveriesDelayed1Sec',
    'deliveriesDelayed10Sec', 'deliveriesStuck', 'deliveriesIngress', 'deliveriesEgress', 'deliveriesTransit', 'deliveriesIngressRouteContainer',
    'deliveriesEgressRouteContainer', 'deliveriesRedirectedToFallback', 'uptimeSeconds', 'memoryUsage']),
  read(v) {
    const s = v.settings;
    const st = v.stats;
    // Configured attributes (metadata, intervals, ...) as set or defaulted, then the live ones.
    const configured = v.configured('router')[0] ?? {};
    return [{
      defaultDistribution: 'balanced', timestampsInUTC: false, allowUnsettledMulticast: false, metadata: null, ...configured,
      name: `router/${s.id}`, identity: `router/${s.id}`, type: 'org.apache.qpid.dispatch.router', id: s.id, mode: s.mode, area: '0', version: v.version,
      workerThreads: configured.workerThreads ?? 4,
      addrCount: addressEntity.read(v).length, linkCount: v.links().length, blockedLinkCount: 0, nodeCount: v.nodes().filter((n) => !n.self).length,
      // Configured entities, as qdrouterd counts them (an auto-link naming a container-id is one, however many connections may carry it).
      linkRouteCount: v.configured('linkRoute').length, autoLinkCount: v.configured('autoLink').length,
      connectionCount: v.connections().length,
      presettledDeliveries: st.presettledDeliveries, droppedPresettledDeliveries: st.droppedPresettled,
      acceptedDeliveries: st.acceptedDeliveries, rejectedDeliveries: st.rejectedDeliveries,
      releasedDeliveries: st.releasedDeliveries, modifiedDeliveries: st.modifiedDeliveries,
      deliveriesDelayed1Sec: 0, deliveriesDelayed10Sec: 0, deliveriesStuck: 0,
      deliveriesIngress: st.deliveriesIngress, deliveriesEgress: st.deliveriesEgress, deliveriesTransit: st.deliveriesTransit,
      deliveriesIngressRouteContainer: st.deliveriesIngressRouteContainer, deliveriesEgressRouteContainer: st.deliveriesEgressRouteContainer, deliveriesRedirectedToFallback: 0,
      uptimeSeconds: v.uptimeSeconds, memoryUsage: v.memoryUsage,
    }];
  },
};
