/**
 * Authentication on a real router process: users added with `amqp-mesh users add` (salted SCRAM
 * credentials), qpid-jms authenticating with SCRAM-SHA-256 and SCRAM-SHA-1,
 * rhea with PLAIN against the same hashed file, wrong passwords refused and logged with peer and
 * mechanism, and a host that keeps failing slowed down while others are served.
 *
 *   qpid-jms --SCRAM-SHA-256 / SCRAM-SHA-1--> [R listener: authenticatePeer, SCRAM + PLAIN]
 *   rhea --PLAIN---------------------------------------> [R]     users: <dir>/qdrouterd.users (users add)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import rhea = require('rhea');
import { BIN, RunningRouter, startRouter } from '../support/router';
import { jmsAvailable, jmsUrl, runJms } from '../support/jms';
import { ask, rows } from '../support/management';
import { RawClient } from '../support/raw-client';
import { ScramClient } from '../../amqp/sasl/scram';
import { collect, once, rheaConnect, waitFor } from './helpers';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amqp-mesh-auth-'));
const USERS = path.join(dir, 'qdrouterd.users');

function usersAdd(name: string, password: string): { code: number | null; out: string } {
  const pw = path.join(dir, `${name}.pw`);
  fs.writeFileSync(pw, `${password}\n`, { mode: 0o600 });
  const r = spawnSync(process.execPath, [BIN, 'users', 'add', USERS, name, '--password-file', pw], { encoding: 'utf8' });
  fs.rmSync(pw);
  return { code: r.status, out: r.stdout + r.stderr };
}

let r: RunningRouter;

test.before(async () => {
  assert.equal(usersAdd('alice', 'alice-secret'), { code: 0, out: `user alice added in ${USERS}\n` });
  assert.equal(usersAdd('bob', 'bob-secret').code, 0);
  r = await startRouter(`
router {
    mode: standalone
    id: R1
    saslConfigDir: ${dir}
}
listener {
    host: 127.0.0.1
    port: 0
    authenticatePeer: yes
    saslMechanisms: SCRAM-SHA-256 SCRAM-SHA-1 PLAIN
}
`);
});
test.after(async () => {
  assert.is(await r.stop(), 0);
});

test('users add keeps no password in the file; a bad name is refused with exit code and reason', () => {
  const text = fs.readFileSync(USERS, 'utf8');
  assert.not.ok(text.includes('alice-secret'));
  assert.match(text, /^alice:\$scram\$4096\$/m);
  const bad = usersAdd('a:b', 'x');
  assert.is(bad.code, 1);
  assert.match(bad.out, /must be non-empty, without spaces or ':'/);
});

// qpid-jms --SCRAM-SHA-256 / SCRAM-SHA-1 alice--> [R] (Debian's Proton has no Cyrus SASL: qpid-jms is the SCRAM client we did not write)
test('qpid-jms authenticates with SCRAM-SHA-256 and SCRAM-SHA-1; a wrong password is refused and logged with mechanism, user and peer', async () => {
  if (!jmsAvailable()) return;
  // The consumer (rhea, PLAIN bob): the router gives the JMS producer credit and relays its outcomes.
  const consumer = await rheaConnect(r, 0, { username: 'bob', password: 'bob-secret' } as Partial<rhea.ConnectionOptions>);
  const rx = consumer.conn.open_receiver('q.scram');
  await once(rx as never, 'receiver_open');
  const got = collect(rx);
  try {
    for (const mech of ['SCRAM-SHA-256', 'SCRAM-SHA-1']) {
      const run = await runJms({ url: jmsUrl(`amqp://127.0.0.1:${r.port}`, {}, { 'amqp.saslMechanisms': mech }), address: 'q.scram', count: 2, mode: 'send', user: 'alice', password: 'alice-secret', timeout: 15 }, 90_000);
      assert.is(run.code, 0, `${mech}: ${JSON.stringify(run.result)}`);
      assert.is(run.result.sent, 2, 'each PERSISTENT send got its outcome');
    }
    await waitFor(() => got.messages.length === 4, 5000, 'the four messages delivered');
  } finally {
    await consumer.close();
  }
  const mark = r.log.length;
  const bad = await runJms({ url: jmsUrl(`amqp://127.0.0.1:${r.port}`, {}, { 'amqp.saslMechanisms': 'SCRAM-SHA-256' }), address: 'q.scram', count: 1, user: 'alice', password: 'wrong', timeout: 10 }, 90_000);
  assert.is.not(bad.code, 0, JSON.stringify(bad.result));
  await waitFor(() => r.log.slice(mark).some((l) => /Authentication failed: SCRAM-SHA-256 user "alice" from 127\.0\.0\.1:\d+ .*wrong password/.test(l)), 5000, 'the failure logged with mechanism, user and peer');
});

// rhea --PLAIN bob--> [R]: PLAIN checks the salted credentials
test('PLAIN against salted credentials: the right password opens, a wrong one is refused', async () => {
  const c = await rheaConnect(r, 0, { username: 'bob', password: 'bob-secret' } as Partial<rhea.ConnectionOptions>);
  await c.close();
  const container = rhea.create_container();
  const conn = container.connect({ host: '127.0.0.1', port: r.port, username: 'bob', password: 'nope', reconnect: false } as rhea.ConnectionOptions);
  let opened = false;
  let error: { condition?: string } | undefined;
  conn.on('connection_open', () => { opened = true; });
  // rhea reports a SASL refusal as an error of the container.
  container.on('error', (e: { condition?: string }) => { error = e; });
  await once(conn as never, 'disconnected');
  assert.not.ok(opened, 'a wrong PLAIN password does not open');
  assert.is(error?.condition, 'amqp:unauthorized-access');
});

// raw SCRAM client --many wrong proofs from 127.0.0.1--> [R]: later connections from that host wait
test('a host that keeps failing is slowed down (its new connections wait), and its failures are logged', async () => {
  const attempt = async (password: string): Promise<number> => {
    const c = await RawClient.connect(r.port);
    c.header(3);
    await c.waitForFrame((f) => f.name === 'sasl-mechanisms');
    const scram = new ScramClient('SCRAM-SHA-256', 'bob', password);
    c.saslInit('SCRAM-SHA-256', scram.first(), 'localhost');
    const challenge = await c.waitForFrame((f) => f.name === 'sasl-challenge');
    c.saslResponse(scram.final(challenge.fields[0] as Buffer));
    const outcome = await c.waitForFrame((f) => f.name === 'sasl-outcome');
    c.destroy();
    return outcome.fields[0] as number;
  };
  const mark = r.log.length;
  for (let i = 0; i < 4; i++) assert.is(await attempt('guess'), 1, 'sasl-outcome auth');
  await waitFor(() => r.log.slice(mark).some((l) => /Connection from 127\.0\.0\.1:\d+ on .* waits \d+ ms: 4 recent failed authentications from 127\.0\.0\.1/.test(l)), 5000,
    'the fifth connection from the failing host is held back');
  assert.is(await attempt('bob-secret'), 0, 'the right password still works (later)');
  // Counted in management: logStats AUTHSERVICE warningCount is the number of failures.
  const failures = r.log.filter((l) => / AUTHSERVICE \(warning\) .*Authentication failed/.test(l)).length;
  assert.ok(failures >= 4);
  const [stats] = (await ask(`amqp://bob:bob-secret@127.0.0.1:${r.port}`, [{ properties: { operation: 'QUERY', type: 'org.apache.qpid.dispatch.logStats' }, body: { attributeNames: ['name', 'warningCount'] } }])).replies;
  assert.equal(rows(stats).find((x) => x.name === 'AUTHSERVICE')?.warningCount, failures);
});

test.run();
