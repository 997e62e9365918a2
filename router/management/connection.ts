/** Management entity `connection`: Live connections: one per transport, with who is on it and how. */
import { counters, typed, type EntityModule } from './view';

export const connectionEntity: EntityModule = {
  name: 'connection',
  bases: ['operationalEntity','entity'],
  attributes: ['adminStatus', 'operStatus', 'protocol', 'container', 'opened', 'host', 'dir', 'role', 'isAuthenticated', 'isEncrypted', 'enableProtocolTrace', 'sasl', 'user', 'ssl', 'sslProto', 'sslCipher', 'sslSsf', 'tenant', 'uptimeSeconds', 'properties', 'lastDlvSeconds', 'name', 'identity', 'type'],
  operations: ['UPDATE', 'READ'],
  schema: {
    adminStatus: { type: ['enabled', 'deleted'], default: 'enabled' },
    operStatus: { type: ['up', 'closing'] },
    dir: { type: ['in', 'out'] },
    ...typed('boolean', ['opened', 'isAuthenticated', 'isEncrypted', 'enableProtocolTrace', 'ssl']),
    sslSsf: { type: 'integer' },
    ...counters(['uptimeSeconds', 'lastDlvSeconds']),
    properties: { type: 'map' },
  },
  read(v) {
    return v.connections().map((c) => ({
      name: `connection/${c.host}`, identity: c.identity, type: 'org.apache.qpid.dispatch.connection',
      adminStatus: 'enabled', operStatus: 'up', protocol: 'amqp', container: c.container, opened: c.opened, host: c.host, dir: c.dir, role: c.role,
      isAuthenticated: c.isAuthenticated, isEncrypted: c.isEncrypted, enableProtocolTrace: false, sasl: c.sasl, user: c.user,
      ssl: c.isEncrypted, sslProto: c.sslProto, sslCipher: c.sslCipher, sslSsf: 0, tenant: null,
      uptimeSeconds: c.uptimeSeconds, properties: c.properties, lastDlvSeconds: c.lastDlvSeconds,
    }));
  },
};
