/**
 * Run the qpid-jms (Apache Qpid JMS 2.x) test client JmsClient from tests. Builds it first when
 * needed (build.sh: Maven, a no-op when up to date).
 *
 *   const c = await makeCerts(dir);
 *   const url = jmsUrl(`amqps://localhost:${port}`, jmsTls(c, { client: c.client }));
 *   const r = await runJms({ url, address: 'q', count: 5 });
 *   assert.equal(r.code, 0); assert.equal(r.result.received, 5);
 *
 *   const rx = startJms({ url, address: 'q', count: 5, mode: 'receive' });
 *   await rx.ready;            // the consumer is attached
 *
 * URLs: amqp://, amqps://, amqpws://, amqpwss:// (WebSocket path from the URL, subprotocol "amqp").
 */
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Certs, ClientCert } from '../certs';
import { JsonChild, JsonChildRun, startJsonChild } from '../json-child';

export interface JmsOptions {
  /** qpid-jms connection URI, with transport.* / jms.* query options (see jmsUrl). */
  url: string;
  /** Queue (or topic) name. */
  address: string;
  count: number;
  /** both (default): consumer attached, then send count and receive count; send; receive. */
  mode?: 'both' | 'send' | 'receive';
  /** Use a topic instead of a queue (the link gets the "topic" capability). */
  topic?: boolean;
  /** Seconds: connect, send and receive timeouts (default 10). */
  timeout?: number;
  user?: string;
  password?: string;
  /** Bodies are TextMessages `${bodyPrefix}${i}` (default "message-"). */
  bodyPrefix?: string;
  /** Send NON_PERSISTENT (qpid-jms sends those without waiting for the outcome); default PERSISTENT. */
  nonPersistent?: boolean;
  clientId?: string;
  /** Extra JVM options, e.g. ['-Djavax.net.debug=ssl:handshake']. */
  jvmArgs?: string[];
}

export interface JmsResult {
  sent: number;
  received: number;
  /** TextMessage text; BytesMessage as `bytes:<base64>`; anything else String.valueOf(body). */
  bodies: string[];
  timed_out: boolean;
  /** On failure (exit code 1): the exception's message, class, and innermost cause ("class: message"). */
  error?: string;
  error_class?: string;
  cause?: string;
}

/** qpid-jms transport options for TLS (values for jmsUrl). */
export interface JmsTlsOptions {
  trustStore?: string;
  trustStorePassword?: string;
  keyStore?: string;
  keyStorePassword?: string;
  keyAlias?: string;
  /** Check the server certificate's host name (qpid-jms default: true). */
  verifyHost?: boolean;
  /** Trust any server certificate. */
  trustAll?: boolean;
}

/** Folder of pom.xml and build.sh (works from test/... and from dist/test/...). */
export function jmsDir(): string {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'test', 'support', 'jms');
    if (fs.existsSync(path.join(candidate, 'pom.xml'))) return candidate;
    if (fs.existsSync(path.join(dir, 'pom.xml')) && fs.existsSync(path.join(dir, 'build.sh'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`test/support/jms/pom.xml not found above ${__dirname}`);
    dir = parent;
  }
}

/** Where build.sh puts the jar (its default; override with AMQP_MESH_JMS_OUT). */
export function jmsOutDir(): string {
  return process.env.AMQP_MESH_JMS_OUT || path.join(process.env.TMPDIR || '/tmp', 'amqp-mesh-jms');
}

function javaBin(): string {
  return process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
}

let available: boolean | undefined;
/** True when java and mvn run here (use to skip tests on machines without them). */
export function jmsAvailable(): boolean {
  if (available === undefined) {
    const ok = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
    available = ok(javaBin(), ['-version']) && ok('mvn', ['-v']);
  }
  return available;
}

let built: Promise<string> | undefined;
/**
 * Builds the client when needed (bash build.sh: a no-op when up to date; the first build on a
 * machine downloads from Maven Central, about 15 s). Resolves with the jar's path. Memoised.
 */
export function buildJmsClient(): Promise<string> {
  if (!built) {
    built = new Promise<string>((resolve, reject) => {
      execFile('bash', [path.join(jmsDir(), 'build.sh'), jmsOutDir()], { timeout: 600_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        const jar = stdout.trim().split('\n').pop() ?? '';
        if (err || !jar.endsWith('.jar') || !fs.existsSync(jar)) {
          reject(new Error(`test/support/jms/build.sh failed: ${err?.message ?? ''}\n${stderr}`));
        } else resolve(jar);
      });
    });
    built.catch(() => (built = undefined));
  }
  return built;
}

/** Synchronous buildJmsClient(), e.g. for a test file's top level. */
export function buildJmsClientSync(): string {
  const r = spawnSync('bash', [path.join(jmsDir(), 'build.sh'), jmsOutDir()], { encoding: 'utf8', timeout: 600_000, maxBuffer: 16 << 20 });
  const jar = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !jar.endsWith('.jar')) throw new Error(`test/support/jms/build.sh failed (${r.status}):\n${r.stderr}`);
  return jar;
}

/**
 * Appends qpid-jms transport options to `base` (`amqps://localhost:5671`, `amqpwss://localhost:443/path`, ...).
 * `extra` adds any other option, e.g. { 'amqp.idleTimeout': 0, 'jms.username': 'u' }.
 */
export function jmsUrl(base: string, tls: JmsTlsOptions = {}, extra: Record<string, string | number | boolean> = {}): string {
  const q: [string, string][] = [];
  const add = (k: string, v: string | number | boolean | undefined) => {
    if (v !== undefined) q.push([k, String(v)]);
  };
  add('transport.trustStoreLocation', tls.trustStore);
  add('transport.trustStorePassword', tls.trustStorePassword);
  if (tls.trustStore) add('transport.trustStoreType', 'PKCS12');
  add('transport.keyStoreLocation', tls.keyStore);
  add('transport.keyStorePassword', tls.keyStorePassword);
  if (tls.keyStore) add('transport.keyStoreType', 'PKCS12');
  add('transport.keyAlias', tls.keyAlias);
  add('transport.verifyHost', tls.verifyHost);
  add('transport.trustAll', tls.trustAll);
  for (const [k, v] of Object.entries(extra)) add(k, v);
  if (!q.length) return base;
  const enc = (s: string) => encodeURIComponent(s).replace(/%2F/gi, '/');
  return base + (base.includes('?') ? '&' : '?') + q.map(([k, v]) => `${k}=${enc(v)}`).join('&');
}

/**
 * TLS options from a makeCerts() set: trust the test CA (truststore.p12); with `client`, present
 * that client certificate (its .p12). `trustStore: false` leaves the JVM's default trust (so the
 * test CA is not trusted).
 */
export function jmsTls(certs: Certs, o: { client?: ClientCert; verifyHost?: boolean; trustStore?: boolean } = {}): JmsTlsOptions {
  const t: JmsTlsOptions = {};
  if (o.trustStore !== false) {
    if (!certs.trustStore) throw new Error('makeCerts made no truststore.p12 (keytool was not found)');
    t.trustStore = certs.trustStore;
    t.trustStorePassword = certs.p12Password;
  }
  if (o.client) {
    t.keyStore = o.client.p12;
    t.keyStorePassword = certs.p12Password;
  }
  if (o.verifyHost !== undefined) t.verifyHost = o.verifyHost;
  return t;
}

/** JmsClient's command line (after the jar) for `o`. */
export function jmsArgs(o: JmsOptions): string[] {
  const a = [o.url, o.address, String(o.count)];
  if (o.mode) a.push('--mode', o.mode);
  if (o.topic) a.push('--topic');
  if (o.timeout !== undefined) a.push('--timeout', String(o.timeout));
  if (o.user !== undefined) a.push('--user', o.user);
  if (o.password !== undefined) a.push('--password', o.password);
  if (o.bodyPrefix !== undefined) a.push('--body-prefix', o.bodyPrefix);
  if (o.nonPersistent) a.push('--non-persistent');
  if (o.clientId !== undefined) a.push('--client-id', o.clientId);
  return a;
}

/** Starts JmsClient with an already built jar (see buildJmsClient). */
export function startJmsWithJar(jar: string, o: JmsOptions, killAfterMs = 60000): JsonChild<JmsResult> {
  return startJsonChild<JmsResult>(javaBin(), ['-Xshare:auto', '-XX:TieredStopAtLevel=1', ...(o.jvmArgs ?? []), '-jar', jar, ...jmsArgs(o)], killAfterMs);
}

/** Builds if needed, then starts JmsClient; `ready` resolves once a receiving consumer is attached. */
export function startJms(o: JmsOptions, killAfterMs = 60000): JsonChild<JmsResult> {
  let inner: JsonChild<JmsResult> | undefined;
  let killed = false;
  const started = buildJmsClient().then((jar) => {
    inner = startJmsWithJar(jar, o, killAfterMs);
    if (killed) inner.kill();
    return inner;
  });
  const ready = started.then((c) => c.ready);
  ready.catch(() => undefined);
  return {
    ready,
    done: started.then((c) => c.done),
    kill: () => {
      killed = true;
      inner?.kill();
    },
  };
}

/** Builds if needed, then runs JmsClient to completion. */
export async function runJms(o: JmsOptions, killAfterMs = 60000): Promise<JsonChildRun<JmsResult>> {
  return startJms(o, killAfterMs).done;
}
