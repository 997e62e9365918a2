/**
 * Management entities of policy: `policy` (the global settings, configured or qdrouterd's
 * defaults, and the counters of the policy engine), `vhost` (every vhost of the configuration,
 * file, policyDir or management; created, updated and deleted through the configuration like any
 * configuration entity) and `vhostStats` (each vhost's counters).
 */
import { POLICY_DEFAULTS } from '../../policy/config';
import { counters, typed, withAllAttributes, type EntityModule } from './view';

export const policyEntity: EntityModule = {
  name: 'policy',
  bases: ['configurationEntity', 'entity'],
  attributes: ['maxConnections', 'maxMessageSize', 'enableVhostPolicy', 'enableVhostNamePatterns', 'policyDir', 'defaultVhost', 'connectionsProcessed',
    'connectionsDenied', 'connectionsCurrent', 'linksDenied', 'maxMessageSizeDenied', 'totalDenials', 'name', 'identity', 'type'],
  operations: ['READ'],
  schema: counters(['connectionsProcessed', 'connectionsDenied', 'connectionsCurrent', 'linksDenied', 'maxMessageSizeDenied', 'totalDenials']),
  read(v) {
    const configured = v.configured('policy')[0] ?? {};
    return [{
      ...POLICY_DEFAULTS, ...configured, name: 'policy/policy', identity: 'policy/policy', type: 'org.apache.qpid.dispatch.policy', ...v.policy.counters,
    }];
  },
};

export const vhostEntity: EntityModule = {
  name: 'vhost',
  bases: ['configurationEntity', 'entity'],
  attributes: ['hostname', 'aliases', 'maxConnections', 'maxMessageSize', 'maxConnectionsPerUser', 'maxConnectionsPerHost', 'allowUnknownUser', 'groups', 'name', 'identity', 'type'],
  operations: ['CREATE', 'UPDATE', 'DELETE', 'READ'],
  read(v) {
    return v.configured('vhost').map((r) => withAllAttributes(vhostEntity.attributes, { ...r, type: 'org.apache.qpid.dispatch.vhost' }));
  },
};

export const vhostStatsEntity: EntityModule = {
  name: 'vhostStats',
  bases: ['operationalEntity', 'entity'],
  attributes: ['id', 'hostname', 'connectionsApproved', 'connectionsDenied', 'connectionsCurrent', 'perUserState', 'perHostState', 'sessionDenied', 'senderDenied',
    'receiverDenied', 'maxMessageSizeDenied', 'name', 'identity', 'type'],
  operations: ['READ'],
  schema: {
    ...counters(['connectionsApproved', 'connectionsDenied', 'connectionsCurrent', 'sessionDenied', 'senderDenied', 'receiverDenied', 'maxMessageSizeDenied']),
    ...typed('map', ['perUserState', 'perHostState']),
  },
  read(v) {
    return [...v.policy.stats].map(([hostname, s]) => ({
      id: hostname, hostname, name: `vhostStats/${hostname}`, identity: `vhostStats/${hostname}`, type: 'org.apache.qpid.dispatch.vhostStats',
      connectionsApproved: s.connectionsApproved, connectionsDenied: s.connectionsDenied, connectionsCurrent: s.connectionsCurrent,
      // qdrouterd lists each user's (host's) connections by name.
      perUserState: Object.fromEntries([...s.perUser].map(([u, ids]) => [u, [...ids].map(String)])),
      perHostState: Object.fromEntries([...s.perHost].map(([h, ids]) => [h, [...ids].map(String)])),
      sessionDenied: s.sessionDenied, senderDenied: s.senderDenied, receiverDenied: s.receiverDenied, maxMessageSizeDenied: s.maxMessageSizeDenied,
    }));
  },
};
