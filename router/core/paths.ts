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

/**
 * Dijkstra from `root`. Returns the predecessor of each reachable node (root excluded), its
 * cost and hop count. O(n^2) like qdrouterd: meshes are tens to hundreds of routers and this
 * runs only when the topology changes.
 */
export function computeTree(root: string, adj: Adjacency): { prev: Map<string, string>; cost: Map<string, number>; hops: Map<string, number> } {
  const cost = new Map<string, number>();
  const hops = new Map<string, number>();
  const prev = new Map<string, string>();
  if (!adj.has(root)) return { prev, cost, hops };
  const unresolved = new Set<string>(adj.keys());
  cost.set(root, 0);
  hops.set(root, 0);
  while (unresolved.size > 0) {
    let u: string | null = null;
    let uc = Infinity;
    for (const n of unresolved) {
      const c = cost.get(n);
      // Equal costs: the smaller id first, as qdrouterd's NodeSet orders them.
      if (c !== undefined && (c < uc || (c === uc && u !== null && n < u))) {
        u = n;
        uc = c;
      }
    }
    if (u === null) break; // the rest is unreachable
    unresolved.delete(u);
    for (const [v, vc] of adj.get(u)!) {
      if (!unresolved.has(v)) continue;
      const alt = uc + vc;
      const cv = cost.get(v);
      if (cv === undefined || alt < cv) {
        cost.set(v, alt);
        hops.set(v, hops.get(u)! + 1);
        prev.set(v, u);
      }
    }
  }
  cost.delete(root);
  hops.delete(root);
  return { prev, cost, hops };
}

/**
 * Computes our routes from the link-state database (`collection` includes our own state).
 * Unreachable routers are absent from every map.
 */
export function computeRoutes(self: string, collection: ReadonlyMap<string, LinkStateRecord>): Routes {
  const adj = adjacency(collection);
  const { prev, cost, hops } = computeTree(self, adj);
  const nextHops = new Map<string, string>();
  for (const node of prev.keys()) {
    // Walk back to the node whose predecessor is us: that is the first hop.
    let u = node;
    let v = prev.get(u)!;
    while (v !== self) {
      u = v;
      v = prev.get(u)!;
    }
    nextHops.set(node, u);
  }
  let radius = 0;
  for (const h of hops.values()) if (h > radius) radius = h;
  const validOrigins = new Map<string, Set<string>>();
  for (const root of prev.keys()) {
    const origins = new Set<string>();
    const tree = computeTree(root, adj).prev;
    for (const node of tree.keys()) {
      if (node === self) continue;
      // Does root's path to `node` pass through us?
      let v = tree.get(node)!;
      while (v !== root && v !== self) v = tree.get(v)!;
      if (v === self) origins.add(node);
    }
    validOrigins.set(root, origins);
  }
  return { nextHops, costs: cost, validOrigins, radius };
}
