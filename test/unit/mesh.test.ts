// The control plane of many routers, simulated without sockets: each router is a MeshEngine;
// a simulated network carries HELLOs over connections, routes LSR/LSU/MAR hop by hop with each
// router's own next hops, and floods RA/MAU with a trace (as qdrouterd's T addresses). Time is
// stepped by hand.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ControlDestination, ControlMessage, MESH_DEFAULTS, MeshEngine } from '../../router/core/mesh';
import { Routes } from '../../router/core/paths';

interface Envelope { to: string; from: string; conn: number | null; dest: ControlDestination; msg: ControlMessage; trace: string[] }

class Net {
  readonly engines = new Map<string, MeshEngine>();
  readonly routes = new Map<string, Routes>();
  readonly addresses = new Map<string, Map<string, Set<string>>>(); // router -> remote router -> keys
  /** connId -> [a, b] */
  readonly conns = new Map<number, [string, string]>();
  private nextConn = 1;
  readonly frozen = new Set<string>();
  /** Drops the envelopes it returns true for (lost messages). */
  drop: (env: Envelope) => boolean = () => false;
  private queue: Envelope[] = [];
  now = 0;
  delivered = 0;

  add(id: string): MeshEngine {
    const e = new MeshEngine({ id, instance: 1000, ...MESH_DEFAULTS }, {
      sendControl: (dest, msg) => this.send(id, dest, msg),
      routesChanged: (r) => this.routes.set(id, r),
      remoteAddressesChanged: (rid, added, removed) => {
        const mine = this.addresses.get(id) ?? new Map<string, Set<string>>();
        this.addresses.set(id, mine);
        const set = mine.get(rid) ?? new Set<string>();
        mine.set(rid, set);
        for (const [k] of added) set.add(k);
        for (const k of removed) set.delete(k);
      },
      log: () => {},
    });
    this.engines.set(id, e);
    return e;
  }

  connect(a: string, b: string, cost = 1): number {
    const id = this.nextConn++;
    this.conns.set(id, [a, b]);
    this.engines.get(a)!.onConnectionUp(id, cost, this.now);
    this.engines.get(b)!.onConnectionUp(id, cost, this.now);
    return id;
  }

  cut(connId: number): void {
    const [a, b] = this.conns.get(connId)!;
    this.conns.delete(connId);
    this.engines.get(a)!.onConnectionDown(connId, this.now);
    this.engines.get(b)!.onConnectionDown(connId, this.now);
  }

  private connBetween(a: string, b: string): number | null {
    for (const [id, [x, y]] of this.conns) if ((x === a && y === b) || (x === b && y === a)) return id;
    return null;
  }

  private neighboursOf(a: string): [string, number][] {
    const out: [string, number][] = [];
    for (const [id, [x, y]] of this.conns) {
      if (x === a) out.push([y, id]);
      else if (y === a) out.push([x, id]);
    }
    return out;
  }

  private send(from: string, dest: ControlDestination, msg: ControlMessage, trace: string[] = [from]): void {
    if (dest.kind === 'connection') {
      const [x, y] = this.conns.get(dest.connId) ?? [];
      if (x === undefined) return;
      this.queue.push({ to: x === from ? y! : x, from, conn: dest.connId, dest, msg, trace });
    } else if (dest.kind === 'all') {
      // Control floods go to every neighbour not in the trace; receivers forward a flood only on
      // first sighting (MeshEngine.firstSighting), as the router's I/O does.
      for (const [n, c] of this.neighboursOf(from)) if (!trace.includes(n)) this.queue.push({ to: n, from, conn: c, dest, msg, trace });
    } else {
      const hop = this.routes.get(from)?.nextHops.get(dest.id) ?? (this.connBetween(from, dest.id) !== null ? dest.id : undefined);
      // Loop prevention as in the forwarder: never back to a router the message has visited.
      if (hop === undefined || trace.includes(hop)) return;
      this.queue.push({ to: hop, from, conn: this.connBetween(from, hop), dest, msg, trace });
    }
  }

  private pump(): void {
    let guard = 0;
    while (this.queue.length > 0) {
      if (guard++ > 5_000_000) throw new Error('control message storm');
      const env = this.queue.shift()!;
      if (this.frozen.has(env.to) || env.conn === null || !this.conns.has(env.conn) || this.drop(env)) continue;
      const e = this.engines.get(env.to)!;
      this.delivered++;
      if (env.dest.kind === 'connection') {
        if (env.msg.opcode === 'HELLO') e.onHello(env.conn, env.msg, this.now);
      } else if (env.dest.kind === 'all') {
        e.onControl(env.msg, this.now);
        if (e.firstSighting(env.msg, this.now)) this.send(env.to, env.dest, env.msg, [...env.trace, env.to]);
      } else if (env.dest.id === env.to) {
        e.onControl(env.msg, this.now);
      } else {
        this.send(env.to, env.dest, env.msg, [...env.trace, env.to]);
      }
    }
  }

  /** Advances time in 100 ms steps, ticking every unfrozen router each step. */
  run(ms: number): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now += 100;
      for (const [id, e] of this.engines) if (!this.frozen.has(id)) e.onTick(this.now);
      this.pump();
    }
  }

  /** True when every router routes to every other reachable router at the expected cost. */
  converged(expect: (a: string, b: string) => number | undefined): boolean {
    for (const a of this.engines.keys()) {
      const r = this.routes.get(a);
      for (const b of this.engines.keys()) {
        if (a === b) continue;
        const want = expect(a, b);
        if (r?.costs.get(b) !== want) return false;
      }
    }
    return true;
  }
}

function gridNet(w: number, h: number): Net {
  const net = new Net();
  for (let i = 0; i < w * h; i++) net.add(`R${i}`);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (x + 1 < w) net.connect(`R${y * w + x}`, `R${y * w + x + 1}`);
      if (y + 1 < h) net.connect(`R${y * w + x}`, `R${(y + 1) * w + x}`);
    }
  }
  return net;
}

const manhattan = (w: number) => (a: string, b: string) => {
  const i = Number(a.slice(1)), j = Number(b.slice(1));
  return Math.abs((i % w) - (j % w)) + Math.abs(Math.floor(i / w) - Math.floor(j / w));
};

// A -- B connected between two periodic HELLOs: each answers the other's first HELLO at once,
// so both are neighbours (and route to each other) within one tick, not one to two HELLO intervals.
test('a new neighbour is two-way after one HELLO round trip, not at the next periodic HELLO', () => {
  const net = new Net();
  net.add('A');
  net.add('B');
  net.run(5000); // both past a periodic HELLO; the next is due at 6000
  net.connect('A', 'B');
  net.run(200);
  assert.equal(net.routes.get('A')?.costs.get('B'), 1, 'A routes to B');
  assert.equal(net.routes.get('B')?.costs.get('A'), 1, 'B routes to A');
  const hellos = net.delivered;
  net.run(300);
  assert.is(net.delivered - hellos, 0, 'no further HELLOs before the periodic one (only first sightings are answered)');
});

// B hears A two-way, then A's MAU, before B's next tick (as happens on a real connection): the
// route to A is published before A's addresses, or an attach in between finds no route.
test('a neighbour\'s addresses are published after the route to it, never before', () => {
  const events: string[] = [];
  let routes = new Map<string, number>();
  const b = new MeshEngine({ id: 'B', instance: 1000, ...MESH_DEFAULTS }, {
    sendControl: () => {},
    routesChanged: (r) => { routes = new Map(r.costs); events.push(`routes ${[...routes.keys()]}`); },
    remoteAddressesChanged: (rid, added) => events.push(`addresses of ${rid} ${added.map(([k]) => k)} (route to it: ${routes.has(rid)})`),
    log: () => {},
  });
  b.onTick(5000);
  b.onConnectionUp(1, 1, 5010);
  b.onHello(1, { opcode: 'HELLO', id: 'A', pv: 1, area: '0', instance: 7, seen: ['B'] }, 5020);
  b.onControl({ opcode: 'MAU', id: 'A', pv: 1, area: '0', mobile_seq: 1, add: ['M0flea.*'], hints: [2] }, 5030);
  assert.equal(events, ['routes A', 'addresses of A M0flea.* (route to it: true)']);
});
// 8 x 8 grid of routers (R0 top left ... R63 bottom right), unit costs.
test('64 routers in a grid converge: every router has every other at its shortest cost', () => {
  const net = gridNet(8, 8);
  let t = 0;
  while (!net.converged(manhattan(8)) && t < 60_000) {
    net.run(500);
    t += 500;
  }
  assert.ok(net.converged(manhattan(8)), 'converged');
  assert.ok(t <= 20_000, `converged within 20 s of simulated time (took ${t} ms)`);
  assert.is(net.routes.get('R0')!.radius, 14);
});

// Mobile address on R63 (bottom right) becomes known at R0 (top left), and goes away again.
test('mobile addresses propagate across the mesh (MAU), and their removal too', () => {
  const net = gridNet(8, 8);
  net.run(20_000);
  net.engines.get('R63')!.onLocalAddress('M0queue.a', 3, true);
  net.run(3000);
  assert.ok(net.addresses.get('R0')?.get('R63')?.has('M0queue.a'), 'R0 knows queue.a is at R63');
  net.engines.get('R63')!.onLocalAddress('M0queue.a', 3, false);
  net.run(3000);
  assert.not.ok(net.addresses.get('R0')?.get('R63')?.has('M0queue.a'));
});

// A router that missed a MAU asks for the full list (MAR) and catches up.
//   A -- B ; B is frozen while A adds two addresses, then resumes.
test('recovery from a missed MAU: MAR brings the absolute list', () => {
  const net = new Net();
  net.add('A');
  net.add('B');
  net.add('C');
  net.connect('A', 'B');
  net.connect('B', 'C');
  net.run(10_000);
  net.frozen.add('B');
  net.engines.get('A')!.onLocalAddress('M0x', 2, true);
  net.run(1000); // MAU seq 1 lost at frozen B (C never sees it: B would have flooded it)
  net.frozen.delete('B');
  net.engines.get('A')!.onLocalAddress('M0y', 2, true);
  net.run(6000); // MAU seq 2 arrives out of order -> MAR -> absolute MAU
  assert.equal([...(net.addresses.get('B')?.get('A') ?? [])].sort(), ['M0x', 'M0y']);
  assert.equal([...(net.addresses.get('C')?.get('A') ?? [])].sort(), ['M0x', 'M0y']);
});

// A MAR or its answer lost on the way (the responder had no route back yet): asked again.
//   A -- B -- C ; the first MARs anyone sends are dropped.
test('an unanswered MAR is repeated until the addresses arrive', () => {
  const net = new Net();
  for (const id of ['A', 'B', 'C']) net.add(id);
  net.engines.get('A')!.onLocalAddress('M0far', 2, true);
  let dropped = 0;
  net.drop = (env) => env.msg.opcode === 'MAR' && dropped++ < 4;
  net.connect('A', 'B');
  net.connect('B', 'C');
  net.run(15_000);
  assert.ok(dropped >= 1, 'a MAR was lost');
  assert.equal([...(net.addresses.get('C')?.get('A') ?? [])], ['M0far']);
});

// A gap in the MAUs while a MAR is outstanding must not be papered over by the next MAU.
//   A -- B ; B misses MAU 1 (M0x) and its MARs are lost for a while; MAU 2 (M0y) arrives meanwhile.
test('a differential MAU after a gap, while a MAR is outstanding, does not hide the missed one', () => {
  const net = new Net();
  net.add('A');
  net.add('B');
  net.connect('A', 'B');
  net.run(10_000);
  const until = net.now + 2000;
  net.drop = (env) => (env.msg.opcode === 'MAU' && env.to === 'B' && (env.msg as { mobile_seq: number }).mobile_seq === 1) ||
    (env.msg.opcode === 'MAR' && net.now < until);
  net.engines.get('A')!.onLocalAddress('M0x', 2, true);
  net.run(300); // MAU 1 lost; the RA tells B it is behind: its MAR is lost too
  net.engines.get('A')!.onLocalAddress('M0y', 2, true);
  net.run(10_000); // MAU 2 arrives while the MAR is outstanding; later MARs get through
  assert.equal([...(net.addresses.get('B')?.get('A') ?? [])].sort(), ['M0x', 'M0y']);
});

// Link cut in a square:  A -- B
//                         |    |
//                         D -- C     cut A-B: A reaches B through D and C.
test('a link cut: routes move to the other path; healed: they come back', () => {
  const net = new Net();
  for (const id of ['A', 'B', 'C', 'D']) net.add(id);
  const ab = net.connect('A', 'B');
  net.connect('B', 'C');
  net.connect('C', 'D');
  net.connect('D', 'A');
  net.run(10_000);
  assert.is(net.routes.get('A')!.costs.get('B'), 1);
  net.cut(ab);
  net.run(5000);
  assert.is(net.routes.get('A')!.costs.get('B'), 3);
  assert.is(net.routes.get('A')!.nextHops.get('B'), 'D');
  net.connect('A', 'B');
  net.run(5000);
  assert.is(net.routes.get('A')!.costs.get('B'), 1);
});

// A frozen router (its connections stay up) is declared dead after helloMaxAge (3 s).
test('a frozen neighbour is dropped after the HELLO max age, and rejoins when it resumes', () => {
  const net = new Net();
  for (const id of ['A', 'B', 'C', 'D']) net.add(id);
  net.connect('A', 'B');
  net.connect('B', 'C');
  net.connect('C', 'D');
  net.connect('D', 'A');
  net.run(10_000);
  net.frozen.add('B');
  net.run(5000);
  assert.is(net.routes.get('A')!.nextHops.get('C'), 'D', 'A reaches C through D');
  assert.not.ok(net.routes.get('A')!.costs.has('B'), 'B unreachable');
  net.frozen.delete('B');
  net.run(6000);
  assert.is(net.routes.get('A')!.costs.get('B'), 1);
});

// A partition of the 8x8 grid into two halves (cut the 8 vertical links between rows 3 and 4),
// then healed.
test('partition of 64 routers and heal', () => {
  const net = gridNet(8, 8);
  net.run(20_000);
  const cuts: number[] = [];
  for (const [id, [a, b]] of net.conns) {
    const i = Number(a.slice(1)), j = Number(b.slice(1));
    if (Math.floor(i / 8) === 3 && Math.floor(j / 8) === 4) cuts.push(id);
  }
  assert.is(cuts.length, 8);
  for (const c of cuts) net.cut(c);
  net.run(5000);
  assert.not.ok(net.routes.get('R0')!.costs.has('R63'), 'R63 unreachable from R0 while partitioned');
  for (let x = 0; x < 8; x++) net.connect(`R${24 + x}`, `R${32 + x}`);
  net.run(10_000);
  assert.ok(net.converged(manhattan(8)), 'healed');
});

test.run();
