/** Management entity `sslProfile`: The TLS profiles listeners and connectors use (files are not shown, passwords never). */
import type { TlsProfile } from '../../amqp/transport/settings';
import type { EntityModule } from './view';

export const sslProfileEntity: EntityModule = {
  name: 'sslProfile',
  bases: ['configurationEntity','entity'],
  attributes: ['ciphers', 'protocols', 'caCertFile', 'certFile', 'privateKeyFile', 'passwordFile', 'password', 'uidFormat', 'uidNameMappingFile', 'name', 'identity', 'type'],
  operations: ['CREATE', 'DELETE', 'READ'],
  read(v) {
    const seen = new Map<string, TlsProfile>();
    for (const l of v.settings.listeners) if (l.transport?.tls) seen.set(l.transport.tls.name, l.transport.tls);
    for (const c of v.settings.connectors ?? []) if (c.transport?.tls) seen.set(c.transport.tls.name, c.transport.tls);
    return [...seen.values()].map((p) => ({
      name: p.name, identity: `sslProfile/${p.name}`, type: 'org.apache.qpid.dispatch.sslProfile',
      ciphers: p.ciphers ?? null, protocols: p.protocols?.join(' ') ?? null, uidFormat: p.uidFormat ?? null,
    }));
  },
};
