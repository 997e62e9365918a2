/**
 * Throwaway TLS files for the configuration tests, made with the openssl CLI in a temporary
 * directory (removed when the process exits): a CA, a server certificate it signed with its key
 * (plain and encrypted), a key of another certificate, and files that are not PEM.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface TlsFiles {
  dir: string;
  /** CA certificate (PEM). */
  ca: string;
  /** Server certificate signed by the CA, CN=localhost. */
  cert: string;
  /** Its private key, unencrypted. */
  key: string;
  /** The same key, encrypted with {@link KEY_PASSWORD}. */
  encryptedKey: string;
  /** A file holding {@link KEY_PASSWORD} on its first line. */
  passwordFile: string;
  /** A private key that is not the certificate's. */
  otherKey: string;
  /** Text that is no PEM at all. */
  notPem: string;
  /** A PEM certificate block whose content is not a certificate. */
  badCert: string;
}

export const KEY_PASSWORD = 'k3y-secret';

let made: TlsFiles | undefined;

/** Makes the files once per process. */
export function tlsFiles(): TlsFiles {
  if (made !== undefined) return made;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-config-tls-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=amqp-mesh test CA');
  openssl('req', ...ec, '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/O=amqp-mesh/CN=localhost');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server.pem', '-days', '2');
  openssl('pkey', '-in', 'server-key.pem', '-aes256', '-passout', `pass:${KEY_PASSWORD}`, '-out', 'server-key-enc.pem');
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', 'other-key.pem');
  fs.writeFileSync(file('password.txt'), `${KEY_PASSWORD}\nsecond line is ignored\n`);
  fs.writeFileSync(file('not-pem.txt'), 'this is not a certificate\n');
  fs.writeFileSync(file('bad-cert.pem'), '-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n');
  made = {
    dir,
    ca: file('ca.pem'),
    cert: file('server.pem'),
    key: file('server-key.pem'),
    encryptedKey: file('server-key-enc.pem'),
    passwordFile: file('password.txt'),
    otherKey: file('other-key.pem'),
    notPem: file('not-pem.txt'),
    badCert: file('bad-cert.pem'),
  };
  return made;
}
