/**
 * Turns a checked {@link Topology} into the configuration files `amqp-mesh up` starts processes
 * on: one qdrouterd.conf per router and one broker config per broker. Pure: the ports a process
 * must know before its peer runs (inter-router listeners, broker listeners) come in as a
 * {@link PortPlan} picked beforehand, so connectors can name them.
 *
 * What a router gets (qdrouterd 1.19 entity and attribute names, so the files also run qdrouterd):
 * - `router { mode: interior id: NAME }`;
 * - `listener` named `client` (the topology's port) and `inter-router` (role inter-router);
 * - one `connector` (role inter-router, with the link's cost) per link it is the `from` of;
 * - per broker pair attached to it: `connector` named after the pair (role route-container) to
 *   the first broker, `failoverUrls` naming the others; two `autoLink`s (in, out) per queue and topic;
 *   two `linkRoute`s (in, out) per linkRoute address;
 * - every `address` rule (all routers need the waypoint phases and distributions, not only the
 *   one holding the pair).
 */
import type { Topology, TopologyAddress, TopologyBrokerPair } from './model';

/** Ports decided before any process starts. */
export interface PortPlan {
  /** Inter-router listener port of each router, by router name. */
  interRouter: Record<string, number>;
  /** Client listener port of each broker, by broker name (see {@link brokersOf}). */
  brokers: Record<string, number>;
}

/** One broker process of a pair or group. */
export interface BrokerSpec {
  /** `<pair>.b<index>`: the broker id, the log file and config file name. */
  name: string;
  pair: string;
  /** 1 for the broker started first (the connector's primary host), then 2, 3... */
  index: number;
}

/** What the brokers of replication and jdbc groups connect to (started by `up` or named in the file). */
export interface BrokerServices {
  /** ZooKeeper connect string, for replication groups. */
  zookeeper?: string;
  /** The database of each jdbc pair, by pair name. */
  jdbcUrls?: Record<string, string>;
}

/** A configuration file to write. */
export interface GeneratedConfig {
  kind: 'router' | 'broker';
  /** Router name or broker name; the file is `conf/<name>.conf`. */
  name: string;
  text: string;
}

/** Options of {@link generateConfigs}. */
export interface GenerateOptions {
  /** The store directory of each pair, by pair name (absolute). */
  dataDirs: Record<string, string>;
  /**
   * Write the route-container connectors and the autoLinks and linkRoutes that name them
   * (default true). False only for routers that refuse `role: route-container`: the rest of the
   * mesh then still boots.
   */
  pairConnectors?: boolean;
  /**
   * Broker pairs whose connector only drains them: `in` auto-links only (no `out` auto-links, no
   * linkRoutes), so consumers get what the pair still holds while nothing new goes to it, and
   * `linkCapacity: 1`, so the router holds at most one of its messages at a time (little is in
   * flight when the link is drained and detached). `amqp-mesh apply` drains removed pairs so.
   */
  drainOnly?: readonly string[];
  /** ZooKeeper and databases of replication and jdbc pairs. */
  services?: BrokerServices;
}

/** The broker processes of every pair, in start order. */
export function brokersOf(model: Topology): BrokerSpec[] {
  return model.brokerPairs.flatMap((p) => Array.from({ length: p.members }, (_, i) => ({ name: `${p.name}.b${i + 1}`, pair: p.name, index: i + 1 })));
}

/** How many ports {@link assignPorts} needs: one inter-router listener per router, one per broker. */
export function portsNeeded(model: Topology): number {
  return model.routers.length + model.brokerPairs.reduce((n, p) => n + p.members, 0);
}

/** Hands out `ports` (at least {@link portsNeeded}, all distinct) to routers, then brokers. */
export function assignPorts(model: Topology, ports: readonly number[]): PortPlan {
  if (ports.length < portsNeeded(model)) throw new RangeError(`need ${portsNeeded(model)} ports, got ${ports.length}`);
  const plan: PortPlan = { interRouter: {}, brokers: {} };
  let i = 0;
  for (const r of model.routers) plan.interRouter[r.name] = ports[i++];
  for (const b of brokersOf(model)) plan.brokers[b.name] = ports[i++];
  return plan;
}

/** Every router and broker configuration, routers first. */
export function generateConfigs(model: Topology, plan: PortPlan, opts: GenerateOptions): GeneratedConfig[] {
  return [
    ...model.routers.map((r) => ({ kind: 'router' as const, name: r.name, text: routerConfig(model, r.name, plan, opts) })),
    ...brokersOf(model).map((b) => {
      const dataDir = opts.dataDirs[b.pair];
      if (dataDir === undefined) throw new RangeError(`no dataDir for broker pair ${b.pair}`);
      return { kind: 'broker' as const, name: b.name, text: brokerConfig(model, b, plan, dataDir, opts.services) };
    }),
  ];
}

/** A value as qdrouterd.conf reads it back: bare when it can be, otherwise quoted (amqp-mesh's extension). */
function confValue(v: string | number | boolean): string {
  if (typeof v !== 'string') return String(v);
  return v === '' || /#|^\s|\s$|^["']/.test(v) ? JSON.stringify(v) : v;
}

/** A section, one attribute per line (qdrouterd allows nothing else). */
function section(type: string, attrs: [string, string | number | boolean | undefined][], comment?: string): string {
  const body = attrs.filter(([, v]) => v !== undefined).map(([k, v]) => `    ${k}: ${confValue(v as string | number | boolean)}\n`).join('');
  return `${comment ? `# ${comment}\n` : ''}${type} {\n${body}}\n`;
}

/** The pattern of a prefix or pattern rule, as an attribute pair. */
function ruleKey(a: TopologyAddress): [string, string] {
  return a.prefix !== undefined ? ['prefix', a.prefix] : ['pattern', a.pattern as string];
}

function header(model: Topology, what: string): string {
  return `# ${what}: generated by amqp-mesh up from ${model.file}.\n# Regenerated on every run; edit the topology instead.\n`;
}

/** The qdrouterd.conf text of router `name`. */
export function routerConfig(model: Topology, name: string, plan: PortPlan, opts: GenerateOptions): string {
  const router = model.routers.find((r) => r.name === name);
  if (!router) throw new RangeError(`no router ${name}`);
  const pairConnectors = opts.pairConnectors ?? true;
  const out: string[] = [header(model, `router ${name}`)];
  out.push(section('router', [['mode', 'interior'], ['id', name]]));
  out.push(section('listener', [['name', 'client'], ['host', router.host], ['port', router.port]]));
  out.push(section('listener', [['name', 'inter-router'], ['host', '127.0.0.1'], ['port', plan.interRouter[name]], ['role', 'inter-router']]));
  for (const l of model.links.filter((x) => x.from === name)) {
    out.push(section('connector', [
      ['name', `to-${l.to}`],
      ['host', '127.0.0.1'],
      ['port', plan.interRouter[l.to]],
      ['role', 'inter-router'],
      ['cost', l.cost],
    ], `link ${l.from} -> ${l.to} (topology line ${l.line})`));
  }
  for (const a of model.addresses) {
    out.push(section('address', [
      ruleKey(a),
      // qdrouterd's default is balanced; a waypoint address keeps whatever was written.
      ['distribution', a.distribution],
      ['waypoint', a.waypoint !== undefined ? 'yes' : undefined],
    ], a.waypoint !== undefined ? `waypoint: broker pair ${a.waypoint}` : undefined));
  }
  for (const p of model.brokerPairs.filter((x) => x.router === name)) {
    if (!pairConnectors) {
      out.push(`# broker pair ${p.name}: route-container connector, autoLinks and linkRoutes left out\n# (this router does not support role route-container yet).\n`);
      continue;
    }
    out.push(...pairSections(model, p, plan, opts.drainOnly?.includes(p.name) ?? false));
  }
  return out.join('\n');
}

/** The connector to a pair and the autoLinks and linkRoutes that use it. */
function pairSections(model: Topology, p: TopologyBrokerPair, plan: PortPlan, drainOnly: boolean): string[] {
  const [b1, ...rest] = brokersOf(model).filter((b) => b.pair === p.name);
  const out = [section('connector', [
    ['name', p.name],
    ['host', '127.0.0.1'],
    ['port', plan.brokers[b1.name]],
    ['role', 'route-container'],
    // Only the other brokers: host/port is already the first candidate, and a router tries
    // host/port then each failover URL in turn, so listing b1 again would retry it twice.
    // Whichever is live is the one listening (qdrouterd also learns this list from the
    // broker's open frame, once connected).
    ['failoverUrls', rest.map((b) => `amqp://127.0.0.1:${plan.brokers[b.name]}`).join(', ')],
    ['linkCapacity', drainOnly ? 1 : undefined],
  ], `broker pair ${p.name}: ${[b1, ...rest].map((b) => b.name).join(' / ')}${p.haPolicy !== 'shared-store' ? ` (${p.haPolicy})` : ''} (topology line ${p.line})${drainOnly ? ', being drained' : ''}`)];
  // Waypoints: messages to a queue go out to the broker (phase 0) and come back from it (phase 1).
  for (const address of [...p.queues, ...p.topics]) {
    for (const direction of drainOnly ? ['in'] : ['in', 'out']) {
      out.push(section('autoLink', [['address', address], ['direction', direction], ['connection', p.name]]));
    }
  }
  for (const a of drainOnly ? [] : model.addresses.filter((x) => x.linkRoute === p.name)) {
    for (const direction of ['in', 'out']) {
      out.push(section('linkRoute', [ruleKey(a), ['direction', direction], ['connection', p.name]]));
    }
  }
  return out;
}

/** How often a waiting broker of a generated shared-store pair polls the lock. */
const SHARED_STORE_POLL_MS = 250;

/** The broker config text of one broker of a pair. */
export function brokerConfig(model: Topology, b: BrokerSpec, plan: PortPlan, dataDir: string, services: BrokerServices = {}): string {
  const p = model.brokerPairs.find((x) => x.name === b.pair);
  if (!p) throw new RangeError(`no broker pair ${b.pair}`);
  const out: string[] = [header(model, `broker ${b.name} (pair ${p.name})`)];
  if (p.haPolicy === 'shared-store') {
    // Both brokers run on this host: the slave takes over a killed live one at its next poll
    // (the pid probe), so a short poll is a short takeover; it costs one directory read.
    out.push(section('broker', [['id', b.name], ['dataDir', dataDir], ['lockPollMs', SHARED_STORE_POLL_MS]]));
  } else {
    const jdbcUrl = p.jdbcUrl ?? services.jdbcUrls?.[p.name];
    if (p.haPolicy === 'jdbc' && jdbcUrl === undefined) throw new RangeError(`no database for jdbc pair ${p.name}`);
    if (p.haPolicy === 'replication' && services.zookeeper === undefined) throw new RangeError(`no ZooKeeper for replicated pair ${p.name}`);
    // Each member has a disk of its own: the pair's dataDir holds one directory per broker.
    out.push(section('broker', [
      ['id', b.name], ['dataDir', `${dataDir}/${b.name}`], ['haPolicy', p.haPolicy], ['haGroup', p.name],
      ['jdbcUrl', p.haPolicy === 'jdbc' ? jdbcUrl : undefined],
      ['zookeeper', p.haPolicy === 'replication' ? services.zookeeper : undefined],
      ['groupSize', p.haPolicy === 'replication' ? p.members : undefined],
    ]));
  }
  out.push(section('listener', [['host', '127.0.0.1'], ['port', plan.brokers[b.name]]]));
  // The waypoint address spaces: the broker must create topics, not queues, where the routers
  // multicast; otherwise a topic's subscribers would compete for its messages.
  for (const a of model.addresses.filter((x) => x.waypoint === p.name)) {
    out.push(section('address', [ruleKey(a), ['routingType', a.distribution === 'multicast' ? 'multicast' : 'anycast']]));
  }
  // Queues exist from the start, so messages sent before any consumer attaches are kept.
  for (const q of p.queues) out.push(section('queue', [['name', q], ['address', q], ['routingType', 'anycast']]));
  return out.join('\n');
}
