/**
 * `node dist/bench/fuzz.js`: seeded fuzzing of what policy and authentication add (SASL PLAIN and
 * SCRAM exchanges, opens naming vhosts, sessions, links and messages a policy decides on,
 * management request bodies), through the engine and the policy engine the router and broker
 * share. Prints the cases run, crashes, hangs and the refusals seen; then checks that the
 * well-behaved conversations still authenticate and finish. Exit code 1 on any crash or hang.
 *
 * Env: FUZZ_CASES (default 50000), FUZZ_SEED (default 0x5eed5), FUZZ_SLOW_MS (a case slower than
 * this counts as a hang; default 1000).
 */
import { prng } from '../test/support/fuzz';
import { runCleanConversations, runPolicyFuzz } from '../test/support/fuzz-policy';

const cases = Number(process.env.FUZZ_CASES ?? 50_000);
const seed = Number(process.env.FUZZ_SEED ?? 0x5eed5);
const slowMs = Number(process.env.FUZZ_SLOW_MS ?? 1000);

const t0 = Date.now();
const tally = runPolicyFuzz(prng(seed), cases, slowMs, (i) => {
  if ((i + 1) % 10_000 === 0) process.stdout.write(`  ${i + 1} cases, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
});
const clean = runCleanConversations();
const secs = (Date.now() - t0) / 1000;
process.stdout.write(`policy/SASL fuzz: seed 0x${seed.toString(16)}, ${tally.cases} cases in ${secs.toFixed(1)} s: ${tally.crashes.length} crashes, ${tally.hangs.length} hangs\n`);
process.stdout.write(`refusals: ${Object.entries(tally.refusals).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
process.stdout.write(`well-behaved conversations: ${clean.completed} of ${clean.total} authenticated and finished\n`);
for (const line of [...tally.crashes, ...tally.hangs, ...clean.problems].slice(0, 20)) process.stdout.write(`  ${line}\n`);
if (tally.crashes.length || tally.hangs.length || clean.problems.length) process.exitCode = 1;
