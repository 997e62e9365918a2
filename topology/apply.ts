/**
 * `amqp-mesh apply FILE`: changes a running topology (booted by `amqp-mesh up`) to match FILE,
 * without restarting the routers that stay: clients keep their connections and links.
 *
 * `up` owns the processes, so `apply` asks it. `up` writes `<runDir>/state.json` (its PID, the
 * topology file, ports, every process) and listens on `<runDir>/control.sock`; `apply` finds the
 * run directory (`--run-dir`, else the one `$TMPDIR/amqp-mesh-up-current` names, else the newest
 * `$TMPDIR/amqp-mesh-up-*` whose `up` is alive), sends `{"apply": "/abs/FILE"}` and prints the
 * progress `up` streams back; it exits 0 once the topology matches, 1 with the reason otherwise.
 *
 * How a change reaches running routers: `up` regenerates every router's config file and sends
 * SIGHUP to the routers whose config changed; a router re-reads its file and applies
 * connectors, auto-links, link routes and address rules live (router/io/server.ts reconfigure).
 * To never leave a moment without a route or a waypoint, {@link applyTopology} goes in three
 * stages, each waited for:
 *
 * 1. grow: start new broker pairs (one live, one slave), start new routers, and give existing
 *    routers everything new (links, pair connectors, auto-links, address rules) while keeping
 *    everything old (old links at their old cost, old pairs and queues); then wait until the new
 *    routers' links are up, the new auto-links are active and the mesh converged. A moved
 *    waypoint has both pairs for a moment: messages go to either, both deliver to consumers.
 * 2. shrink: the target configs (removed routers, still running, keep their links but lose their
 *    pairs): removed links go, cost changes reconnect, removed pair connectors drain their `in`
 *    auto-links to the consumers and close. A removed pair's brokers stop once every router that
 *    held its connector logged `connector PAIR: removed and drained; closing` and a browse of the
 *    pair's live broker finds its queues empty; deliveries the router still held for slow
 *    consumers when it detached go back to the broker, so such a pair is drained again through a
 *    drain-only connector (`in` auto-links, linkCapacity 1). After the drain timeout the pair is
 *    stopped anyway, reported: its store keeps what it still held.
 * 3. stop removed routers; drop the connectors to them; wait for convergence.
 *
 * A failure in stage 1 puts back what it changed (configs re-sent, new processes stopped); later
 * failures are reported with what was done.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import rhea = require('rhea');
import { queryEntities } from './management-client';
import { ConfigError } from '../config/errors';
import { type Topology, type TopologyAddress, type TopologyBrokerPair, type TopologyLink, type TopologyRouter } from './model';
import { brokerConfig, brokersOf, routerConfig, type PortPlan } from './generate';
import { pickFreePorts, probeMesh, type Component, type RunningTopology } from './running';

const POLL_MS = 50;
/** How often a management query is repeated while waiting on a router's live state. */
const MANAGEMENT_POLL_MS = 200;

/** Options of {@link applyTopology}. */
export interface ApplyOptions {
  /** Each progress line (no newline). */
  progress?: (line: string) => void;
  /** Limit for starting processes, reloads, links, auto-links and convergence, per stage (default 60 s). */
  timeoutMs?: number;
  /** How long a removed pair may take to drain before it is stopped anyway (default 60 s). */
  drainTimeoutMs?: number;
}

/** What changed between two topologies. Links are one per pair of routers (either direction). */
export interface TopologyDiff {
  routersAdded: TopologyRouter[];
  routersRemoved: TopologyRouter[];
  linksAdded: TopologyLink[];
  linksRemoved: TopologyLink[];
  /** Same two routers, another cost or direction (the connection is re-made). */
  linksChanged: { before: TopologyLink; after: TopologyLink }[];
  pairsAdded: TopologyBrokerPair[];
  pairsRemoved: TopologyBrokerPair[];
  pairsMoved: { name: string; from: string; to: string }[];
  /** Queues and topics added to / removed from a pair that stays. */
  pairItems: { pair: string; added: string[]; removed: string[] }[];
  addressesAdded: TopologyAddress[];
  addressesRemoved: TopologyAddress[];
  addressesChanged: { before: TopologyAddress; after: TopologyAddress }[];
}

/** The outcome of {@link applyTopology}. */
export interface ApplyResult {
  diff: TopologyDiff;
  /** False when nothing needed doing. */
  changed: boolean;
  /** Human-readable lines: what changed, what was reloaded, started, drained and stopped. */
  summary: string[];
  warnings: string[];
  /** Routers sent SIGHUP, by stage. */
  reloaded: { grow: string[]; shrink: string[]; retire: string[] };
  /** Removed pairs: how each drain ended. */
  drains: { pair: string; router: string; drained: boolean; ms: number }[];
}

/** Why an apply failed after it started changing things (refusals are ConfigErrors). */
export class ApplyError extends Error {}

const trimSeparators = (s: string): string => s.replace(/^[./]+|[./]+$/g, '');
const ruleKey = (a: TopologyAddress): string => (a.prefix !== undefined ? `p:${trimSeparators(a.prefix)}` : `t:${trimSeparators(a.pattern as string)}`);
const linkKey = (l: TopologyLink): string => [l.from, l.to].sort().join('\u0000');
const describeRule = (a: TopologyAddress): string => {
  const what = a.prefix !== undefined ? `prefix ${a.prefix}` : `pattern ${a.pattern}`;
  const how = [a.distribution, a.waypoint !== undefined ? `waypoint ${a.waypoint}` : undefined, a.linkRoute !== undefined ? `linkRoute ${a.linkRoute}` : undefined].filter(Boolean).join(', ');
  return how ? `${what} (${how})` : what;
};
const sameRule = (a: TopologyAddress, b: TopologyAddress): boolean => a.distribution === b.distribution && a.waypoint === b.waypoint && a.linkRoute === b.linkRoute;
const union = (a: string[], b: string[]): string[] => [...a, ...b.filter((x) => !a.includes(x))];

/** Compares two checked topologies. */
export function diffTopology(old: Topology, next: Topology): TopologyDiff {
  const d: TopologyDiff = {
    routersAdded: next.routers.filter((r) => !old.routers.some((o) => o.name === r.name)),
    routersRemoved: old.routers.filter((o) => !next.routers.some((r) => r.name === o.name)),
    linksAdded: [],
    linksRemoved: [],
    linksChanged: [],
    pairsAdded: next.brokerPairs.filter((p) => !old.brokerPairs.some((o) => o.name === p.name)),
    pairsRemoved: old.brokerPairs.filter((o) => !next.brokerPairs.some((p) => p.name === o.name)),
    pairsMoved: [],
    pairItems: [],
    addressesAdded: [],
    addressesRemoved: [],
    addressesChanged: [],
  };
  const oldLinks = new Map(old.links.map((l) => [linkKey(l), l]));
  const nextLinks = new Map(next.links.map((l) => [linkKey(l), l]));
  for (const l of next.links) {
    const o = oldLinks.get(linkKey(l));
    if (!o) d.linksAdded.push(l);
    else if (o.from !== l.from || o.cost !== l.cost) d.linksChanged.push({ before: o, after: l });
  }
  d.linksRemoved = old.links.filter((l) => !nextLinks.has(linkKey(l)));
  for (const p of next.brokerPairs) {
    const o = old.brokerPairs.find((x) => x.name === p.name);
    if (!o) continue;
    if (o.router !== p.router) d.pairsMoved.push({ name: p.name, from: o.router, to: p.router });
    const before = [...o.queues, ...o.topics];
    const after = [...p.queues, ...p.topics];
    const added = after.filter((x) => !before.includes(x));
    const removed = before.filter((x) => !after.includes(x));
    if (added.length || removed.length) d.pairItems.push({ pair: p.name, added, removed });
  }
  const oldRules = new Map(old.addresses.map((a) => [ruleKey(a), a]));
  const nextRules = new Map(next.addresses.map((a) => [ruleKey(a), a]));
  for (const a of next.addresses) {
    const o = oldRules.get(ruleKey(a));
    if (!o) d.addressesAdded.push(a);
    else if (!sameRule(o, a)) d.addressesChanged.push({ before: o, after: a });
  }
  d.addressesRemoved = old.addresses.filter((a) => !nextRules.has(ruleKey(a)));
  return d;
}

/** One line per change, for progress and summaries. */
export function describeDiff(d: TopologyDiff): string[] {
  const out: string[] = [];
  for (const r of d.routersAdded) out.push(`+ router ${r.name}`);
  for (const r of d.routersRemoved) out.push(`- router ${r.name}`);
  for (const l of d.linksAdded) out.push(`+ link ${l.from} -> ${l.to} (cost ${l.cost})`);
  for (const l of d.linksRemoved) out.push(`- link ${l.from} -> ${l.to}`);
  for (const { before, after } of d.linksChanged) {
    out.push(`~ link ${before.from} -> ${before.to} (cost ${before.cost}) is now ${after.from} -> ${after.to} (cost ${after.cost}); the connection is re-made`);
  }
  for (const p of d.pairsAdded) out.push(`+ broker pair ${p.name} on router ${p.router}`);
  for (const p of d.pairsRemoved) out.push(`- broker pair ${p.name} (was on router ${p.router}; drained, then stopped)`);
  for (const m of d.pairsMoved) out.push(`~ broker pair ${m.name} moves from router ${m.from} to router ${m.to}`);
  for (const i of d.pairItems) {
    out.push(`~ broker pair ${i.pair}: ${[...i.added.map((x) => `+${x}`), ...i.removed.map((x) => `-${x}`)].join(' ')}`);
  }
  for (const a of d.addressesAdded) out.push(`+ address ${describeRule(a)}`);
  for (const a of d.addressesRemoved) out.push(`- address ${describeRule(a)}`);
  for (const { before, after } of d.addressesChanged) out.push(`~ address ${describeRule(before)} is now ${describeRule(after)}`);
  return out;
}

/** The three configurations a change goes through (see the file comment). */
export function stageModels(old: Topology, next: Topology): { grow: Topology; shrink: Topology; final: Topology } {
  const removedRouters = old.routers.filter((o) => !next.routers.some((r) => r.name === o.name));
  const gone = new Set(removedRouters.map((r) => r.name));
  const oldLinks = new Map(old.links.map((l) => [linkKey(l), l]));
  const nextLinks = new Map(next.links.map((l) => [linkKey(l), l]));
  const routers = [...next.routers, ...removedRouters];
  const growPairs: TopologyBrokerPair[] = [];
  for (const p of next.brokerPairs) {
    const o = old.brokerPairs.find((x) => x.name === p.name);
    if (o && o.router === p.router) growPairs.push({ ...p, queues: union(p.queues, o.queues), topics: union(p.topics, o.topics) });
    else {
      growPairs.push(p);
      // A moving pair is attached to both routers for a moment.
      if (o) growPairs.push(o);
    }
  }
  for (const o of old.brokerPairs) if (!next.brokerPairs.some((p) => p.name === o.name)) growPairs.push(o);
  const nextRules = new Set(next.addresses.map(ruleKey));
  const grow: Topology = {
    file: next.file,
    routers,
    // Existing links as they are (old cost and direction): a re-made connection waits for stage 2,
    // when the new links are already up.
    links: [...next.links.map((l) => oldLinks.get(linkKey(l)) ?? l), ...old.links.filter((l) => !nextLinks.has(linkKey(l)))],
    brokerPairs: growPairs,
    addresses: [...next.addresses, ...old.addresses.filter((a) => !nextRules.has(ruleKey(a)))],
  };
  const shrink: Topology = {
    file: next.file,
    routers,
    // Routers on their way out stay meshed, so what their pairs drain still reaches consumers.
    links: [...next.links, ...old.links.filter((l) => gone.has(l.from) || gone.has(l.to))],
    brokerPairs: next.brokerPairs,
    addresses: next.addresses,
  };
  return { grow, shrink, final: next };
}

/** One `type { key: value ... }` section of a generated config. */
interface Section {
  type: string;
  attrs: Record<string, string>;
}

/** The sections of a generated (qdrouterd.conf syntax) file. */
function sectionsOf(text: string): Section[] {
  const out: Section[] = [];
  for (const m of text.matchAll(/^(\w+) \{\n([\s\S]*?)^\}/gm)) {
    const attrs: Record<string, string> = {};
    for (const line of m[2].split('\n')) {
      const a = /^\s+(\w+): (.*)$/.exec(line);
      if (a) attrs[a[1]] = a[2];
    }
    out.push({ type: m[1], attrs });
  }
  return out;
}

/** A config's meaning: sections without comments, in a fixed order (file names and line numbers in comments do not count). */
function canonical(text: string): string {
  return sectionsOf(text).map((s) => `${s.type} ${JSON.stringify(Object.entries(s.attrs).sort())}`).sort().join('\n');
}

const autoLinkKeys = (text: string): Set<string> =>
  new Set(sectionsOf(text).filter((s) => s.type === 'autoLink').map((s) => `${s.attrs.connection}|${s.attrs.address}|${s.attrs.direction}`));
const interRouterConnectors = (text: string): Map<string, string> =>
  new Map(sectionsOf(text).filter((s) => s.type === 'connector' && s.attrs.role === 'inter-router').map((s) => [`${s.attrs.name}|${s.attrs.port}|${s.attrs.cost}`, s.attrs.name]));
const pairConnectors = (text: string): Set<string> =>
  new Set(sectionsOf(text).filter((s) => s.type === 'connector' && s.attrs.role === 'route-container').map((s) => s.attrs.name));

/** Reads a process's log from an offset on, line by line. */
class LogCursor {
  lines: string[] = [];
  private partial = '';
  constructor(readonly file: string, private offset: number) {}

  static atEnd(file: string): LogCursor {
    let size = 0;
    try {
      size = fs.statSync(file).size;
    } catch {
      // not written yet
    }
    return new LogCursor(file, size);
  }

  read(): string[] {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch {
      return this.lines;
    }
    try {
      const buf = Buffer.allocUnsafe(256 * 1024);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
        if (n === 0) break;
        this.offset += n;
        const parts = (this.partial + buf.subarray(0, n).toString('utf8')).split('\n');
        this.partial = parts.pop() as string;
        this.lines.push(...parts);
      }
    } finally {
      fs.closeSync(fd);
    }
    return this.lines;
  }
}

/**
 * How many messages a broker holds available on queue `address` (a drained browse: the broker
 * answers the drain at once when it has nothing more). Undefined when it cannot tell in `ms`.
 */
export function browseCount(port: number, address: string, ms: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const container = rhea.create_container({ id: `amqp-mesh-apply-${process.pid}-${Math.random().toString(36).slice(2, 8)}` });
    const conn = container.connect({ host: '127.0.0.1', port, reconnect: false } as rhea.ConnectionOptions);
    let count = 0;
    let done = false;
    const finish = (v: number | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      conn.close();
      // rhea keeps the socket until the peer's close; a short grace, then it goes.
      setTimeout(() => (conn as unknown as { socket?: { destroy(): void } }).socket?.destroy(), 1000).unref();
      resolve(v);
    };
    const timer = setTimeout(() => finish(undefined), ms);
    conn.on('connection_error', () => finish(undefined));
    conn.on('disconnected', () => finish(undefined));
    const rx = conn.open_receiver({ source: { address, distribution_mode: 'copy' }, credit_window: 0 } as rhea.ReceiverOptions);
    rx.on('message', () => count++);
    rx.on('receiver_open', () => {
      rx.drain = true;
      rx.add_credit(100_000);
    });
    rx.on('receiver_drained' as 'message', () => finish(count));
    rx.on('receiver_close', () => finish(undefined));
  });
}

function tail(file: string, n = 15): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/**
 * Checks that `next` can be applied to what runs: a listener or a store cannot move under a running
 * process. Returns `next` with each remaining router's client port as the running config has it.
 * @throws ConfigError naming `next.file` and the line.
 */
function checkApplicable(running: RunningTopology, next: Topology): Topology {
  const old = running.model;
  const usedPorts = new Map<number, string>();
  for (const c of running.components) {
    if (c.port) usedPorts.set(c.port, `${c.kind} ${c.name}`);
    if (c.interRouterPort) usedPorts.set(c.interRouterPort, `router ${c.name} (inter-router)`);
  }
  for (const [name, port] of Object.entries(running.ports.brokers)) usedPorts.set(port, `broker ${name}`);
  const routers = next.routers.map((r) => {
    const o = old.routers.find((x) => x.name === r.name);
    if (!o) {
      const holder = r.port !== 0 ? usedPorts.get(r.port) : undefined;
      if (holder) throw new ConfigError('ERR_CONFIG_CONFLICT', next.file, r.line, `router ${r.name} port ${r.port} is in use by the running ${holder}`);
      return r;
    }
    const actual = running.components.find((c) => c.kind === 'router' && c.name === r.name)?.port;
    if (r.host !== o.host || (r.port !== o.port && r.port !== actual)) {
      throw new ConfigError('ERR_CONFIG_CONFLICT', next.file, r.line,
        `router ${r.name} listens on ${o.host}:${actual ?? o.port}; its client listener cannot change while it runs (${r.host}:${r.port} asked): listeners need a restart (stop up and start it again, or add a router under another name)`);
    }
    return { ...r, port: o.port };
  });
  for (const p of next.brokerPairs) {
    const o = old.brokerPairs.find((x) => x.name === p.name);
    const dir = p.dataDir ?? path.join(running.runDir, 'data', p.name);
    if (o) {
      const was = o.dataDir ?? path.join(running.runDir, 'data', o.name);
      if (dir !== was) throw new ConfigError('ERR_CONFIG_CONFLICT', next.file, p.line, `broker pair ${p.name} runs on store ${was}; a store cannot change while its brokers run (remove the pair, or add one under another name)`);
      continue;
    }
    for (const q of old.brokerPairs) {
      if ((q.dataDir ?? path.join(running.runDir, 'data', q.name)) === dir) {
        throw new ConfigError('ERR_CONFIG_CONFLICT', next.file, p.line, `broker pair ${p.name}: store ${dir} is the running pair ${q.name}'s; two pairs cannot share a store`);
      }
    }
  }
  return { ...next, routers };
}

/**
 * Changes `running` (booted by bootTopology) to `next` (a checked topology), in the three stages of
 * the file comment. Existing processes keep their ports; new ones get free ports. On success the
 * running topology's model, ports and components are the new ones and every config file in
 * `conf/` is the target's.
 * @throws ConfigError (FILE:LINE) when `next` cannot be applied; nothing was changed.
 * @throws ApplyError when a stage fails (stage 1 is rolled back first).
 */
export async function applyTopology(running: RunningTopology, nextModel: Topology, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const ctl = running.control;
  const say = (line: string): void => opts.progress?.(line);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const drainTimeoutMs = opts.drainTimeoutMs ?? 60_000;
  if (ctl.stopping) throw new ApplyError('the topology is stopping');
  const down = running.components.filter((c) => c.kind === 'router' && c.state !== 'listening');
  if (down.length) throw new ApplyError(`router ${down.map((c) => `${c.name} (${c.state})`).join(', ')} is not running; restart up before applying changes`);

  const old = running.model;
  const next = checkApplicable(running, nextModel);
  const diff = diffTopology(old, next);
  const stages = stageModels(old, next);
  const result: ApplyResult = { diff, changed: false, summary: [], warnings: [], reloaded: { grow: [], shrink: [], retire: [] }, drains: [] };
  const confFile = (name: string): string => path.join(running.runDir, 'conf', `${name}.conf`);
  const readConf = (name: string): string => {
    try {
      return fs.readFileSync(confFile(name), 'utf8');
    } catch {
      return '';
    }
  };

  // A replicated or jdbc group needs services `up` starts with the topology; apply does not start
  // them, nor turn a running group into another kind.
  for (const p of diff.pairsAdded) {
    if (p.haPolicy !== 'shared-store') throw new ApplyError(`broker pair ${p.name} (haPolicy ${p.haPolicy}, topology line ${p.line}): apply adds shared-store pairs only; restart with \`amqp-mesh up\` to add a ${p.haPolicy} group`);
  }
  if (next.zookeeper !== old.zookeeper) throw new ApplyError('zookeeper cannot change while the topology runs; restart with `amqp-mesh up`');
  for (const p of next.brokerPairs) {
    const o = old.brokerPairs.find((x) => x.name === p.name);
    if (o && (o.haPolicy !== p.haPolicy || o.members !== p.members || o.jdbcUrl !== p.jdbcUrl)) {
      throw new ApplyError(`broker pair ${p.name} (topology line ${p.line}): haPolicy, members and jdbcUrl cannot change while it runs; restart with \`amqp-mesh up\``);
    }
  }

  // Ports: existing processes keep theirs; new ones get free ones no process holds or has planned.
  const plan: PortPlan = running.ports;
  const newRouters = diff.routersAdded.map((r) => r.name);
  const newBrokers = brokersOf({ ...next, brokerPairs: diff.pairsAdded });
  const planned = new Set([...Object.values(plan.interRouter), ...Object.values(plan.brokers), ...running.components.map((c) => c.port)]);
  const need = newRouters.length + newBrokers.length;
  const free = need ? (await pickFreePorts(need + planned.size)).filter((p) => !planned.has(p)).slice(0, need) : [];
  if (free.length < need) throw new ApplyError(`could not find ${need} free ports`);
  const dataDirs: Record<string, string> = {};
  for (const p of [...old.brokerPairs, ...next.brokerPairs]) dataDirs[p.name] = p.dataDir ?? path.join(running.runDir, 'data', p.name);
  const genOpts = { dataDirs, pairConnectors: ctl.pairConnectors, services: running.services };
  const textOf = (model: Topology, name: string): string => routerConfig(model, name, plan, genOpts);

  // What each stage would change, before anything is touched.
  const existing = old.routers.map((r) => r.name);
  const current = new Map(existing.map((n) => [n, readConf(n)]));
  // Ports are only added to the plan once it is certain the apply goes ahead.
  const tentative: PortPlan = { interRouter: { ...plan.interRouter }, brokers: { ...plan.brokers } };
  newRouters.forEach((n, i) => (tentative.interRouter[n] = free[i]));
  newBrokers.forEach((b, i) => (tentative.brokers[b.name] = free[newRouters.length + i]));
  const tText = (model: Topology, name: string): string => routerConfig(model, name, tentative, genOpts);
  const changedIn = (model: Topology, names: string[], before: (n: string) => string): string[] =>
    names.filter((n) => canonical(tText(model, n)) !== canonical(before(n)));
  const growChanged = changedIn(stages.grow, existing, (n) => current.get(n) as string);
  const shrinkChanged = changedIn(stages.shrink, [...existing, ...newRouters], (n) => tText(stages.grow, n));
  const finalChanged = changedIn(stages.final, next.routers.map((r) => r.name), (n) => tText(stages.shrink, n));
  const brokerChanges = old.brokerPairs.filter((p) => next.brokerPairs.some((x) => x.name === p.name)).flatMap((p) =>
    brokersOf(next).filter((b) => b.pair === p.name && canonical(brokerConfig(next, b, tentative, dataDirs[p.name], running.services)) !== canonical(readConf(b.name))));
  const changed = newRouters.length > 0 || newBrokers.length > 0 || diff.routersRemoved.length > 0 || diff.pairsRemoved.length > 0 ||
    growChanged.length > 0 || shrinkChanged.length > 0 || finalChanged.length > 0 || brokerChanges.length > 0;
  const changes = describeDiff(diff);
  say(`changes: ${changes.length ? changes.join('; ') : 'none in the topology'}`);
  if (!changed) {
    ctl.commit(next);
    for (const r of next.routers) fs.writeFileSync(confFile(r.name), textOf(next, r.name));
    result.summary.push('no change: the running topology already matches');
    say(result.summary[0]);
    return result;
  }
  result.changed = true;
  Object.assign(plan.interRouter, tentative.interRouter);
  Object.assign(plan.brokers, tentative.brokers);

  const spawned: Component[] = [];
  const retired = new Set<Component>();
  const check = (): void => {
    if (ctl.stopping) throw new ApplyError('the topology is stopping');
    for (const c of running.components) {
      if (c.state === 'exited' && !retired.has(c) && (c.kind === 'router' || spawned.includes(c))) {
        throw new ApplyError(`${c.kind} ${c.name} exited (${c.exitSignal ?? `code ${c.exitCode}`}); ${c.logFile}:\n${tail(c.logFile)}`);
      }
    }
  };
  const until = async (what: string, deadline: number, pred: () => boolean): Promise<void> => {
    for (;;) {
      ctl.poll();
      check();
      if (pred()) return;
      if (Date.now() > deadline) throw new ApplyError(`timed out waiting for ${what}`);
      await sleep(POLL_MS);
    }
  };
  const byName = (name: string): Component => {
    const c = running.components.find((x) => x.name === name);
    if (!c) throw new ApplyError(`no process ${name}`);
    return c;
  };

  /**
   * Writes `model`'s config for `names` (those whose meaning changed) and sends each SIGHUP;
   * waits for each router's `SIGHUP: configuration reloaded`, then for the inter-router
   * connections and auto-links the new config adds. Returns the log cursors (from before the
   * SIGHUP) for waits on what follows.
   */
  const reload = async (stage: string, textFor: (name: string) => string, names: string[], before: Map<string, string>, deadline: number): Promise<Map<string, LogCursor>> => {
    const cursors = new Map<string, LogCursor>();
    for (const name of names) {
      const c = byName(name);
      const cursor = LogCursor.atEnd(c.logFile);
      cursors.set(name, cursor);
      fs.writeFileSync(confFile(name), textFor(name));
      process.kill(c.pid, 'SIGHUP');
    }
    for (const name of names) {
      const cursor = cursors.get(name) as LogCursor;
      let line: string | undefined;
      await until(`router ${name} to reload its config`, deadline, () => {
        line = cursor.read().find((l) => /SIGHUP: configuration (reloaded|not reloaded)/.test(l));
        return line !== undefined;
      });
      const text = (line as string).replace(/^.*?SIGHUP: /, '');
      if (/not reloaded/.test(text)) throw new ApplyError(`router ${name} refused its new config: ${text}`);
      if (/need a restart/.test(text)) result.warnings.push(`router ${name}: ${text}`);
      say(`router ${name}: SIGHUP (${stage}): ${text.replace(/^configuration reloaded from \S+: ?/, '')}`);
    }
    await waitAdded(textFor, names, before, deadline);
    return cursors;
  };

  /** As {@link until}, for a condition read over the network (management), polled less often. */
  const untilRead = async (what: string, deadline: number, pred: () => Promise<boolean>): Promise<void> => {
    for (;;) {
      ctl.poll();
      check();
      if (await pred().catch(() => false)) return;
      if (Date.now() > deadline) throw new ApplyError(`timed out waiting for ${what}`);
      await sleep(MANAGEMENT_POLL_MS);
    }
  };

  /**
   * Waits for the inter-router connectors and auto-links that `model` adds on `names` to be up,
   * as each router's management shows them (connector connectionStatus, autoLink operStatus).
   */
  const waitAdded = async (textFor: (name: string) => string, names: string[], before: Map<string, string>, deadline: number): Promise<void> => {
    for (const name of names) {
      const text = textFor(name);
      const was = before.get(name) ?? '';
      const c = byName(name);
      const oldConns = interRouterConnectors(was);
      const connectors = [...interRouterConnectors(text)].filter(([k]) => !oldConns.has(k)).map(([, n]) => n);
      const peers = connectors.map((n) => n.replace(/^to-/, ''));
      const oldLinks = autoLinkKeys(was);
      const links = [...autoLinkKeys(text)].filter((k) => !oldLinks.has(k));
      if (connectors.length) {
        await untilRead(`router ${name}'s links to ${peers.join(', ')}`, deadline, async () => {
          const up = new Set((await queryEntities('127.0.0.1', c.port, 'connector', ['name', 'connectionStatus'])).filter((x) => x.connectionStatus === 'SUCCESS').map((x) => x.name));
          return connectors.every((n) => up.has(n));
        });
        say(`router ${name}: inter-router link${peers.length > 1 ? 's' : ''} to ${peers.join(', ')} up`);
      }
      if (links.length) {
        await untilRead(`router ${name}'s auto-links ${links.map((k) => k.replace(/\|/g, ' ')).join(', ')} to be active`, deadline, async () => {
          const rows = await queryEntities('127.0.0.1', c.port, 'router.config.autoLink', ['connection', 'address', 'direction', 'operStatus']);
          const active = new Set(rows.filter((x) => x.operStatus === 'active').map((x) => `${x.connection}|${x.address}|${x.direction}`));
          return links.every((k) => active.has(k));
        });
        say(`router ${name}: auto-links active: ${links.map((k) => k.split('|')).map(([conn, addr, dir]) => `${conn} ${addr} ${dir}`).join(', ')}`);
      }
    }
  };

  const converge = async (model: Topology, deadline: number): Promise<void> => {
    const routers = model.routers.map((r) => {
      const c = byName(r.name);
      return { name: r.name, host: r.host === '0.0.0.0' || r.host === '::' ? '127.0.0.1' : r.host, port: c.port };
    });
    let paths = 0;
    try {
      await probeMesh(routers, deadline, (_done, total) => (paths = total), () => {
        check();
        if (Date.now() > deadline) throw new ApplyError('timed out');
      });
    } catch (e) {
      throw new ApplyError((e as Error).message);
    }
    say(`mesh: converged (${routers.length} router${routers.length === 1 ? '' : 's'}, ${paths} path${paths === 1 ? '' : 's'})`);
  };

  // ---- Stage 1: grow ----
  const growBefore = new Map(current);
  const hupped: string[] = [];
  const brokerConfsBefore = new Map<string, string>();
  try {
    let deadline = Date.now() + timeoutMs;
    for (const b of brokersOf(next)) {
      if (newBrokers.some((x) => x.name === b.name)) fs.writeFileSync(confFile(b.name), brokerConfig(next, b, plan, dataDirs[b.pair], running.services));
    }
    for (const b of brokerChanges) {
      brokerConfsBefore.set(b.name, readConf(b.name));
      fs.writeFileSync(confFile(b.name), brokerConfig(next, b, plan, dataDirs[b.pair], running.services));
    }
    if (brokerChanges.length) {
      result.warnings.push(`broker config of ${brokerChanges.map((b) => b.name).join(', ')} changed (waypoint addresses or queues); brokers read it when they start, queues are created on first use meanwhile`);
    }
    // The first broker of a pair starts first, so it is the live one (the connector's primary host).
    for (const b of newBrokers.filter((x) => x.index === 1)) spawned.push(ctl.spawn('broker', b.name, b.pair));
    await until(`the first brokers of ${diff.pairsAdded.map((p) => p.name).join(', ')} to be live`, deadline, () => newBrokers.filter((x) => x.index === 1).every((b) => byName(b.name).state === 'live'));
    for (const b of newBrokers.filter((x) => x.index === 2)) spawned.push(ctl.spawn('broker', b.name, b.pair));
    await until(`the second brokers of ${diff.pairsAdded.map((p) => p.name).join(', ')} to wait for the store lock`, deadline, () => newBrokers.filter((x) => x.index === 2).every((b) => byName(b.name).state === 'slave'));
    for (const p of diff.pairsAdded) say(`broker pair ${p.name}: ${p.name}.b1 live on ${byName(`${p.name}.b1`).endpoint}, ${p.name}.b2 slave`);

    const routerCursors = new Map<string, LogCursor>();
    for (const name of newRouters) {
      fs.writeFileSync(confFile(name), textOf(stages.grow, name));
      // A router once removed and now back appends to its old log: read from its end.
      routerCursors.set(name, LogCursor.atEnd(path.join(running.runDir, 'logs', `${name}.log`)));
      spawned.push(ctl.spawn('router', name));
    }
    // Listening is logged just before a router installs its SIGHUP handler; `ready` comes after.
    await until(`router${newRouters.length > 1 ? 's' : ''} ${newRouters.join(', ')} to listen`, deadline, () =>
      newRouters.every((n) => byName(n).state === 'listening' && (routerCursors.get(n) as LogCursor).read().some((l) => / ready, amqp-mesh /.test(l))));
    for (const n of newRouters) {
      const c = byName(n);
      say(`router ${n}: listening on amqp://${c.endpoint} (inter-router :${c.interRouterPort}), pid ${c.pid}`);
    }
    hupped.push(...growChanged);
    result.reloaded.grow = [...growChanged];
    await reload('stage 1, add', (n) => textOf(stages.grow, n), growChanged, growBefore, deadline);
    await waitAdded((n) => textOf(stages.grow, n), newRouters, new Map(), deadline);
    deadline = Date.now() + timeoutMs;
    await converge(stages.grow, deadline);
  } catch (e) {
    // Put back what stage 1 changed: old configs re-read, new processes stopped.
    say(`stage 1 failed: ${(e as Error).message.split('\n')[0]}; rolling back`);
    const notes: string[] = [];
    const back = Date.now() + 10_000;
    for (const name of hupped) {
      const c = byName(name);
      if (c.state === 'exited') continue;
      const cursor = LogCursor.atEnd(c.logFile);
      fs.writeFileSync(confFile(name), current.get(name) as string);
      try {
        process.kill(c.pid, 'SIGHUP');
        while (Date.now() < back && !cursor.read().some((l) => l.includes('SIGHUP: configuration'))) await sleep(POLL_MS);
        notes.push(`router ${name} config restored`);
      } catch {
        // gone
      }
    }
    for (const c of [...spawned].reverse().sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'router' ? -1 : 1))) {
      retired.add(c);
      await ctl.retire(c);
      notes.push(`${c.kind} ${c.name} stopped`);
    }
    for (const n of [...newRouters, ...newBrokers.map((b) => b.name)]) {
      delete plan.interRouter[n];
      delete plan.brokers[n];
      try {
        fs.unlinkSync(confFile(n));
      } catch {
        // not written
      }
    }
    for (const [name, text] of brokerConfsBefore) fs.writeFileSync(confFile(name), text);
    throw new ApplyError(`${(e as Error).message}\nrolled back: ${notes.join(', ') || 'nothing had changed'}`);
  }

  // ---- Stage 2: shrink ----
  let deadline = Date.now() + timeoutMs;
  const shrinkBefore = new Map([...existing, ...newRouters].map((n) => [n, textOf(stages.grow, n)]));
  result.reloaded.shrink = [...shrinkChanged];
  const cursors = await reload('stage 2, remove and change', (n) => textOf(stages.shrink, n), shrinkChanged, shrinkBefore, deadline);
  await converge(stages.shrink, deadline);
  // Pair connectors gone from a router: removed pairs wait for their drain; moved ones drain in the background.
  const drainWaits: { pair: string; router: string }[] = [];
  for (const name of shrinkChanged) {
    const had = pairConnectors(shrinkBefore.get(name) as string);
    const has = pairConnectors(textOf(stages.shrink, name));
    for (const pair of had) if (!has.has(pair)) drainWaits.push({ pair, router: name });
  }
  const drainStart = Date.now();
  const drainDeadline = drainStart + drainTimeoutMs;
  const stopPair = async (pair: string): Promise<void> => {
    const brokers = running.components.filter((c) => c.kind === 'broker' && c.pair === pair);
    // The waiting broker first: it would otherwise take the store over.
    for (const c of [...brokers.filter((x) => x.state !== 'live'), ...brokers.filter((x) => x.state === 'live')]) {
      retired.add(c);
      await ctl.retire(c);
      delete plan.brokers[c.name];
    }
    say(`broker pair ${pair}: stopped (${brokers.map((c) => `${c.name} pid ${c.pid}`).join(', ')}); its store stays in ${dataDirs[pair]}`);
  };
  const removedPairs = new Set(diff.pairsRemoved.map((p) => p.name));
  for (const w of drainWaits.filter((x) => !removedPairs.has(x.pair))) {
    say(`broker pair ${w.pair}: its old connector on router ${w.router} drains in the background (it stays attached to router ${next.brokerPairs.find((p) => p.name === w.pair)?.router})`);
  }
  const waits = drainWaits.filter((w) => removedPairs.has(w.pair));
  if (waits.length) say(`waiting for ${waits.map((w) => `router ${w.router} to drain ${w.pair}`).join(', ')} (at most ${seconds(drainTimeoutMs)})`);

  /** Messages the live broker of a removed pair still holds in its queues (undefined: no live broker to ask). */
  const remaining = async (pair: string): Promise<number | undefined> => {
    const live = running.liveBroker(pair);
    const p = old.brokerPairs.find((x) => x.name === pair);
    if (!live || !p) return undefined;
    let total = 0;
    for (const q of p.queues) {
      const n = await browseCount(live.port, q, 5000);
      if (n === undefined) return undefined;
      total += n;
    }
    return total;
  };

  /**
   * The removed pairs whose connectors `router` held: wait for `connector PAIR: removed and
   * drained; closing`, then ask the pair's broker whether it really holds nothing. A router's
   * drain ends when the broker has nothing more to send, but deliveries the router still held for
   * slow consumers (up to the connector's linkCapacity) go back to the broker when the connection
   * closes. Such a pair gets a drain-only connector (`in` auto-links, linkCapacity 1) until the
   * broker has sent everything, then it is removed again; until the broker is empty or the drain
   * times out.
   */
  const drainOn = async (router: string, pairs: string[]): Promise<void> => {
    let cursor = cursors.get(router) as LogCursor;
    let pending = pairs;
    for (let round = 1; ; round++) {
      const closed = (p: string): boolean => cursor.read().some((l) => l.includes(`connector ${p}: removed and drained; closing`));
      for (;;) {
        ctl.poll();
        check();
        if (pending.every(closed) || Date.now() > drainDeadline) break;
        await sleep(POLL_MS);
      }
      const left: { pair: string; count: number | undefined }[] = [];
      for (const pair of pending) {
        const count = closed(pair) ? await remaining(pair) : undefined;
        if (count === 0) {
          const ms = Date.now() - drainStart;
          result.drains.push({ pair, router, drained: true, ms });
          say(`router ${router}: ${pair} drained (${seconds(ms)}${round > 1 ? `, ${round} rounds` : ''}); its broker holds nothing`);
        } else left.push({ pair, count });
      }
      if (left.length === 0) return;
      if (Date.now() > drainDeadline) {
        for (const { pair, count } of left) {
          const ms = Date.now() - drainStart;
          result.drains.push({ pair, router, drained: false, ms });
          const held = count === undefined ? 'what it still holds' : `the ${count} message${count === 1 ? '' : 's'} it still holds`;
          say(`router ${router}: ${pair} not drained after ${seconds(ms)}; stopping it anyway`);
          result.warnings.push(`broker pair ${pair} was not drained by router ${router} within ${seconds(drainTimeoutMs)}; ${held} stay${count === 1 ? 's' : ''} in its store ${dataDirs[pair]}`);
        }
        return;
      }
      // Round n+1: the connector comes back with `in` auto-links only, then goes again.
      const names = left.map((l) => l.pair);
      say(`router ${router}: ${left.map((l) => `${l.pair}'s broker still holds ${l.count ?? 'some'} message${l.count === 1 ? '' : 's'}`).join(', ')} (in flight to consumers when its link detached); draining again`);
      const shrinkText = textOf(stages.shrink, router);
      const again: Topology = { ...stages.shrink, brokerPairs: [...stages.shrink.brokerPairs, ...old.brokerPairs.filter((p) => names.includes(p.name)).map((p) => ({ ...p, router }))] };
      const againText = routerConfig(again, router, plan, { ...genOpts, drainOnly: names });
      await reload(`drain round ${round + 1}`, () => againText, [router], new Map([[router, shrinkText]]), Math.max(drainDeadline, Date.now() + 10_000));
      // The consumers take what the broker sends, one at a time (linkCapacity 1); once the broker
      // has nothing left to send, the link is drained and detached with at most one in flight.
      while (Date.now() < drainDeadline) {
        const counts = await Promise.all(names.map(remaining));
        if (counts.every((n) => n === 0)) break;
        check();
        await sleep(200);
      }
      cursor = (await reload(`drain round ${round + 1}`, () => shrinkText, [router], new Map([[router, againText]]), Date.now() + 10_000)).get(router) as LogCursor;
      pending = names;
    }
  };
  const byRouter = new Map<string, string[]>();
  for (const w of waits) byRouter.set(w.router, [...(byRouter.get(w.router) ?? []), w.pair]);
  await Promise.all([...byRouter].map(([router, pairs]) => drainOn(router, pairs)));
  // A pair stops once every router that held its connector is done with it (or timed out).
  for (const pair of removedPairs) if (running.components.some((c) => c.pair === pair)) await stopPair(pair);

  // ---- Stage 3: removed routers go ----
  for (const r of diff.routersRemoved) {
    const c = byName(r.name);
    retired.add(c);
    await ctl.retire(c);
    delete plan.interRouter[r.name];
    say(`router ${r.name}: stopped (pid ${c.pid})`);
  }
  deadline = Date.now() + timeoutMs;
  result.reloaded.retire = [...finalChanged];
  await reload('stage 3, drop links to removed routers', (n) => textOf(stages.final, n), finalChanged, new Map(next.routers.map((r) => [r.name, textOf(stages.shrink, r.name)])), deadline);
  if (finalChanged.length || diff.routersRemoved.length) await converge(stages.final, deadline);

  // Every file is now the target's (comments name the new topology file and its lines).
  for (const r of next.routers) fs.writeFileSync(confFile(r.name), textOf(next, r.name));
  ctl.commit(next);

  result.summary.push(...changes);
  for (const n of newRouters) {
    const c = byName(n);
    result.summary.push(`started router ${n}: amqp://${c.endpoint} (inter-router :${c.interRouterPort}), pid ${c.pid}`);
  }
  for (const p of diff.pairsAdded) result.summary.push(`started broker pair ${p.name}: ${p.name}.b1 live (${byName(`${p.name}.b1`).endpoint}), ${p.name}.b2 slave`);
  const stageNames = { grow: 'stage 1, add', shrink: 'stage 2, remove and change', retire: 'stage 3, drop links to removed routers' };
  for (const [stage, names] of Object.entries(result.reloaded)) {
    if (names.length) result.summary.push(`reloaded (SIGHUP, ${stageNames[stage as keyof typeof stageNames]}): ${names.join(', ')}`);
  }
  for (const d of result.drains) result.summary.push(`broker pair ${d.pair}: ${d.drained ? 'drained' : 'NOT drained (timeout)'} by router ${d.router} in ${seconds(d.ms)}, then stopped`);
  for (const p of diff.pairsRemoved) if (!result.drains.some((d) => d.pair === p.name)) result.summary.push(`broker pair ${p.name}: stopped (no router held its connector)`);
  for (const r of diff.routersRemoved) result.summary.push(`stopped router ${r.name}`);
  for (const w of result.warnings) result.summary.push(`warning: ${w}`);
  return result;
}
