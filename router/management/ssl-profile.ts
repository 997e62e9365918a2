/** Management entity `sslProfile`: the configured TLS profiles (passwords never shown). */
import type { EntityModule } from './view';

export const sslProfileEntity: EntityModule = {
  name: 'sslProfile',
  bases: ['configurationEntity','entity'],
  attributes: ['ciphers', 'protocols', 'caCertFile', 'certFile', 'privateKeyFile', 'passwordFile', 'password', 'uidFormat', 'uidNameMappingFile', 'name', 'identity', 'type'],
  operations: ['CREATE', 'DELETE', 'READ'],
  // qdrouterd types it a string although it names a file; amqp-mesh's config table reads it as a path.
  schema: { uidNameMappingFile: { type: 'string' } },
  read(v) {
    return v.configured('sslProfile').map((p) => ({ ...p, type: 'org.apache.qpid.dispatch.sslProfile' }));
  },
};
