/**
 * SASL users files (config/users.ts) and SCRAM (amqp/sasl/scram.ts): salted credentials written
 * by `users add`, the older clear form read with a warning, malformed lines refused by line, and
 * SCRAM-SHA-256 / SCRAM-SHA-1 exchanges against RFC 7677's and RFC 5802's published examples.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../config/errors';
import { addUser, loadUsers } from '../../config/users';
import { ScramClient, ScramError, ScramServer, computeCredentials, computeScramKeys, verifyPassword } from '../../amqp/sasl/scram';
import { AuthThrottle } from '../../amqp/sasl/throttle';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'users-'));

test('user:password lines are still read (with a warning naming the lines); a malformed line is refused at its line', () => {
  const f = path.join(dir, 'ok.users');
  fs.writeFileSync(f, '# users\nalice:secret\n\nbob:pa:ss\n');
  const u = loadUsers(f);
  assert.ok(u.checkPassword('alice', 'secret'));
  assert.ok(u.checkPassword('bob', 'pa:ss'));
  assert.not.ok(u.checkPassword('alice', 'wrong'));
  assert.not.ok(u.checkPassword('carol', 'secret'));
  assert.equal(u.warnings, [`${f}:2: 2 passwords are kept in clear (lines 2, 4); store salted hashes with: amqp-mesh users add ${f} NAME`]);
  assert.ok(u.credentials('alice'), 'SCRAM works for a clear password too (keys derived once)');
  const bad = path.join(dir, 'bad.users');
  fs.writeFileSync(bad, 'alice:secret\nnocolon\n');
  assert.throws(() => loadUsers(bad), (e: unknown) => e instanceof ConfigError && e.line === 2);
  fs.writeFileSync(bad, 'alice:$scram$12$AAAA$x$y$z$w\n');
  assert.throws(() => loadUsers(bad), (e: unknown) => e instanceof ConfigError && e.line === 1 && /iterations 12 out of range/.test(e.message));
});

test('no users file (a Cyrus-style saslConfigDir with only a .conf): no users, not an error', () => {
  fs.writeFileSync(path.join(dir, 'tests-mech-EXTERNAL.conf'), 'mech_list: EXTERNAL ANONYMOUS\n');
  assert.is(loadUsers(path.join(dir, 'tests-mech-EXTERNAL.users')).entries.size, 0);
  assert.throws(() => loadUsers(dir), (e: unknown) => e instanceof ConfigError && e.code === 'ERR_CONFIG_READ', 'a directory is still refused');
});

test('users add writes salted credentials (no password in the file, mode 0600), replaces a user, keeps other lines', () => {
  const f = path.join(dir, 'add.users');
  fs.writeFileSync(f, '# fleet\nold:clear-text\n');
  assert.is(addUser(f, 'alice', 'alice-secret'), 'added');
  assert.is(addUser(f, 'alice', 'new-secret'), 'replaced');
  const text = fs.readFileSync(f, 'utf8');
  assert.not.ok(text.includes('secret'), 'the password is not in the file');
  assert.match(text, /^# fleet\nold:clear-text\nalice:\$scram\$4096\$/);
  assert.is(fs.statSync(f).mode & 0o777, 0o600);
  const u = loadUsers(f);
  assert.ok(u.checkPassword('alice', 'new-secret'));
  assert.not.ok(u.checkPassword('alice', 'alice-secret'));
  assert.equal(u.warnings.length, 1, 'only the clear line is warned about');
  assert.throws(() => addUser(f, 'a b', 'x'), /without spaces/);
});

test('SCRAM-SHA-256: RFC 7677\'s example exchange', () => {
  // RFC 7677 section 3: user "user", password "pencil".
  const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
  const creds = { salt, iterations: 4096, sha256: computeScramKeys('sha256', 'pencil', salt, 4096), sha1: computeScramKeys('sha1', 'pencil', salt, 4096) };
  const server = new ScramServer('SCRAM-SHA-256', (u) => (u === 'user' ? creds : undefined), '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0');
  const first = server.onClientFirst(Buffer.from('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
  assert.is(first.toString(), 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
  const final = server.onClientFinal(Buffer.from('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ='));
  assert.is(final.toString(), 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  assert.is(server.user, 'user');
});

test('SCRAM-SHA-1: RFC 5802\'s example exchange', () => {
  const salt = Buffer.from('QSXCR+Q6sek8bf92', 'base64');
  const creds = { salt, iterations: 4096, sha256: computeScramKeys('sha256', 'pencil', salt, 4096), sha1: computeScramKeys('sha1', 'pencil', salt, 4096) };
  const server = new ScramServer('SCRAM-SHA-1', () => creds, '3rfcNHYJY1ZVvWVs7j');
  assert.is(server.onClientFirst(Buffer.from('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL')).toString(), 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096');
  const final = server.onClientFinal(Buffer.from('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts='));
  assert.is(final.toString(), 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=');
});

test('SCRAM refusals: wrong password, unknown user (indistinguishable until the end), replayed nonce, channel binding, oversize', () => {
  const creds = computeCredentials('right');
  const lookup = (u: string) => (u === 'alice' ? creds : undefined);
  const run = (user: string, password: string) => {
    const client = new ScramClient('SCRAM-SHA-256', user, password);
    const server = new ScramServer('SCRAM-SHA-256', lookup);
    const serverFirst = server.onClientFirst(client.first());
    return { server, client, serverFirst, final: () => server.onClientFinal(client.final(serverFirst)) };
  };
  const ok = run('alice', 'right');
  assert.ok(ok.client.verify(ok.final()), 'the client verifies the server\'s signature');
  assert.throws(() => run('alice', 'wrong').final(), (e: unknown) => e instanceof ScramError && /wrong password/.test((e as Error).message));
  const unknown = run('mallory', 'x');
  assert.match(unknown.serverFirst.toString(), /^r=.+,s=.+,i=4096$/, 'an unknown user gets a salt too');
  assert.throws(() => unknown.final(), /unknown user/);
  const s = new ScramServer('SCRAM-SHA-256', lookup);
  s.onClientFirst(Buffer.from('n,,n=alice,r=abc'));
  assert.throws(() => s.onClientFinal(Buffer.from('c=biws,r=abcOTHER,p=AAAA')), /nonce differs/);
  assert.throws(() => new ScramServer('SCRAM-SHA-256', lookup).onClientFirst(Buffer.from('p=tls-unique,,n=alice,r=x')), /channel binding/);
  assert.throws(() => new ScramServer('SCRAM-SHA-256', lookup).onClientFirst(Buffer.alloc(5000, 0x61)), /5000 bytes/);
  assert.throws(() => new ScramServer('SCRAM-SHA-256', lookup).onClientFirst(Buffer.from('n,,n=a=ZZ,r=x')), /malformed user name/);
  assert.ok(verifyPassword(creds, 'right'));
  assert.not.ok(verifyPassword(creds, 'Right'));
});

test('the throttle: a host past its free failures waits (doubling, capped); others and old failures do not count', () => {
  const t = new AuthThrottle({ freeFailures: 3, windowMs: 60_000, baseDelayMs: 250, maxDelayMs: 5_000, maxHosts: 2 });
  for (let i = 0; i < 3; i++) t.onFailure('10.0.0.1', 1000);
  assert.is(t.computeDelay('10.0.0.1', 1000), 250, 'the 4th connection after 3 failures waits');
  t.onFailure('10.0.0.1', 1000);
  t.onFailure('10.0.0.1', 1000);
  assert.is(t.computeDelay('10.0.0.1', 1000), 1000);
  for (let i = 0; i < 20; i++) t.onFailure('10.0.0.1', 2000);
  assert.is(t.computeDelay('10.0.0.1', 2000), 5000, 'capped');
  assert.is(t.computeDelay('10.0.0.2', 2000), 0, 'another host is not slowed');
  assert.is(t.computeDelay('10.0.0.1', 2000 + 60_001), 0, 'forgotten a window after the last failure');
  t.onFailure('a', 0);
  t.onFailure('b', 0);
  t.onFailure('c', 0);
  assert.is(t.failures('a', 0), 0, 'at most maxHosts remembered: the oldest goes');
  t.onSuccess('c');
  assert.is(t.failures('c', 0), 0);
  assert.is(t.failuresTotal, 28);
});

test.run();
