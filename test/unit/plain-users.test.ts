/** SASL PLAIN users files (config/plain-users.ts): read, refused line by line, or absent. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../config/errors';
import { loadPlainUsers } from '../../config/plain-users';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plain-users-'));

test('user:password lines, comments skipped; a malformed line is refused at its line', () => {
  const f = path.join(dir, 'ok.users');
  fs.writeFileSync(f, '# users\nalice:secret\n\nbob:pa:ss\n');
  assert.equal({ ...loadPlainUsers(f) }, { alice: 'secret', bob: 'pa:ss' });
  const bad = path.join(dir, 'bad.users');
  fs.writeFileSync(bad, 'alice:secret\nnocolon\n');
  assert.throws(() => loadPlainUsers(bad), (e: unknown) => e instanceof ConfigError && e.line === 2);
});

test('no users file (a Cyrus-style saslConfigDir with only a .conf): no PLAIN users, not an error', () => {
  fs.writeFileSync(path.join(dir, 'tests-mech-EXTERNAL.conf'), 'mech_list: EXTERNAL ANONYMOUS\n');
  assert.equal({ ...loadPlainUsers(path.join(dir, 'tests-mech-EXTERNAL.users')) }, {});
  assert.throws(() => loadPlainUsers(dir), (e: unknown) => e instanceof ConfigError && e.code === 'ERR_CONFIG_READ', 'a directory is still refused');
});

test.run();
