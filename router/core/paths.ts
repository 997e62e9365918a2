/**
 * Shortest paths over the mesh's link-state database (pure): next hops, costs, valid origins
 * for multicast, and the topology radius. Follows qdrouterd 1.19's path engine so that routers
 * of both kinds in one mesh compute the same trees:
 *
 * - a peer named in a link state but with no link state of its own gets a stand-in state
 *   (`{reporter: 1}`) so it can be reached to trade link states;
 * - Dijkstra by summed link cost over the links as each router reports them (no bidirectional
 *   check); among equal costs the smaller router id is resolved first, as in qdrouterd's NodeSet,
 *   and a path is replaced only by a strictly cheaper one;
 * - valid origins of destination D: the routers whose path to D (in the tree rooted at D)
 *   passes through us; a multicast message from origin O goes towards D only when O is one of
 *   D's valid origins, so every router gets one copy even in meshes with loops.
 */

/** One router's advertised neighbours and their link costs. */
export interface LinkStateRecord {
  readonly peers: ReadonlyMap<string, number>;
}

/** Result of {@link computeRoutes}. */
export interface Routes {
  /** Destination router id -> the neighbour to send through. */
  readonly nextHops: Map<string, string>;
  /** Destination router id -> total path cost. */
  readonly costs: Map<string, number>;
  /** Destination router id -> origins whose multicast we forward towards it. */
  readonly validOrigins: Map<string, Set<string>>;
  /** Largest hop count from us to any reachable router. */
  readonly radius: number;
}

type Adjacency = Map<string, Map<string, number>>;

function adjacency(collection: ReadonlyMap<string, LinkStateRecord>): Adjacency {
  const adj: Adjacency = new Map();
  for (const [node, ls] of collection) adj.set(node, new Map(ls.peers));
  for (const [node, ls] of collection) {
    for (const peer of ls.peers.keys()) {
      if (!adj.has(peer)) adj.set(peer, new Map([[node, 1]]));
    }
  }
  return adj;
}

/** The graph with nodes numbered in id order (so index order is qdrouterd's tie-break order). */
interface IndexedGraph {
  ids: string[];
  /** Per node: neighbour indexes and costs, side by side. */
  nbr: Int32Array[];
  cst: Float64Array[];
}

function indexGraph(adj: Adjacency): IndexedGraph {
  const ids = [...adj.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const index = new Map(ids.map((id, i) => [id, i]));
  const nbr: Int32Array[] = [];
  const cst: Float64Array[] = [];
  for (const id of ids) {
    const peers = adj.get(id)!;
    const n = new Int32Array(peers.size);
    const c = new Float64Array(peers.size);
    let k = 0;
    for (const [p, cost] of peers) {
      n[k] = index.get(p)!;
      c[k++] = cost;
    }
    nbr.push(n);
    cst.push(c);
  }
  return { ids, nbr, cst };
}

/**
 * Dijkstra from node index `root` over the indexed graph; fills `prev` (-1: none or root),
 * `cost` (Infinity: unreachable) and `hops`. O(n^2) like qdrouterd: meshes are tens to hundreds
 * of routers and this runs only when the topology changes. Equal costs resolve the lower index
 * (the smaller id) first, as qdrouterd's NodeSet; a path is replaced only by a cheaper one.
 */
function dijkstra(g: IndexedGraph, root: number, prev: Int32Array, cost: Float64Array, hops: Int32Array): void {
  const n = g.ids.length;
  const done = new Uint8Array(n);
  prev.fill(-1);
  cost.fill(Infinity);
  hops.fill(0);
  cost[root] = 0;
  for (;;) {
    let u = -1;
    let uc = Infinity;
    for (let i = 0; i < n; i++) {
      if (!done[i] && cost[i] < uc) {
        u = i;
        uc = cost[i];
      }
    }
    if (u < 0) break;
    done[u] = 1;
    const nb = g.nbr[u], cs = g.cst[u];
    for (let k = 0; k < nb.length; k++) {
      const v = nb[k];
      if (done[v]) continue;
      const alt = uc + cs[k];
      if (alt < cost[v]) {
        cost[v] = alt;
        hops[v] = hops[u] + 1;
        prev[v] = u;
      }
    }
  }
}

/** Dijkstra from `root` by id (tests and tools): predecessor, cost and hops of reachable nodes. */
export function computeTree(root: string, adj: Adjacency): { prev: Map<string, string>; cost: Map<string, number>; hops: Map<string, number> } {
  const out = { prev: new Map<string, string>(), cost: new Map<string, number>(), hops: new Map<string, number>() };
  const g = indexGraph(adj);
  const r = g.ids.indexOf(root);
  if (r < 0) return out;
  const n = g.ids.length;
  const prev = new Int32Array(n), cost = new Float64Array(n), hops = new Int32Array(n);
  dijkstra(g, r, prev, cost, hops);
  for (let i = 0; i < n; i++) {
    if (i === r || prev[i] < 0) continue;
    out.prev.set(g.ids[i], g.ids[prev[i]]);
    out.cost.set(g.ids[i], cost[i]);
    out.hops.set(g.ids[i], hops[i]);
  }
  return out;
}

/**
 * Computes our routes from the link-state database (`collection` includes our own state).
 * Unreachable routers are absent from every map.
 */
export function computeRoutes(self: string, collection: ReadonlyMap<string, LinkStateRecord>): Routes {
  const nextHops = new Map<string, string>();
  const costs = new Map<string, number>();
  const validOrigins = new Map<string, Set<string>>();
  const adj = adjacency(collection);
  const g = indexGraph(adj);
  const me = g.ids.indexOf(self);
  if (me < 0) return { nextHops, costs, validOrigins, radius: 0 };
  const n = g.ids.length;
  const prev = new Int32Array(n), cost = new Float64Array(n), hops = new Int32Array(n);
  dijkstra(g, me, prev, cost, hops);
  let radius = 0;
  const reachable: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i === me || prev[i] < 0) continue;
    reachable.push(i);
    costs.set(g.ids[i], cost[i]);
    if (hops[i] > radius) radius = hops[i];
    // Walk back to the node whose predecessor is us: that is the first hop.
    let u = i;
    while (prev[u] !== me) u = prev[u];
    nextHops.set(g.ids[i], g.ids[u]);
  }
  // Valid origins of each reachable router R: the routers whose path from R passes through us.
  const p2 = new Int32Array(n), c2 = new Float64Array(n), h2 = new Int32Array(n);
  for (const root of reachable) {
    dijkstra(g, root, p2, c2, h2);
    const origins = new Set<string>();
    for (let i = 0; i < n; i++) {
      if (i === me || i === root || p2[i] < 0) continue;
      let v = p2[i];
      while (v !== root && v !== me) v = p2[v];
      if (v === me) origins.add(g.ids[i]);
    }
    validOrigins.set(g.ids[root], origins);
  }
  return { nextHops, costs, validOrigins, radius };
}
