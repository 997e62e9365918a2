/**
 * How soon two routers route to each other once their inter-router connection is up: from R2's
 * "inter-router connection ... up" log line to its first "routes: R1 via R1" (both timestamps
 * from the router's own log, so process start-up is not counted).
 *
 *   [R1] <--inter-router-- [R2]      `runs` times, fresh processes each time
 *
 *   node dist/bench/adjacency.js [RUNS] [BIN ...]   one line per build (default: this tree's)
 */
import { THIS_BIN, interiorConfig, startRouterProcess, until } from './router-proc';

const STAMP = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})/;

function stampOf(log: string[], re: RegExp): number | null {
  const line = log.find((l) => re.test(l));
  const m = line === undefined ? null : STAMP.exec(line);
  return m === null ? null : Date.parse(m[1]!.replace(' ', 'T') + 'Z');
}

/** Milliseconds from connection up to routable, once per run, sorted. */
export async function measureAdjacency(runs: number, bin = THIS_BIN): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r1 = await startRouterProcess({ bin, config: interiorConfig('R1', []), listeners: ['ir'] });
    const r2 = await startRouterProcess({ bin, config: interiorConfig('R2', [r1.ports.ir]), listeners: ['ir'] });
    try {
      const up = () => stampOf(r2.log, /inter-router connection \d+ to R1 up/);
      const routed = () => stampOf(r2.log, /routes: .*R1 via R1/);
      await until(() => up() !== null && routed() !== null, 10_000, 'R2 to route to R1');
      out.push(routed()! - up()!);
    } finally {
      await r2.stop();
      await r1.stop();
    }
  }
  return out.sort((a, b) => a - b);
}

/** Prints the figure for one build (`label` names it). */
export async function benchAdjacency(runs: number, bin = THIS_BIN, label = 'two routers'): Promise<void> {
  const ms = await measureAdjacency(runs, bin);
  console.log(`${label}, inter-router connection up -> routable: median ${ms[Math.floor(ms.length / 2)]} ms, min ${ms[0]}, max ${ms[ms.length - 1]} (${runs} runs)`);
}

if (require.main === module) {
  (async () => {
    const runs = Number(process.argv[2] ?? 10);
    const bins = process.argv.length > 3 ? process.argv.slice(3) : [THIS_BIN];
    for (const bin of bins) await benchAdjacency(runs, bin, bin);
  })().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
