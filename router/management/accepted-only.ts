/**
 * Management entity types amqp-mesh accepts in configuration but does not act on yet (exchange,
 * binding, authServicePlugin, console, and the vhost settings that live inside other
 * entities): listed by GET-TYPES as qdrouterd lists them, and
 * readable (what the configuration holds). Read only: creating one through management would
 * promise behaviour the router does not have.
 */
import { typed, withAllAttributes, type EntityModule } from './view';

function acceptedOnly(name: string, schemaType: string | null, own: readonly string[], schema?: EntityModule['schema']): EntityModule {
  const m: EntityModule = {
    name,
    bases: ['configurationEntity', 'entity'],
    attributes: [...own, 'name', 'identity', 'type'],
    operations: ['READ'],
    ...(schema !== undefined ? { schema } : {}),
    read(v) {
      if (schemaType === null) return [];
      return v.configured(schemaType).map((r) => withAllAttributes(m.attributes, { ...r, type: `org.apache.qpid.dispatch.${name}` }));
    },
  };
  return m;
}

export const exchangeEntity = acceptedOnly('router.config.exchange', 'exchange',
  ['address', 'phase', 'alternateAddress', 'alternatePhase', 'matchMethod', 'bindingCount', 'receivedCount', 'droppedCount', 'forwardedCount', 'divertedCount']);
export const bindingEntity = acceptedOnly('router.config.binding', 'binding', ['exchangeName', 'bindingKey', 'nextHopAddress', 'nextHopPhase', 'matchedCount']);
export const authServicePluginEntity = acceptedOnly('authServicePlugin', 'authServicePlugin', ['authService', 'host', 'port', 'realm', 'sslProfile']);
export const consoleEntity = acceptedOnly('console', 'console', ['listener', 'wsport', 'proxy', 'home', 'args']);
/** A vhost's groups are inside its `groups` attribute: none stand alone. */
export const vhostUserGroupSettingsEntity = acceptedOnly('vhostUserGroupSettings', null,
  ['users', 'remoteHosts', 'maxConnectionsPerUser', 'maxConnectionsPerHost', 'maxMessageSize', 'maxFrameSize', 'maxSessionWindow', 'maxSessions', 'maxSenders',
    'maxReceivers', 'allowDynamicSource', 'allowAnonymousSender', 'allowUserIdProxy', 'allowWaypointLinks', 'allowDynamicLinkRoutes', 'allowAdminStatusUpdate',
    'allowFallbackLinks', 'sources', 'targets', 'sourcePattern', 'targetPattern'],
  {
    users: { type: 'string', required: true },
    remoteHosts: { type: 'string', required: true },
    ...typed('integer', ['maxConnectionsPerUser', 'maxConnectionsPerHost', 'maxMessageSize', 'maxFrameSize', 'maxSessionWindow', 'maxSessions']),
    maxSenders: { type: 'integer', default: 2147483647 },
    maxReceivers: { type: 'integer', default: 2147483647 },
    ...typed('boolean', ['allowDynamicSource', 'allowAnonymousSender', 'allowUserIdProxy']),
    ...Object.fromEntries(['allowWaypointLinks', 'allowDynamicLinkRoutes', 'allowAdminStatusUpdate', 'allowFallbackLinks'].map((n) => [n, { type: 'boolean', default: true }])),
  });

