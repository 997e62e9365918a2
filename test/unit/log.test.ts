// Logger: qdrouterd-style enable strings and per-module outputs (no sockets, no files).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Logger, parseEnable } from '../../lib/log';

test('enable strings: "info+" is info and above, lists and "none"', () => {
  assert.equal([...parseEnable('info+')], ['info', 'notice', 'warning', 'error', 'critical']);
  assert.equal([...parseEnable('trace,error')], ['trace', 'error']);
  assert.equal([...parseEnable('none')], []);
});

test('modules inherit DEFAULT unless configured; output and timestamps per module', () => {
  const dflt: string[] = [];
  const server: string[] = [];
  const log = new Logger((l) => dflt.push(l));
  log.configure('DEFAULT', 'warning+');
  log.configure('SERVER', 'debug+', { write: (l) => server.push(l), includeTimestamp: false });
  log.log('ROUTER', 'info', 'hidden');
  log.log('ROUTER', 'error', 'shown');
  log.log('SERVER', 'debug', 'to server output');
  assert.is(dflt.length, 1);
  assert.match(dflt[0], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ROUTER \(error\) shown$/);
  assert.equal(server, ['SERVER (debug) to server output']);
});

test.run();
