// Path computation on large meshes, without sockets. Each test draws its mesh.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LinkStateRecord, Routes, computeRoutes } from '../../router/core/paths';
import { computeMulticastHops } from '../../router/core/mesh';

type Edge = [string, string, number];

/** Link-state database where both ends report each link with its cost. */
function db(edges: Edge[]): Map<string, LinkStateRecord> {
  const m = new Map<string, Map<string, number>>();
  const add = (a: string, b: string, c: number) => {
    if (!m.has(a)) m.set(a, new Map());
    m.get(a)!.set(b, c);
  };
  for (const [a, b, c] of edges) {
    add(a, b, c);
    add(b, a, c);
  }
  return new Map([...m].map(([k, peers]) => [k, { peers }]));
}

/** Reference shortest costs by Bellman-Ford (independent of the implementation). */
function referenceCosts(self: string, d: Map<string, LinkStateRecord>): Map<string, number> {
  const dist = new Map<string, number>([[self, 0]]);
  for (let i = 0; i < d.size; i++) {
    for (const [a, ls] of d) {
      const da = dist.get(a);
      if (da === undefined) continue;
      for (const [b, c] of ls.peers) if (!dist.has(b) || da + c < dist.get(b)!) dist.set(b, da + c);
    }
  }
  dist.delete(self);
  return dist;
}

/**
 * Floods one multicast message from `origin` the way routers forward it: a router sends a copy
 * towards destination D through nextHop(D) when origin is one of D's valid origins (one copy per
 * neighbour). Returns how many copies each router received.
 */
function flood(origin: string, d: Map<string, LinkStateRecord>, routes: Map<string, Routes>): Map<string, number> {
  const received = new Map<string, number>();
  const queue: string[] = [origin];
  received.set(origin, 1);
  let guard = 0;
  while (queue.length > 0) {
    if (guard++ > 100_000) throw new Error('forwarding loop');
    const at = queue.shift()!;
    // The forwarder's own rule (valid-origin trees); the trace is left empty so only the
    // trees, not loop exclusion, keep copies unique.
    const neighbours = computeMulticastHops(at, origin, [], routes.get(at)!, routes.get(at)!.nextHops.keys());
    for (const n of neighbours) {
      received.set(n, (received.get(n) ?? 0) + 1);
      queue.push(n);
    }
  }
  return received;
}

function grid(w: number, h: number, cost = (_a: string, _b: string) => 1): Edge[] {
  const id = (x: number, y: number) => `R${y * w + x}`;
  const edges: Edge[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (x + 1 < w) edges.push([id(x, y), id(x + 1, y), cost(id(x, y), id(x + 1, y))]);
      if (y + 1 < h) edges.push([id(x, y), id(x, y + 1), cost(id(x, y), id(x, y + 1))]);
    }
  }
  return edges;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A connected random mesh: a random spanning tree plus extra links, random costs 1..5. */
function randomMesh(n: number, extra: number, seed: number): Edge[] {
  const r = rng(seed);
  const edges: Edge[] = [];
  const seen = new Set<string>();
  const add = (a: number, b: number) => {
    const k = a < b ? `${a}-${b}` : `${b}-${a}`;
    if (a === b || seen.has(k)) return;
    seen.add(k);
    edges.push([`R${a}`, `R${b}`, 1 + Math.floor(r() * 5)]);
  };
  for (let i = 1; i < n; i++) add(i, Math.floor(r() * i));
  for (let i = 0; i < extra; i++) add(Math.floor(r() * n), Math.floor(r() * n));
  return edges;
}

// 8 x 8 grid, unit costs (64 routers):
//   R0 - R1 - ... - R7
//   |    |          |
//   R8 - R9 - ... - R15
//   ...
//   R56 - ...     - R63
test('64-router grid: every router reachable, costs are Manhattan distances, next hops are neighbours', () => {
  const d = db(grid(8, 8));
  const r = computeRoutes('R0', d);
  assert.is(r.costs.size, 63);
  for (let i = 1; i < 64; i++) {
    const x = i % 8, y = Math.floor(i / 8);
    assert.is(r.costs.get(`R${i}`), x + y, `cost to R${i}`);
    assert.ok(['R1', 'R8'].includes(r.nextHops.get(`R${i}`)!), `next hop to R${i}`);
  }
  assert.is(r.radius, 14);
});

// 80 random routers, 60 extra links, costs 1..5 (drawn by seed): costs match Bellman-Ford.
test('80-router random mesh: Dijkstra costs equal an independent Bellman-Ford, for every router', () => {
  const d = db(randomMesh(80, 60, 7));
  const all = new Map([...d.keys()].map((r) => [r, computeRoutes(r, d)]));
  for (const self of d.keys()) {
    const r = all.get(self)!;
    assert.equal(new Map([...r.costs].sort()), new Map([...referenceCosts(self, d)].sort()), `costs from ${self}`);
    // The next hop is a neighbour, and going through it costs the same.
    for (const [dest, hop] of r.nextHops) {
      const link = d.get(self)!.peers.get(hop)!;
      assert.ok(link !== undefined, `${hop} is a neighbour of ${self}`);
      const rest = hop === dest ? 0 : all.get(hop)!.costs.get(dest)!;
      assert.is(link + rest, r.costs.get(dest), `${self} -> ${dest} via ${hop}`);
    }
  }
});

// Multicast over meshes with loops: 8x8 grid (many squares), 64-ring, random 72 routers.
test('multicast by valid origins reaches every router exactly once (grid, ring, random; every origin)', () => {
  const ring: Edge[] = Array.from({ length: 64 }, (_, i) => [`R${i}`, `R${(i + 1) % 64}`, 1] as Edge);
  for (const [name, edges] of [['grid', grid(8, 8)], ['ring', ring], ['random', randomMesh(72, 50, 11)]] as const) {
    const d = db(edges as Edge[]);
    const routes = new Map([...d.keys()].map((r) => [r, computeRoutes(r, d)]));
    for (const origin of [...d.keys()].filter((_, i) => i % 9 === 0)) {
      const got = flood(origin, d, routes);
      assert.is(got.size, d.size, `${name} from ${origin}: every router reached`);
      for (const [r, n] of got) assert.is(n, 1, `${name} from ${origin}: ${r} got ${n} copies`);
    }
  }
});

// A link cut in the grid: R0-R1 removed; R1 now reached via R8 ... at cost 3.
test('link cut: paths move around the cut, costs grow', () => {
  const edges = grid(8, 8).filter(([a, b]) => !(a === 'R0' && b === 'R1'));
  const r = computeRoutes('R0', db(edges));
  assert.is(r.nextHops.get('R1'), 'R8');
  assert.is(r.costs.get('R1'), 3);
});

// A partition: ring of 64 cut in two places -> two halves; healed -> one mesh again.
test('partition and heal: unreachable routers vanish from the routes, then return', () => {
  const ring: Edge[] = Array.from({ length: 64 }, (_, i) => [`R${i}`, `R${(i + 1) % 64}`, 1] as Edge);
  const cut = ring.filter(([a, b]) => !((a === 'R10' && b === 'R11') || (a === 'R40' && b === 'R41')));
  // The far half still has link states in the database (stale ones age out elsewhere).
  const split = computeRoutes('R0', db(cut));
  assert.not.ok(split.costs.has('R20'));
  assert.ok(split.costs.has('R50'));
  assert.is(split.nextHops.get('R50'), 'R63');
  const healed = computeRoutes('R0', db(ring));
  assert.is(healed.costs.get('R20'), 20);
  assert.is(healed.costs.size, 63);
});

// Stand-in states: R1 lists R2, but R2's own link state has not arrived yet.
//   R0 -- R1 -- R2(no state)
test('a peer known only from another router\'s link state is reachable (stand-in state)', () => {
  const d = new Map<string, LinkStateRecord>([
    ['R0', { peers: new Map([['R1', 1]]) }],
    ['R1', { peers: new Map([['R0', 1], ['R2', 4]]) }],
  ]);
  const r = computeRoutes('R0', d);
  assert.is(r.nextHops.get('R2'), 'R1');
  assert.is(r.costs.get('R2'), 5);
});

// Closest picks the cheaper of two paths:   R0 --1-- R1 --1-- R3
//                                            \--5-- R2 --1--/
test('cheaper path wins over fewer hops only by cost', () => {
  const r = computeRoutes('R0', db([['R0', 'R1', 1], ['R1', 'R3', 1], ['R0', 'R2', 5], ['R2', 'R3', 1], ['R0', 'R4', 10], ['R4', 'R3', 1]]));
  assert.is(r.nextHops.get('R3'), 'R1');
  assert.is(r.costs.get('R3'), 2);
});

test.run();
