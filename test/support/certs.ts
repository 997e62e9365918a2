/**
 * Test certificates for TLS interop tests, made with the `openssl` CLI (OpenSSL 3.0, Debian
 * bookworm). EC P-256 keys: a whole set takes about 0.4 s of openssl runs, plus about 1 s for
 * keytool (the Java trust store).
 *
 *   const c = await makeCerts(path.join(os.tmpdir(), 'amqp-mesh-certs'));   // or makeCertsSync(dir)
 *   tls.connect({ port, ca: fs.readFileSync(c.ca), cert: fs.readFileSync(c.client.cert), ... })
 *   const dev = makeClientCert(dir, 'device-7', { cn: 'device-7', o: 'fleet' });  // more clients
 *
 * What `dir` gets (paths returned in a `Certs` object):
 *
 * | file                                   | what                                                      |
 * |----------------------------------------|-----------------------------------------------------------|
 * | ca.pem, ca-key.pem                     | the test CA (CN=amqp-mesh test CA), 10 years              |
 * | server.pem, server-key.pem             | CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1;     |
 * |                                        | EKU serverAuth + clientAuth (usable by connectors too)     |
 * | server-key-enc.pem, server-password.txt| the same key, PKCS#8 AES-256 encrypted; the password file  |
 * |                                        | holds the password (no newline)                            |
 * | server-chain.pem                       | server.pem followed by ca.pem                              |
 * | client-alice.pem, client-alice-key.pem | CN=alice, O=amqp-mesh, by the CA, EKU clientAuth           |
 * | client-alice.p12                       | the same as PKCS#12 (password `changeit`), for Java        |
 * | client-expired.pem / -key.pem / .p12   | CN=expired, by the CA, valid 2020-01-01 .. 2021-01-01 only  |
 * | untrusted-ca.pem, untrusted-ca-key.pem | a second CA nobody trusts                                  |
 * | client-mallory.pem / -key.pem / .p12   | CN=mallory, by the untrusted CA                            |
 * | wronghost.pem, wronghost-key.pem       | CN=other.example, SAN DNS:other.example, by the (trusted) CA|
 * | truststore.p12                         | ca.pem as a Java trust store (PKCS#12, password `changeit`), |
 * |                                        | made with keytool; absent when no keytool is found          |
 * | server.p12                             | server cert + key as PKCS#12 (`changeit`), for Java servers |
 *
 * Cached per directory: a set is made once (`certs.json` is written last and marks it complete);
 * later calls, in this process or another, return the same paths at once. Processes racing on
 * one directory are serialised with a lock file. makeClientCert() is cached per file too.
 */
import { execFile, execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const OPENSSL = process.env.OPENSSL || 'openssl';
/** Password of every PKCS#12 file (trust store and key stores). */
export const P12_PASSWORD = 'changeit';
/** Password of server-key-enc.pem (also in server-password.txt). */
export const SERVER_KEY_PASSWORD = 'server-secret';
/** Bump when the set of files or their contents change: older cached sets are remade. */
const VERSION = 1;

export interface ClientCert {
  /** Certificate (PEM). */
  cert: string;
  /** Private key (PEM, unencrypted PKCS#8). */
  key: string;
  /** Certificate + key as PKCS#12, password P12_PASSWORD (for Java key stores). */
  p12: string;
  cn: string;
  o?: string;
}

export interface Certs {
  dir: string;
  ca: string;
  caKey: string;
  server: { cert: string; key: string; keyEncrypted: string; passwordFile: string; password: string; chain: string; p12: string };
  /** CN=alice, O=amqp-mesh, signed by the CA. */
  client: ClientCert;
  /** CN=expired, signed by the CA; notBefore 2020-01-01, notAfter 2021-01-01. */
  expired: ClientCert;
  /** The second CA, not trusted by anything. */
  untrustedCa: string;
  untrustedCaKey: string;
  /** CN=mallory, signed by the untrusted CA. */
  untrustedClient: ClientCert;
  /** CN=other.example, SAN DNS:other.example, signed by the trusted CA: fails hostname checks. */
  wrongHost: { cert: string; key: string };
  /** The CA as a PKCS#12 Java trust store, password P12_PASSWORD (undefined when there was no keytool). */
  trustStore?: string;
  p12Password: string;
}

export interface ClientCertOptions {
  /** Subject CN (default: the name). */
  cn?: string;
  /** Subject O. */
  o?: string;
  /** Subject OU. */
  ou?: string;
  /** Sign with the untrusted CA instead of the test CA. */
  untrusted?: boolean;
  /** Validity in days from now (default 3650). */
  days?: number;
}

// ------------------------------------------------------------------------------------------
// Plans: generators that yield openssl argument lists, run by a sync or an async driver.

/** A command line: program, then its arguments. */
type Step = string[];
type Plan = Generator<Step, void, void>;

const EXT = `# amqp-mesh test certificates
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer

[wronghost]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:other.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
`;

/** Minimal `openssl ca` configuration: the only way in OpenSSL 3.0 to pick a validity in the past. */
function caConfig(workDir: string, caCert: string, caKey: string): string {
  return `[ca]
default_ca = test_ca

[test_ca]
dir = ${workDir}
database = ${workDir}/index.txt
new_certs_dir = ${workDir}
serial = ${workDir}/serial
certificate = ${caCert}
private_key = ${caKey}
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
x509_extensions = client

[any]
commonName = supplied
organizationName = optional
organizationalUnitName = optional

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
`;
}

const serial = () => '0x' + crypto.randomBytes(15).toString('hex').replace(/^[89a-f]/, '7');

function subject(cn: string, o?: string, ou?: string): string {
  const esc = (s: string) => s.replace(/[/\\=+,]/g, (c) => '\\' + c);
  return `${o ? `/O=${esc(o)}` : ''}${ou ? `/OU=${esc(ou)}` : ''}/CN=${esc(cn)}`;
}

/** A key (EC P-256, PKCS#8 PEM) and a CSR. */
function* keyAndCsr(key: string, csr: string, subj: string): Plan {
  yield [OPENSSL, 'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', subj, '-out', csr];
}

/** Signs `csr` with a CA using section `ext` of ext.cnf. */
function* sign(dir: string, csr: string, out: string, caCert: string, caKey: string, ext: string, days: number): Plan {
  yield [OPENSSL, 'x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', serial(), '-days', String(days),
    '-sha256', '-extfile', path.join(dir, 'ext.cnf'), '-extensions', ext, '-out', out];
}

function* selfSignedCa(dir: string, cert: string, key: string, cn: string): Plan {
  yield [OPENSSL, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', `/O=amqp-mesh tests/CN=${cn}`,
    '-days', '3650', '-sha256', '-set_serial', serial(), '-config', path.join(dir, 'ext.cnf'), '-extensions', 'ca', '-out', cert];
}

function* p12(out: string, cert: string, key: string, name: string): Plan {
  yield [OPENSSL, 'pkcs12', '-export', '-in', cert, '-inkey', key, '-name', name, '-out', out, '-passout', `pass:${P12_PASSWORD}`];
}

function clientPaths(dir: string, name: string): { cert: string; key: string; p12: string } {
  return { cert: path.join(dir, `client-${name}.pem`), key: path.join(dir, `client-${name}-key.pem`), p12: path.join(dir, `client-${name}.p12`) };
}

function* clientPlan(dir: string, name: string, opts: ClientCertOptions, alias = name): Plan {
  const p = clientPaths(dir, name);
  const csr = path.join(dir, `client-${name}.csr`);
  yield* keyAndCsr(p.key, csr, subject(opts.cn ?? alias, opts.o, opts.ou));
  const [ca, caKey] = opts.untrusted ? ['untrusted-ca.pem', 'untrusted-ca-key.pem'] : ['ca.pem', 'ca-key.pem'];
  yield* sign(dir, csr, p.cert, path.join(dir, ca), path.join(dir, caKey), 'client', opts.days ?? 3650);
  yield* p12(p.p12, p.cert, p.key, alias);
  fs.rmSync(csr, { force: true });
}

function* expiredPlan(dir: string, name: string, cn: string): Plan {
  const p = clientPaths(dir, name);
  const work = fs.mkdtempSync(path.join(dir, '.ca-'));
  try {
    fs.writeFileSync(path.join(work, 'index.txt'), '');
    fs.writeFileSync(path.join(work, 'serial'), crypto.randomBytes(8).toString('hex').replace(/^[89a-f]/, '7') + '\n');
    const cnf = path.join(work, 'ca.cnf');
    fs.writeFileSync(cnf, caConfig(work, path.join(dir, 'ca.pem'), path.join(dir, 'ca-key.pem')));
    const csr = path.join(work, 'req.csr');
    yield* keyAndCsr(p.key, csr, subject(cn, 'amqp-mesh'));
    yield [OPENSSL, 'ca', '-batch', '-config', cnf, '-notext', '-startdate', '20200101000000Z', '-enddate', '20210101000000Z',
      '-in', csr, '-out', p.cert];
    yield* p12(p.p12, p.cert, p.key, name);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function certsFor(dir: string): Certs {
  const f = (n: string) => path.join(dir, n);
  return {
    dir,
    ca: f('ca.pem'),
    caKey: f('ca-key.pem'),
    server: {
      cert: f('server.pem'), key: f('server-key.pem'), keyEncrypted: f('server-key-enc.pem'),
      passwordFile: f('server-password.txt'), password: SERVER_KEY_PASSWORD, chain: f('server-chain.pem'), p12: f('server.p12'),
    },
    client: { ...clientPaths(dir, 'alice'), cn: 'alice', o: 'amqp-mesh' },
    expired: { ...clientPaths(dir, 'expired'), cn: 'expired', o: 'amqp-mesh' },
    untrustedCa: f('untrusted-ca.pem'),
    untrustedCaKey: f('untrusted-ca-key.pem'),
    untrustedClient: { ...clientPaths(dir, 'mallory'), cn: 'mallory', o: 'amqp-mesh' },
    wrongHost: { cert: f('wronghost.pem'), key: f('wronghost-key.pem') },
    trustStore: f('truststore.p12'),
    p12Password: P12_PASSWORD,
  };
}

function* allPlan(dir: string): Plan {
  const c = certsFor(dir);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), EXT);
  yield* selfSignedCa(dir, c.ca, c.caKey, 'amqp-mesh test CA');
  yield* selfSignedCa(dir, c.untrustedCa, c.untrustedCaKey, 'untrusted test CA');

  const csr = path.join(dir, 'server.csr');
  yield* keyAndCsr(c.server.key, csr, '/O=amqp-mesh/CN=localhost');
  yield* sign(dir, csr, c.server.cert, c.ca, c.caKey, 'server', 3650);
  fs.writeFileSync(c.server.passwordFile, SERVER_KEY_PASSWORD);
  yield [OPENSSL, 'pkcs8', '-topk8', '-in', c.server.key, '-v2', 'aes-256-cbc', '-passout', `file:${c.server.passwordFile}`, '-out', c.server.keyEncrypted];
  yield* p12(c.server.p12, c.server.cert, c.server.key, 'server');
  fs.writeFileSync(c.server.chain, fs.readFileSync(c.server.cert, 'utf8') + fs.readFileSync(c.ca, 'utf8'));

  const wcsr = path.join(dir, 'wronghost.csr');
  yield* keyAndCsr(c.wrongHost.key, wcsr, '/O=amqp-mesh/CN=other.example');
  yield* sign(dir, wcsr, c.wrongHost.cert, c.ca, c.caKey, 'wronghost', 3650);
  fs.rmSync(csr, { force: true });
  fs.rmSync(wcsr, { force: true });

  yield* clientPlan(dir, 'alice', { cn: 'alice', o: 'amqp-mesh' });
  yield* clientPlan(dir, 'mallory', { cn: 'mallory', o: 'amqp-mesh', untrusted: true });
  yield* expiredPlan(dir, 'expired', 'expired');

  // Java trust store. OpenSSL 3.0's pkcs12 cannot mark a certificate as trusted for Java (-jdktrust
  // came in 3.2), and Java ignores certificates without that mark, so keytool makes it.
  const keytool = findKeytool();
  const trustStore = path.join(dir, 'truststore.p12');
  fs.rmSync(trustStore, { force: true });
  if (keytool) {
    yield [keytool, '-importcert', '-noprompt', '-storetype', 'PKCS12', '-keystore', trustStore, '-storepass', P12_PASSWORD,
      '-alias', 'amqp-mesh-test-ca', '-file', c.ca];
  }
}

// ------------------------------------------------------------------------------------------
// Drivers

/** keytool (JDK/JRE), from PATH or JAVA_HOME; undefined when there is none. */
export function findKeytool(): string | undefined {
  const candidates = [
    ...(process.env.JAVA_HOME ? [path.join(process.env.JAVA_HOME, 'bin', 'keytool')] : []),
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((d) => path.join(d, 'keytool')),
  ];
  return candidates.find((f) => {
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function runSync(plan: Plan): void {
  for (const [cmd, ...args] of plan) {
    try {
      execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as { stderr?: Buffer; stdout?: Buffer; message: string };
      throw new Error(`${cmd} ${args.join(' ')} failed: ${(err.stderr?.toString() + (err.stdout?.toString() ?? '')).trim() || err.message}`);
    }
  }
}

async function runAsync(plan: Plan): Promise<void> {
  for (const [cmd, ...args] of plan) {
    await new Promise<void>((resolve, reject) => {
      execFile(cmd, args, (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${(String(stderr) + String(stdout)).trim() || err.message}`));
        else resolve();
      });
    });
  }
}

const MARK = 'certs.json';

function complete(dir: string): Certs | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, MARK), 'utf8')) as { version: number; certs: Certs };
    if (m.version !== VERSION) return undefined;
    const files = [m.certs.ca, m.certs.server.cert, m.certs.client.cert, m.certs.expired.cert, m.certs.wrongHost.cert];
    return files.every((f) => fs.existsSync(f)) ? m.certs : undefined;
  } catch {
    return undefined;
  }
}

const LOCK = '.certs.lock';
const STALE_LOCK_MS = 60_000;

/** Tries to take dir's lock: true when taken (a stale lock is broken). */
function tryLock(dir: string): boolean {
  const lock = path.join(dir, LOCK);
  try {
    fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    try {
      if (Date.now() - fs.statSync(lock).mtimeMs > STALE_LOCK_MS) fs.rmSync(lock, { force: true });
    } catch {
      /* gone meanwhile */
    }
    return false;
  }
}

function unlock(dir: string): void {
  fs.rmSync(path.join(dir, LOCK), { force: true });
}

function finish(dir: string): Certs {
  const certs = certsFor(dir);
  if (!certs.trustStore || !fs.existsSync(certs.trustStore)) delete certs.trustStore;
  fs.writeFileSync(path.join(dir, MARK), JSON.stringify({ version: VERSION, certs }, null, 2));
  return certs;
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Makes (or finds) the certificate set in `dir` (created if missing), synchronously. */
export function makeCertsSync(dir: string): Certs {
  dir = path.resolve(dir);
  fs.mkdirSync(dir, { recursive: true });
  const deadline = Date.now() + 2 * STALE_LOCK_MS;
  for (;;) {
    const done = complete(dir);
    if (done) return done;
    if (tryLock(dir)) {
      try {
        const again = complete(dir);
        if (again) return again;
        runSync(allPlan(dir));
        return finish(dir);
      } finally {
        unlock(dir);
      }
    }
    if (Date.now() > deadline) throw new Error(`makeCerts: ${dir}/${LOCK} held too long`);
    sleepSync(50);
  }
}

const inFlight = new Map<string, Promise<Certs>>();

/** Makes (or finds) the certificate set in `dir` (created if missing). */
export function makeCerts(dir: string): Promise<Certs> {
  dir = path.resolve(dir);
  let p = inFlight.get(dir);
  if (!p) {
    p = (async () => {
      fs.mkdirSync(dir, { recursive: true });
      const deadline = Date.now() + 2 * STALE_LOCK_MS;
      for (;;) {
        const done = complete(dir);
        if (done) return done;
        if (tryLock(dir)) {
          try {
            const again = complete(dir);
            if (again) return again;
            await runAsync(allPlan(dir));
            return finish(dir);
          } finally {
            unlock(dir);
          }
        }
        if (Date.now() > deadline) throw new Error(`makeCerts: ${dir}/${LOCK} held too long`);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    p.catch(() => inFlight.delete(dir!));
    inFlight.set(dir, p);
  }
  return p;
}

/**
 * A client certificate `client-<name>.pem` / `client-<name>-key.pem` / `client-<name>.p12` in `dir`
 * (made by makeCertsSync first if needed), e.g. makeClientCert(dir, 'device-7', { cn: 'device-7', o: 'fleet' }).
 * Signed by the test CA (or the untrusted one with `untrusted: true`). Made once: an existing
 * file is returned as it is (so one name is one subject per directory). Synchronous: two openssl runs.
 */
export function makeClientCert(dir: string, name: string, opts: ClientCertOptions = {}): ClientCert {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`makeClientCert: bad name ${JSON.stringify(name)}`);
  const certs = makeCertsSync(dir);
  const p = clientPaths(certs.dir, name);
  const result: ClientCert = { ...p, cn: opts.cn ?? name, ...(opts.o ? { o: opts.o } : {}) };
  if ([p.cert, p.key, p.p12].every((f) => fs.existsSync(f))) return result;
  // made under the directory's lock: another process may be making the same name
  const deadline = Date.now() + 2 * STALE_LOCK_MS;
  while (!tryLock(certs.dir)) {
    if (Date.now() > deadline) throw new Error(`makeClientCert: ${certs.dir}/${LOCK} held too long`);
    sleepSync(50);
  }
  try {
    if (![p.cert, p.key, p.p12].every((f) => fs.existsSync(f))) {
      // write under temporary names, then rename: a reader never sees half a set
      const tmp = `tmp${process.pid}-${name}`;
      runSync(clientPlan(certs.dir, tmp, opts, name));
      const t = clientPaths(certs.dir, tmp);
      fs.renameSync(t.key, p.key);
      fs.renameSync(t.p12, p.p12);
      fs.renameSync(t.cert, p.cert);
    }
  } finally {
    unlock(certs.dir);
  }
  return result;
}
