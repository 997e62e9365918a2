// Seeded, bounded fuzzing of real processes: mutated client conversations against a router and
// a broker. Each case is one connection that sends a recorded valid conversation (SASL, open,
// begin, attach, flow, transfers, disposition, detach, end, close; test/support/fuzz.ts) after
// one to three mutations (bit flips, truncations, huge counts and sizes, swapped format codes,
// repeated and dropped runs).
//
//   fuzz cases (16 at a time) ---> listener 0 (idleTimeoutSeconds 1) --\
//                                                                       [router R1]
//   good peer (rx + tx) ----------> listener 1 (defaults) -------------/
//
//   fuzz cases (16 at a time) ---> listener 0 (idleTimeoutSeconds 1) --\
//                                                                       [broker B1, in memory]
//   good peer (rx + tx) ----------> listener 1 (defaults) -------------/
//
// For every case: the process stays alive; the connection ends with an AMQP close (with or
// without a condition) or a socket close within the idle limit, never hangs; nothing is logged
// as an internal error (an exception other than a protocol refusal). The good peer, connected
// throughout, round-trips a message every 50 cases and at the end, and a new client can connect.
// A failing case is reproduced from SEED and its index (the message names its mutations);
// FUZZ_STATS=1 prints how the cases ended.
// @runs-alone: CPU-bound.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RawClient } from '../support/raw-client';
import { RunningRouter, startRouter, standaloneConfig } from '../support/router';
import { RunningBroker, startBroker, tempDir } from '../support/broker';
import { waitFor } from '../support/wait';
import { afterHeaders, clientTraffic, firstTransferAt, mutate, prng } from '../support/fuzz';
import { GoodPeer } from './helpers';

const SEED = 20261206;
const CASES = 300;
const CONCURRENCY = 16;
/** The listeners' idle timeout: a case that leaves the connection waiting ends by it. */
const IDLE_MS = 1000;
/** How long past the idle limit a case may take before it counts as a hang (a loaded machine). */
const SLACK_MS = 4000;

let r: RunningRouter;
let b: RunningBroker;
const peers: GoodPeer[] = [];

const GOOD_LISTENER = 'listener {\n    host: 127.0.0.1\n    port: 0\n}\n';
let brokerFuzzPort = 0, brokerGoodPort = 0;

test.before(async () => {
  r = await startRouter(standaloneConfig(GOOD_LISTENER, `    idleTimeoutSeconds: ${IDLE_MS / 1000}\n`), { listeners: 2 });
  b = await startBroker(
    `broker {\n    id: B1\n    dataDir: ${tempDir()}\n    persistent: false\n}\n` +
    `listener {\n    host: 127.0.0.1\n    port: 0\n    saslMechanisms: ANONYMOUS PLAIN\n    idleTimeoutSeconds: ${IDLE_MS / 1000}\n}\n` +
    GOOD_LISTENER,
  );
  // The broker reports each listener's port in its log, in config order.
  const ports = await waitFor(() => {
    const p = b.log.map((l) => l.match(/Listening on [^\s]+:(\d+)/)).filter((m) => m !== null).map((m) => Number((m as RegExpMatchArray)[1]));
    return p.length >= 2 ? p : null;
  }, 10_000, 'both broker listeners');
  [brokerFuzzPort, brokerGoodPort] = ports;
});

test.after(async () => {
  for (const p of peers.splice(0)) p.close();
  if (r) await r.stop();
  if (b) await b.stop();
});

interface Outcome {
  /** 'close+condition', 'close', or 'socket' (closed without a close frame). */
  end: string;
  ms: number;
}

/**
 * One case: connect, send the mutated conversation (pausing where a client would wait for
 * credit), and wait until the connection is over: a close frame or the socket closing.
 */
async function runCase(port: number, bytes: Buffer, pauseAt: number): Promise<Outcome> {
  const t0 = Date.now();
  const c = await RawClient.connect(port);
  try {
    c.send(bytes.subarray(0, pauseAt));
    // A client waits for credit before sending; a mutated stream may never get any.
    await waitFor(() => c.closed || c.frames.some((f) => f.name === 'flow' || f.name === 'close'), 300, 'credit').catch(() => undefined);
    c.send(bytes.subarray(pauseAt));
    await waitFor(() => c.closed || c.frames.some((f) => f.name === 'close'), IDLE_MS + SLACK_MS, 'the connection to end');
    const close = c.frames.find((f) => f.name === 'close');
    const end = close === undefined ? 'socket' : close.fields[0] != null ? 'close+condition' : 'close';
    return { end, ms: Date.now() - t0 };
  } finally {
    c.destroy();
  }
}

/** Runs CASES mutated conversations against `port`, CONCURRENCY at a time; returns outcome counts. */
async function fuzz(port: number, seed: number, good: GoodPeer, alive: () => void): Promise<Record<string, number>> {
  const rand = prng(seed);
  const traffic = clientTraffic('fuzz.q');
  const headersEnd = afterHeaders(traffic);
  const transfersAt = firstTransferAt(traffic);
  // Mutations are drawn up front so the cases do not depend on scheduling.
  const cases = Array.from({ length: CASES }, (_, i) => {
    const m = mutate(traffic, rand, rand() < 0.15 ? 0 : headersEnd);
    return { i, ...m, pauseAt: Math.min(transfersAt, m.bytes.length) };
  });
  const counts: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const k = cases[next++];
      let o: Outcome;
      try {
        o = await runCase(port, k.bytes, k.pauseAt);
      } catch (e) {
        throw new Error(`case ${k.i} (seed ${seed}; ${k.ops.join(' ')}): ${(e as Error).message}`);
      }
      counts[o.end] = (counts[o.end] ?? 0) + 1;
      if (k.i % 50 === 49) {
        alive();
        await good.roundTrip();
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return counts;
}

test(`router: ${CASES} mutated conversations; it lives, every connection ends within the idle limit, others keep working`, async () => {
  const good = await GoodPeer.start(r.ports[1], 'closest/fuzz-good');
  peers.push(good);
  const alive = () => assert.is(r.proc.exitCode, null, `router exited:\n${r.log.slice(-30).join('\n')}`);
  const counts = await fuzz(r.ports[0], SEED, good, alive);
  if (process.env.FUZZ_STATS) console.log('router outcomes', counts);
  alive();
  assert.is(Object.values(counts).reduce((a, n) => a + n, 0), CASES);
  const internal = r.log.filter((l) => /internal error/.test(l));
  assert.equal(internal, [], 'no internal errors');
  await good.roundTrip();
  const fresh = await GoodPeer.start(r.ports[1], 'closest/fuzz-fresh');
  peers.push(fresh);
  await fresh.roundTrip();
});

test(`broker: ${CASES} mutated conversations; it lives, every connection ends within the idle limit, others keep working`, async () => {
  const good = await GoodPeer.start(brokerGoodPort, 'fuzz.good');
  peers.push(good);
  const alive = () => assert.is(b.exitCode, undefined, `broker exited:\n${b.log.slice(-30).join('\n')}`);
  const counts = await fuzz(brokerFuzzPort, SEED + 1, good, alive);
  if (process.env.FUZZ_STATS) console.log('broker outcomes', counts);
  alive();
  assert.is(Object.values(counts).reduce((a, n) => a + n, 0), CASES);
  const internal = b.log.filter((l) => /internal error/.test(l));
  assert.equal(internal, [], 'no internal errors');
  await good.roundTrip();
  const fresh = await GoodPeer.start(brokerGoodPort, 'fuzz.fresh');
  peers.push(fresh);
  await fresh.roundTrip();
});

test.run();
