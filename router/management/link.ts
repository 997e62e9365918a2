/** Management entity `router.link`: Live links of every connection, with the core's counters. */
import { addressName } from './address';
import { counters, typed, type EntityModule } from './view';

export const linkEntity: EntityModule = {
  name: 'router.link',
  bases: ['operationalEntity','entity'],
  attributes: ['adminStatus', 'operStatus', 'linkName', 'linkType', 'linkDir', 'owningAddr', 'capacity', 'peer', 'undeliveredCount', 'unsettledCount', 'deliveryCount', 'presettledCount', 'droppedPresettledCount', 'acceptedCount', 'rejectedCount', 'releasedCount', 'modifiedCount', 'deliveriesDelayed1Sec', 'deliveriesDelayed10Sec', 'deliveriesStuck', 'creditAvailable', 'zeroCreditSeconds', 'settleRate', 'ingressHistogram', 'priority', 'connectionId', 'name', 'identity', 'type'],
  operations: ['UPDATE', 'READ'],
  schema: {
    adminStatus: { type: ['enabled', 'disabled'], default: 'enabled' },
    operStatus: { type: ['up', 'down', 'quiescing', 'idle'] },
    linkType: { type: ['endpoint', 'router-control', 'inter-router'] },
    linkDir: { type: ['in', 'out'] },
    ...typed('integer', ['capacity', 'zeroCreditSeconds', 'priority']),
    ...counters(['undeliveredCount', 'unsettledCount', 'deliveryCount', 'presettledCount', 'droppedPresettledCount', 'acceptedCount', 'rejectedCount',
      'releasedCount', 'modifiedCount', 'deliveriesDelayed1Sec', 'deliveriesDelayed10Sec', 'deliveriesStuck', 'creditAvailable', 'settleRate']),
    ingressHistogram: { type: 'list' },
  },
  unlisted: ['connectionId'],
  read(v) {
    return v.links().map((l) => ({
      name: l.linkName, identity: l.identity, type: 'org.apache.qpid.dispatch.router.link',
      adminStatus: 'enabled', operStatus: 'up', linkName: l.linkName, linkType: l.linkType, linkDir: l.linkDir,
      owningAddr: l.owningAddr === null ? null : addressName(l.owningAddr, v.settings.id), capacity: l.capacity, peer: null,
      undeliveredCount: l.undeliveredCount, unsettledCount: l.unsettledCount, deliveryCount: l.deliveryCount, presettledCount: l.presettledCount,
      droppedPresettledCount: 0, acceptedCount: l.acceptedCount, rejectedCount: l.rejectedCount, releasedCount: l.releasedCount, modifiedCount: l.modifiedCount,
      deliveriesDelayed1Sec: 0, deliveriesDelayed10Sec: 0, deliveriesStuck: 0, creditAvailable: l.creditAvailable, zeroCreditSeconds: 0,
      settleRate: 0, ingressHistogram: null, priority: l.priority, connectionId: l.connectionId,
    }));
  },
};
