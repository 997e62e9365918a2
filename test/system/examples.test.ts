// Examples run against a real router process.
//
//   examples/hello-world (rhea sender, rhea receiver) --> [R1 standalone]
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { ROOT, startRouter, standaloneConfig } from '../support/router';

test('examples/hello-world: the message arrives and the sender sees accepted', async () => {
  const r = await startRouter(standaloneConfig());
  try {
    const out = spawnSync(process.execPath, [path.join(ROOT, 'examples', 'hello-world', 'hello.js'), String(r.port)], { encoding: 'utf8', timeout: 10_000 });
    assert.is(out.status, 0, out.stderr);
    assert.match(out.stdout, /received: Hello, mesh!/);
    assert.match(out.stdout, /outcome: accepted/);
  } finally {
    await r.stop();
  }
});

test.run();
