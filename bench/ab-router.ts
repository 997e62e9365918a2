/**
 * A/B of router builds on plain TCP with the same client: each round starts build A's router,
 * runs mesh_perf (Proton-C) with each window, stops it, then does the same with build B (the order
 * flips every round, A B B A ..., so drift and warm caches favour neither). Prints every run and,
 * per build and window, min / median / max msg/s, median p50 / p99 and the router's CPU per
 * message, and each build's median over the first build's.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/ab-router.js [BASE_TREE] [NEW_TREE] [MORE_TREES...]
 *
 * BASE_TREE defaults to /work/wt-base (the tree before the layout change), NEW_TREE to this one;
 * each needs its dist/ built (`npm ci` or `npx tsc -p tsconfig.json` there). A work tree others
 * are editing is a moving target: `bash bench/ab-snapshot.sh COMMIT` makes a built copy of a
 * commit to pass instead. With more than two trees the order rotates every round. Env: AB_ROUNDS
 * (default 4), AB_MESSAGES (default 500000), AB_WINDOWS (default 250,1000), AB_WARMUP (messages
 * sent through each fresh router before measuring, default 200000: a fresh router carries its
 * first few hundred thousand messages slower (JIT, heap growth); 0: none), AB_QUIET (default 1:
 * before each measured run wait, up to 30 s, for a second in which the machine is at most 15%
 * busy; 0: don't wait).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { QUIET_LOG, startRouterProcess, waitQuiet } from './router-proc';
import { buildCClients, runMeshPerf, type MeshPerfResult } from './tools';

const THIS_TREE = path.resolve(__dirname, '..', '..');

interface Build {
  label: string;
  tree: string;
  bin: string;
  rev: string;
}

function describeTree(label: string, tree: string): Build {
  // A snapshot from ab-snapshot.sh is named after its commit and has no .git.
  if (!fs.existsSync(path.join(tree, '.git'))) return { label, tree, bin: checkBuilt(tree), rev: path.basename(tree) };
  const bin = checkBuilt(tree);
  let rev = '?';
  try {
    rev = execFileSync('git', ['-C', tree, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    // Changed tracked files outside bench/ (the bench itself does not change the router).
    const changed = execFileSync('git', ['-C', tree, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' })
      .split('\n').filter((l) => l.trim() && !/^.. bench\//.test(l)).length;
    if (changed) rev += `+${changed} changed files`;
  } catch {
    /* not a git tree */
  }
  return { label, tree, bin, rev };
}

function checkBuilt(tree: string): string {
  const bin = path.join(tree, 'bin', 'amqp-mesh.js');
  if (!fs.existsSync(bin)) throw new Error(`${tree}: no bin/amqp-mesh.js`);
  if (!fs.existsSync(path.join(tree, 'dist', 'router'))) throw new Error(`${tree}: dist/ not built (run npm ci or npx tsc -p tsconfig.json there)`);
  return bin;
}

const CONFIG = 'router {\n  mode: standalone\n  id: BenchAB\n}\nlistener {\n  name: ab-plain\n  host: 127.0.0.1\n  port: 0\n}\n' + QUIET_LOG;

function stats(xs: number[]): { min: number; med: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { min: s[0], med, max: s[s.length - 1] };
}

const k = (x: number) => `${Math.round(x / 1000)}k`;

async function main(): Promise<void> {
  const trees = process.argv.slice(2);
  if (trees.length === 0) trees.push('/work/wt-base');
  if (trees.length === 1) trees.push(THIS_TREE);
  const builds = trees.map((t, i) => describeTree(trees.length === 2 ? ['old', 'new'][i] : String.fromCharCode(65 + i), path.resolve(t)));
  const base = builds[0];
  const rounds = Number(process.env.AB_ROUNDS ?? 4);
  const messages = Number(process.env.AB_MESSAGES ?? 500_000);
  const windows = (process.env.AB_WINDOWS ?? '250,1000').split(',').map(Number);
  const warmup = Number(process.env.AB_WARMUP ?? 200_000);
  const quiet = process.env.AB_QUIET !== '0';
  const bin = buildCClients();
  console.log(`A/B, plain TCP, Proton-C mesh_perf, ${messages.toLocaleString('en')} x 100 bytes, unsettled, windows ${windows.join(' and ')}, ${rounds} rounds, warm-up ${warmup.toLocaleString('en')}; ${os.cpus().length} cores, node ${process.version}`);
  for (const b of builds) console.log(`  ${b.label}: ${b.tree} (${b.rev})`);

  const res = new Map<string, { r: MeshPerfResult; cpu: number; round: number }[]>();
  const loads: number[] = [];
  const busies: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = builds.length === 2 ? (round % 2 === 0 ? builds : [...builds].reverse()) : [...builds.slice(round % builds.length), ...builds.slice(0, round % builds.length)];
    for (const b of order) {
      const router = await startRouterProcess({ bin: b.bin, config: CONFIG, listeners: ['ab-plain'] });
      const url = `amqp://127.0.0.1:${router.ports['ab-plain']}`;
      try {
        if (warmup > 0) await runMeshPerf({ binary: bin, url, address: `ab.warmup.${round}`, messages: warmup, bodySize: 100 });
        for (const window of windows) {
          const busy = quiet ? await waitQuiet() : 0;
          busies.push(busy);
          const load = os.loadavg()[0];
          loads.push(load);
          const cpu0 = router.cpuSeconds();
          const r = await runMeshPerf({ binary: bin, url, address: `ab.${window}.${round}`, messages, bodySize: 100, credit: window, window });
          const cpu = ((router.cpuSeconds() - cpu0) * 1e6) / messages;
          const key = `${b.label}/${window}`;
          if (!res.has(key)) res.set(key, []);
          res.get(key)!.push({ r, cpu, round });
          console.log(`  round ${round + 1} ${b.label} window ${String(window).padStart(4)}: ${Math.round(r.msgsPerSec).toLocaleString('en').padStart(7)} msg/s  p50 ${(r.p50Us / 1000).toFixed(2)} ms  p99 ${(r.p99Us / 1000).toFixed(2)} ms  router ${cpu.toFixed(2)} µs CPU/msg  (load ${load.toFixed(2)}${quiet ? `, ${Math.round(busy * 100)}% busy before` : ''})`);
        }
      } finally {
        await router.stop();
      }
    }
  }
  console.log(`\n| build | window | min msg/s | median | max | median p50 | median p99 | router CPU/msg (median) |`);
  console.log('|---|---|---|---|---|---|---|---|');
  for (const window of windows) {
    for (const b of builds) {
      const rs = res.get(`${b.label}/${window}`)!;
      const s = stats(rs.map((x) => x.r.msgsPerSec));
      console.log(`| ${b.label} (${b.rev}) | ${window} | ${k(s.min)} | ${k(s.med)} | ${k(s.max)} | ${(stats(rs.map((x) => x.r.p50Us)).med / 1000).toFixed(2)} ms | ${(stats(rs.map((x) => x.r.p99Us)).med / 1000).toFixed(2)} ms | ${stats(rs.map((x) => x.cpu)).med.toFixed(2)} µs |`);
    }
    const baseRuns = res.get(`${base.label}/${window}`)!;
    const o = stats(baseRuns.map((x) => x.r.msgsPerSec)).med;
    for (const b of builds.slice(1)) {
      const runs = res.get(`${b.label}/${window}`)!;
      const n = stats(runs.map((x) => x.r.msgsPerSec)).med;
      // Each round's pair ran back to back: the median of their ratios is less exposed to drift.
      const paired = stats(runs.map((x) => x.r.msgsPerSec / baseRuns.find((y) => y.round === x.round)!.r.msgsPerSec));
      console.log(`| ${b.label} / ${base.label} | ${window} | ${paired.min.toFixed(2)} | ${(n / o).toFixed(2)} (rounds' ratios: median ${paired.med.toFixed(2)}) | ${paired.max.toFixed(2)} | | | |`);
    }
  }
  const l = stats(loads);
  console.log(`\n1-minute load average during the runs: ${l.min.toFixed(2)} .. ${l.max.toFixed(2)} (median ${l.med.toFixed(2)})`);
  if (quiet) {
    const q = stats(busies);
    console.log(`CPU busy in the second before each run: ${Math.round(q.min * 100)}% .. ${Math.round(q.max * 100)}% (median ${Math.round(q.med * 100)}%)`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
