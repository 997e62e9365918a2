/**
 * Management entity `connector`: Outgoing connections: inter-router connectors and route-container
 * connectors (to brokers) with their live state. `activeUrl` (the broker of a pair in use) is
 * amqp-mesh's own attribute, after qdrouterd's.
 */
import type { EntityModule } from './view';

export const connectorEntity: EntityModule = {
  name: 'connector',
  bases: ['configurationEntity','entity'],
  attributes: ['host', 'port', 'protocolFamily', 'role', 'cost', 'sslProfile', 'saslMechanisms', 'allowRedirect', 'maxFrameSize', 'maxSessions', 'maxSessionFrames', 'idleTimeoutSeconds', 'stripAnnotations', 'linkCapacity', 'verifyHostname', 'saslUsername', 'saslPassword', 'messageLoggingComponents', 'failoverUrls', 'connectionStatus', 'connectionMsg', 'policyVhost', 'openProperties', 'activeUrl', 'name', 'identity', 'type'],
  operations: ['CREATE', 'DELETE', 'READ'],
  read(v) {
    const s = v.settings;
    return [
      ...(s.connectors ?? []).map((c) => {
        const up = v.connectorUp(c);
        return {
          name: c.name, identity: `connector/${c.name}`, type: 'org.apache.qpid.dispatch.connector', host: c.host, port: String(c.port), role: 'inter-router', cost: c.cost,
          sslProfile: c.transport?.tls?.name ?? null, maxFrameSize: c.maxFrameSize, idleTimeoutSeconds: c.idleTimeoutSeconds,
          saslMechanisms: c.sasl.mechanism, saslUsername: c.sasl.user ?? null,
          connectionStatus: up ? 'SUCCESS' : 'CONNECTING', connectionMsg: up ? `Connection Opened: dir=out host=${c.host}:${c.port}` : null,
        };
      }),
      ...v.routeContainers.map((rc) => {
        const st = rc.status();
        return {
          name: st.name, identity: `connector/${st.name}`, type: 'org.apache.qpid.dispatch.connector', host: rc.settings.host, port: String(rc.settings.port), role: 'route-container',
          connectionStatus: st.state === 'active' ? 'SUCCESS' : st.state === 'failing-over' ? 'FAILED' : 'CONNECTING',
          connectionMsg: st.state === 'active' ? `Connection Opened: ${st.url}` : `${st.state}: next ${st.url}`,
          failoverUrls: st.candidates.join(', '), activeUrl: st.url,
        };
      }),
    ];
  },
};
