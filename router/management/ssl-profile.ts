/** Management entity `sslProfile`: the configured TLS profiles (passwords never shown). */
import type { EntityModule } from './view';

export const sslProfileEntity: EntityModule = {
  name: 'sslProfile',
  bases: ['configurationEntity','entity'],
  attributes: ['ciphers', 'protocols', 'caCertFile', 'certFile', 'privateKeyFile', 'passwordFile', 'password', 'uidFormat', 'uidNameMappingFile', 'name', 'identity', 'type'],
  operations: ['CREATE', 'DELETE', 'READ'],
  read(v) {
    return v.configured('sslProfile').map((p) => ({ ...p, type: 'org.apache.qpid.dispatch.sslProfile' }));
  },
};
