// The broker with clients we did not write: Proton (python3-qpid-proton).
//
//   proton send.py / tx.py --> [broker B1, dataDir D] --> proton receive.py / tx.py
//
// Durable messages survive kill -9; AMQP local transactions (coordinator link) commit and roll
// back sends and acknowledgements.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runProton } from '../support/proton';
import { brokerConfig, startBroker, tempDir, withBroker } from './broker-helpers';

const url = (port: number) => `amqp://127.0.0.1:${port}`;

test('Proton: 200 durable messages accepted, broker killed -9, all 200 received after restart in order', async () => {
  const dataDir = tempDir();
  const cfg = brokerConfig(dataDir);
  let b = await startBroker(cfg);
  try {
    const tx = await runProton('send.py', ['--url', url(b.port), '--address', 'proton.q', '--count', '200', '--durable', '--timeout', '10']);
    assert.is(tx.code, 0, tx.stderr);
    assert.is(tx.result.accepted, 200);
    await b.kill('SIGKILL');
    b = await startBroker(cfg);
    const rx = await runProton('receive.py', ['--url', url(b.port), '--address', 'proton.q', '--count', '200', '--timeout', '10']);
    assert.is(rx.code, 0, rx.stderr);
    assert.is(rx.result.received, 200);
    assert.equal(rx.result.messages, Array.from({ length: 200 }, (_, i) => `message-${i}`));
  } finally {
    await b.stop();
  }
});

test('Proton transactions: committed sends arrive, rolled-back ones do not; rolled-back acknowledgements redeliver, committed ones remove', async () => {
  await withBroker(async (b) => {
    const rolled = await runProton('tx.py', ['--url', url(b.port), '--address', 'txq', '--mode', 'send', '--count', '5', '--rollback']);
    assert.is(rolled.code, 0, JSON.stringify(rolled.result) + rolled.stderr);
    assert.is(rolled.result.outcome, 'aborted');
    const committed = await runProton('tx.py', ['--url', url(b.port), '--address', 'txq', '--mode', 'send', '--count', '3']);
    assert.is(committed.code, 0, JSON.stringify(committed.result) + committed.stderr);
    assert.is(committed.result.outcome, 'committed');

    const ackRolled = await runProton('tx.py', ['--url', url(b.port), '--address', 'txq', '--mode', 'receive', '--count', '3', '--rollback']);
    assert.is(ackRolled.code, 0, JSON.stringify(ackRolled.result));
    assert.equal(ackRolled.result.received, ['tx-0', 'tx-1', 'tx-2'], 'only the committed sends are in the queue');
    assert.is(ackRolled.result.outcome, 'aborted');

    const ackCommitted = await runProton('tx.py', ['--url', url(b.port), '--address', 'txq', '--mode', 'receive', '--count', '3']);
    assert.is(ackCommitted.code, 0, JSON.stringify(ackCommitted.result));
    assert.equal(ackCommitted.result.received, ['tx-0', 'tx-1', 'tx-2'], 'rolled-back acknowledgements left the messages');
    assert.is(ackCommitted.result.outcome, 'committed');

    const empty = await runProton('receive.py', ['--url', url(b.port), '--address', 'txq', '--count', '1', '--timeout', '1']);
    assert.is(empty.result.received, 0, 'committed acknowledgements removed them');
  });
});

test.run();
