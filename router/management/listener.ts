/**
 * Management entity `listener`: the configured listeners, each with every attribute (set or
 * defaulted) and the port it listens on (port 0 resolved once it listens).
 */
import type { EntityModule } from './view';

export const listenerEntity: EntityModule = {
  name: 'listener',
  bases: ['configurationEntity','entity'],
  attributes: ['host', 'port', 'socketAddressFamily', 'role', 'cost', 'sslProfile', 'saslMechanisms', 'authenticatePeer', 'saslPlugin', 'requireEncryption', 'requireSsl', 'trustedCertsFile', 'maxFrameSize', 'maxSessions', 'maxSessionFrames', 'idleTimeoutSeconds', 'initialHandshakeTimeoutSeconds', 'stripAnnotations', 'linkCapacity', 'multiTenant', 'failoverUrls', 'healthz', 'metrics', 'websockets', 'http', 'httpRootDir', 'messageLoggingComponents', 'policyVhost', 'openProperties', 'name', 'identity', 'type'],
  operations: ['CREATE', 'DELETE', 'READ'],
  // No default in qdrouterd's schema: its listeners take the router's own.
  schema: { linkCapacity: { type: 'integer' } },
  read(v) {
    return v.configured('listener').map((l) => {
      const bound = v.bound.find((b) => b.name === l.name);
      return { ...l, type: 'org.apache.qpid.dispatch.listener', port: String(bound?.port ?? l.port) };
    });
  },
};
