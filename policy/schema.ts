/**
 * qdrouterd's `policy` and `vhost` entities, the same in router and broker files (qdrouterd
 * 1.19's names and defaults; a vhost's groups are a map of vhostUserGroupSettings).
 */
import { attributeHelpers, entitySchema, readOnly, type EntitySchema } from '../config/schema';

const { string, integer, boolean, path, map } = attributeHelpers('implemented');

export const POLICY_ENTITY_SCHEMA: EntitySchema = entitySchema('policy', { qdrouterdType: 'org.apache.qpid.dispatch.policy', implemented: true, singleton: true }, {
  maxConnections: integer({ default: 65535, min: 0 }),
  maxMessageSize: integer({ default: 0, min: 0 }),
  enableVhostPolicy: boolean({ default: false }),
  enableVhostNamePatterns: boolean({ default: false }),
  policyDir: path({ default: '' }),
  defaultVhost: string({ default: '$default' }),
  ...Object.fromEntries(['connectionsProcessed', 'connectionsDenied', 'connectionsCurrent', 'linksDenied', 'maxMessageSizeDenied', 'totalDenials']
    .map((name) => [name, readOnly(integer())])),
});

export const VHOST_ENTITY_SCHEMA: EntitySchema = entitySchema('vhost', { qdrouterdType: 'org.apache.qpid.dispatch.vhost', implemented: true }, {
  hostname: string({ required: true, deprecationName: 'id' }),
  aliases: string(),
  maxConnections: integer({ default: 65535 }),
  maxMessageSize: integer(),
  maxConnectionsPerUser: integer({ default: 65535 }),
  maxConnectionsPerHost: integer({ default: 65535 }),
  allowUnknownUser: boolean({ default: false }),
  groups: map(),
});
