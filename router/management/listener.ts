/** Management entity `listener`: The listeners the router runs (where they ended up when port 0 was asked). */
import type { EntityModule } from './view';

export const listenerEntity: EntityModule = {
  name: 'listener',
  bases: ['configurationEntity','entity'],
  attributes: ['host', 'port', 'socketAddressFamily', 'role', 'cost', 'sslProfile', 'saslMechanisms', 'authenticatePeer', 'saslPlugin', 'requireEncryption', 'requireSsl', 'trustedCertsFile', 'maxFrameSize', 'maxSessions', 'maxSessionFrames', 'idleTimeoutSeconds', 'initialHandshakeTimeoutSeconds', 'stripAnnotations', 'linkCapacity', 'multiTenant', 'failoverUrls', 'healthz', 'metrics', 'websockets', 'http', 'httpRootDir', 'messageLoggingComponents', 'policyVhost', 'openProperties', 'name', 'identity', 'type'],
  operations: ['CREATE', 'DELETE', 'READ'],
  read(v) {
    return v.settings.listeners.map((l) => {
      const bound = v.bound.find((b) => b.name === l.name);
      return {
        name: l.name, identity: `listener/${l.name}`, type: 'org.apache.qpid.dispatch.listener',
        host: l.host, port: String(bound?.port ?? l.port), role: l.role ?? 'normal', cost: l.cost ?? 1, sslProfile: l.transport?.tls?.name ?? null,
        saslMechanisms: l.saslMechanisms.join(' '), authenticatePeer: l.authenticatePeer, requireSsl: l.transport?.requireSsl ?? false,
        maxFrameSize: l.maxFrameSize, maxSessions: l.maxSessions, idleTimeoutSeconds: l.idleTimeoutSeconds,
        initialHandshakeTimeoutSeconds: l.transport?.initialHandshakeTimeoutSeconds ?? 0, stripAnnotations: l.stripAnnotations,
        linkCapacity: l.linkCapacity, websockets: l.transport?.websockets ?? false, http: l.transport?.websockets ?? false,
      };
    });
  },
};
