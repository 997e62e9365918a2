/**
 * The test certificate helper (test/support/certs.ts): every file it makes, checked with node's
 * crypto.X509Certificate (issuer, validity, SAN, key usage, keys matching) — no sockets.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Certs, findKeytool, makeCerts, makeCertsSync, makeClientCert, SERVER_KEY_PASSWORD } from '../support/certs';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-certs-test-'));
const dir = path.join(root, 'set');
let certs: Certs;

const x509 = (file: string) => new X509Certificate(fs.readFileSync(file));
const key = (file: string, passphrase?: string) => createPrivateKey(passphrase ? { key: fs.readFileSync(file), passphrase } : fs.readFileSync(file));
/** "O=a\nCN=b" -> { O: 'a', CN: 'b' } */
const dn = (s: string) => Object.fromEntries(s.split('\n').map((l) => l.split('=')) as [string, string][]);
const now = Date.now();
const validNow = (c: X509Certificate) => Date.parse(c.validFrom) <= Date.now() && Date.now() < Date.parse(c.validTo);

test.before(async () => {
  certs = await makeCerts(dir);
});

test.after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

test('the CA is a self-signed EC P-256 CA certificate, valid now', () => {
  const ca = x509(certs.ca);
  assert.ok(ca.ca);
  assert.equal(ca.subject, ca.issuer);
  assert.ok(ca.checkIssued(ca));
  assert.ok(ca.verify(ca.publicKey));
  assert.is(ca.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.ok(ca.checkPrivateKey(key(certs.caKey)));
  assert.ok(validNow(ca));
  assert.ok(Date.parse(ca.validTo) - now > 5 * 365 * 86400_000, 'years of validity left');
});

test('server.pem: CN=localhost, SAN localhost/127.0.0.1, issued by the CA, serverAuth + clientAuth', () => {
  const ca = x509(certs.ca);
  const s = x509(certs.server.cert);
  assert.is(dn(s.subject).CN, 'localhost');
  assert.is(s.issuer, ca.subject);
  assert.ok(s.checkIssued(ca));
  assert.ok(s.verify(ca.publicKey));
  assert.not.ok(s.ca);
  assert.ok(validNow(s));
  assert.ok(s.subjectAltName?.includes('DNS:localhost'), s.subjectAltName);
  assert.ok(s.subjectAltName?.includes('IP Address:127.0.0.1'), s.subjectAltName);
  assert.is(s.checkHost('localhost'), 'localhost');
  assert.is(s.checkIP('127.0.0.1'), '127.0.0.1');
  assert.is(s.checkHost('other.example'), undefined);
  assert.ok(s.keyUsage.includes(SERVER_AUTH));
  assert.ok(s.keyUsage.includes(CLIENT_AUTH));
  assert.ok(s.checkPrivateKey(key(certs.server.key)));
  assert.is(s.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
});

test('server-key-enc.pem is the server key, encrypted with the password in server-password.txt', () => {
  const pem = fs.readFileSync(certs.server.keyEncrypted, 'utf8');
  assert.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
  const password = fs.readFileSync(certs.server.passwordFile, 'utf8');
  assert.is(password, SERVER_KEY_PASSWORD);
  assert.is(certs.server.password, password);
  assert.throws(() => createPrivateKey(pem));
  assert.throws(() => key(certs.server.keyEncrypted, 'wrong'));
  assert.ok(x509(certs.server.cert).checkPrivateKey(key(certs.server.keyEncrypted, password)));
});

test('server-chain.pem is server.pem then ca.pem', () => {
  const chain = fs.readFileSync(certs.server.chain, 'utf8');
  assert.is(chain, fs.readFileSync(certs.server.cert, 'utf8') + fs.readFileSync(certs.ca, 'utf8'));
});

test('client-alice: CN=alice, O=amqp-mesh, issued by the CA, clientAuth, valid now', () => {
  const ca = x509(certs.ca);
  const c = x509(certs.client.cert);
  assert.equal(dn(c.subject), { O: 'amqp-mesh', CN: 'alice' });
  assert.is(certs.client.cn, 'alice');
  assert.ok(c.checkIssued(ca));
  assert.ok(c.verify(ca.publicKey));
  assert.not.ok(c.ca);
  assert.ok(validNow(c));
  assert.equal(c.keyUsage, [CLIENT_AUTH]);
  assert.ok(c.checkPrivateKey(key(certs.client.key)));
  assert.ok(fs.statSync(certs.client.p12).size > 0);
});

test('client-expired: issued by the CA, valid 2020-01-01 to 2021-01-01 only', () => {
  const ca = x509(certs.ca);
  const c = x509(certs.expired.cert);
  assert.is(dn(c.subject).CN, 'expired');
  assert.ok(c.checkIssued(ca));
  assert.ok(c.verify(ca.publicKey));
  assert.is(new Date(c.validFrom).toISOString(), '2020-01-01T00:00:00.000Z');
  assert.is(new Date(c.validTo).toISOString(), '2021-01-01T00:00:00.000Z');
  assert.ok(Date.parse(c.validTo) < now);
  assert.ok(c.checkPrivateKey(key(certs.expired.key)));
  assert.equal(c.keyUsage, [CLIENT_AUTH]);
});

test('the untrusted CA and its client (mallory) are not the CA and not issued by it', () => {
  const ca = x509(certs.ca);
  const uca = x509(certs.untrustedCa);
  const m = x509(certs.untrustedClient.cert);
  assert.ok(uca.ca);
  assert.is.not(uca.fingerprint256, ca.fingerprint256);
  assert.not.ok(uca.checkIssued(ca));
  assert.is(dn(m.subject).CN, 'mallory');
  assert.ok(m.checkIssued(uca));
  assert.ok(m.verify(uca.publicKey));
  assert.not.ok(m.checkIssued(ca));
  assert.not.ok(m.verify(ca.publicKey));
  assert.ok(validNow(m));
  assert.ok(m.checkPrivateKey(key(certs.untrustedClient.key)));
});

test('wronghost.pem: CN/SAN other.example, issued by the (trusted) CA, fails a localhost check', () => {
  const ca = x509(certs.ca);
  const w = x509(certs.wrongHost.cert);
  assert.is(dn(w.subject).CN, 'other.example');
  assert.is(w.subjectAltName, 'DNS:other.example');
  assert.ok(w.checkIssued(ca));
  assert.ok(w.verify(ca.publicKey));
  assert.ok(validNow(w));
  assert.is(w.checkHost('localhost'), undefined);
  assert.is(w.checkIP('127.0.0.1'), undefined);
  assert.is(w.checkHost('other.example'), 'other.example');
  assert.ok(w.checkPrivateKey(key(certs.wrongHost.key)));
});

test('truststore.p12 exists when keytool does', () => {
  if (findKeytool()) assert.ok(certs.trustStore && fs.statSync(certs.trustStore).size > 0);
  else assert.is(certs.trustStore, undefined);
  assert.ok(fs.statSync(certs.server.p12).size > 0);
});

test('makeClientCert: a device certificate with the given CN and O, made once', () => {
  const ca = x509(certs.ca);
  const d = makeClientCert(dir, 'device-7', { cn: 'device-7', o: 'fleet' });
  assert.is(d.cert, path.join(dir, 'client-device-7.pem'));
  assert.is(d.key, path.join(dir, 'client-device-7-key.pem'));
  const c = x509(d.cert);
  assert.equal(dn(c.subject), { O: 'fleet', CN: 'device-7' });
  assert.ok(c.checkIssued(ca));
  assert.ok(c.checkPrivateKey(key(d.key)));
  const again = makeClientCert(dir, 'device-7', { cn: 'device-7', o: 'fleet' });
  assert.equal(again, d);
  assert.is(x509(again.cert).fingerprint256, c.fingerprint256);
  assert.equal(fs.readdirSync(dir).filter((f) => f.includes('tmp')), []);
});

test('makeClientCert: CN defaults to the name; untrusted: true signs with the untrusted CA', () => {
  const u = makeClientCert(dir, 'eve', { untrusted: true, ou: 'ops' });
  const c = x509(u.cert);
  assert.equal(dn(c.subject), { OU: 'ops', CN: 'eve' });
  assert.ok(c.checkIssued(x509(certs.untrustedCa)));
  assert.not.ok(c.checkIssued(x509(certs.ca)));
});

test('cached per directory: the same set again, in this process (sync and async) and from the marker', async () => {
  const fp = x509(certs.ca).fingerprint256;
  const mtime = fs.statSync(certs.ca).mtimeMs;
  const sync = makeCertsSync(dir);
  assert.equal(sync, certs);
  assert.equal(await makeCerts(dir), certs);
  assert.is(x509(certs.ca).fingerprint256, fp);
  assert.is(fs.statSync(certs.ca).mtimeMs, mtime);
});

test('concurrent calls on a new directory make one set', async () => {
  const d2 = path.join(root, 'concurrent');
  const [a, b] = await Promise.all([makeCerts(d2), makeCerts(d2)]);
  assert.equal(a, b);
  assert.equal(makeCertsSync(d2), a);
  assert.ok(x509(a.server.cert).checkIssued(x509(a.ca)));
  assert.not.ok(fs.existsSync(path.join(d2, '.certs.lock')));
});

test.run();
