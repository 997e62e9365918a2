// A listener's failoverUrls (qdrouterd's listener attribute, and its deprecated name failoverList)
// announced to clients in the open frame's failover-server-list, in qdrouterd's form: a list of
// maps of symbol keys to strings, network-host and port, and scheme only where the entry wrote one.
//
//   rhea client --(listener 0: none | listener 1: failoverList | listener 2: failoverUrls)--> R1
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rheaConnect, standaloneConfig, withRouter } from './helpers';

const CONFIG = standaloneConfig(
  'listener {\n    host: 127.0.0.1\n    port: 0\n    failoverList: other-host:25000\n}\n' +
    'listener {\n    host: 127.0.0.1\n    port: 0\n    failoverUrls: second-host:25000, amqps://third-host:5671\n}\n',
);

test('failover-server-list in the open frame, per listener, as qdrouterd announces it', async () => {
  await withRouter(async (r) => {
    const seen: unknown[] = [];
    for (const index of [0, 1, 2]) {
      const c = await rheaConnect(r, index);
      const props = (c.conn as unknown as { remote: { open: { properties?: Record<string, unknown> } } }).remote.open.properties ?? {};
      seen.push(props['failover-server-list'] ?? null);
      await c.close();
    }
    assert.equal(seen, [
      null,
      [{ 'network-host': 'other-host', port: '25000' }],
      [{ 'network-host': 'second-host', port: '25000' }, { 'network-host': 'third-host', port: '5671', scheme: 'amqps' }],
    ]);
  }, CONFIG, { listeners: 3 });
});

test.run();
