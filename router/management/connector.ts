/**
 * Management entity `connector`: the configured connectors with their live state: inter-router
 * connectors, route-container connectors (to brokers; `activeUrl`, the broker of a pair in use,
 * is amqp-mesh's own attribute) and normal ones (kept up the same way).
 */
import type { EntityModule } from './view';

export const connectorEntity: EntityModule = {
  name: 'connector',
  bases: ['configurationEntity','entity'],
  attributes: ['host', 'port', 'protocolFamily', 'role', 'cost', 'sslProfile', 'saslMechanisms', 'allowRedirect', 'maxFrameSize', 'maxSessions', 'maxSessionFrames', 'idleTimeoutSeconds', 'stripAnnotations', 'linkCapacity', 'verifyHostname', 'saslUsername', 'saslPassword', 'messageLoggingComponents', 'failoverUrls', 'connectionStatus', 'connectionMsg', 'policyVhost', 'openProperties', 'activeUrl', 'name', 'identity', 'type'],
  operations: ['CREATE', 'DELETE', 'READ'],
  // No default in qdrouterd's schema: its connectors take the router's own.
  schema: { linkCapacity: { type: 'integer' } },
  unlisted: ['activeUrl'],
  read(v) {
    const s = v.settings;
    return v.configured('connector').map((c) => {
      const base = { ...c, type: 'org.apache.qpid.dispatch.connector', port: String(c.port) };
      const ir = (s.connectors ?? []).find((x) => x.name === c.name);
      if (ir !== undefined) {
        const up = v.connectorUp(ir);
        return { ...base, connectionStatus: up ? 'SUCCESS' : 'CONNECTING', connectionMsg: up ? `Connection Opened: dir=out host=${ir.host}:${ir.port}` : null };
      }
      const rc = v.routeContainers.find((r) => r.settings.name === c.name && !r.retiring);
      if (rc !== undefined) {
        const st = rc.status();
        return {
          ...base,
          connectionStatus: st.state === 'active' ? 'SUCCESS' : st.state === 'failing-over' ? 'FAILED' : 'CONNECTING',
          connectionMsg: st.state === 'active' ? `Connection Opened: ${st.url}` : `${st.state}: next ${st.url}`,
          failoverUrls: st.candidates.join(', '), activeUrl: st.url,
        };
      }
      return { ...base, connectionStatus: 'FAILED', connectionMsg: 'not connecting' };
    });
  },
};
