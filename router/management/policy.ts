/**
 * Management entity `policy`: the global policy settings (configured or qdrouterd's defaults) and
 * its counters. amqp-mesh enforces no policy yet, so it denies nothing: the denial counters are
 * truly zero, and connectionsProcessed/connectionsCurrent count every connection.
 */
import type { EntityModule } from './view';

/** qdrouterd's defaults for the policy entity. */
const DEFAULTS = { maxConnections: 65535, maxMessageSize: 0, enableVhostPolicy: false, enableVhostNamePatterns: false, policyDir: '', defaultVhost: '$default' };

export const policyEntity: EntityModule = {
  name: 'policy',
  bases: ['configurationEntity', 'entity'],
  attributes: ['maxConnections', 'maxMessageSize', 'enableVhostPolicy', 'enableVhostNamePatterns', 'policyDir', 'defaultVhost', 'connectionsProcessed',
    'connectionsDenied', 'connectionsCurrent', 'linksDenied', 'maxMessageSizeDenied', 'totalDenials', 'name', 'identity', 'type'],
  operations: ['READ'],
  read(v) {
    const configured = v.configured('policy')[0] ?? {};
    return [{
      ...DEFAULTS, ...configured, name: 'policy/policy', identity: 'policy/policy', type: 'org.apache.qpid.dispatch.policy',
      connectionsProcessed: v.connectionsAccepted, connectionsDenied: 0, connectionsCurrent: v.connections().length, linksDenied: 0, maxMessageSizeDenied: 0, totalDenials: 0,
    }];
  },
};

/** Management entity `vhostStats`: per-vhost counters; amqp-mesh applies no vhost policy yet, so there are none. */
export const vhostStatsEntity: EntityModule = {
  name: 'vhostStats',
  bases: ['operationalEntity', 'entity'],
  attributes: ['id', 'hostname', 'connectionsApproved', 'connectionsDenied', 'connectionsCurrent', 'perUserState', 'perHostState', 'sessionDenied', 'senderDenied',
    'receiverDenied', 'maxMessageSizeDenied', 'name', 'identity', 'type'],
  operations: ['READ'],
  read() {
    return [];
  },
};
