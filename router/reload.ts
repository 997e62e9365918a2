/**
 * What a new configuration changes in a running router (a SIGHUP reload or a management CREATE,
 * UPDATE or DELETE): a typed diff computed from the old and new settings, pure, applied by the
 * server (router/io/server.ts reconfigure).
 */
import type { ConnectorSettings, ListenerSettings, RouterSettings } from './io/server';
import type { RouteContainerSettings } from './io/route-container';

/** The changes a reload makes. */
export interface RouterReloadDiff {
  /** Changes ignored until a restart (router id or mode). */
  needRestart: string[];
  /** Listeners: removed (stop listening; their connections stay), added (listen). A changed one is both. */
  listenersRemoved: ListenerSettings[];
  listenersAdded: ListenerSettings[];
  /** Inter-router connectors: removed (closed), added (dialled), kept (untouched). */
  connectorsRemoved: ConnectorSettings[];
  connectorsAdded: ConnectorSettings[];
  connectorsKept: ConnectorSettings[];
  /** Route-container connectors to the same endpoint keep their connection; only auto-links change. */
  routeContainersKept: { old: RouteContainerSettings; next: RouteContainerSettings }[];
  routeContainersRemoved: RouteContainerSettings[];
  routeContainersAdded: RouteContainerSettings[];
}

/** Everything that defines a listener: any change re-opens it. */
const listenerKey = (l: ListenerSettings): string => JSON.stringify(l);
/** Everything that defines an inter-router connector (a cost change reconnects). */
const connectorKey = (c: ConnectorSettings): string => `${c.role}|${c.name}|${c.host}|${c.port}|${c.cost}`;
const routeContainerKey = (r: RouteContainerSettings): string => `${r.name}|${r.host}|${r.port}|${r.failoverUrls.map((u) => `${u.host}:${u.port}`).join(',')}`;

/**
 * The diff from `cur` to `next`. `running` are the route-container connectors still serving (a
 * retiring one does not count as present).
 */
export function computeReloadDiff(cur: RouterSettings, next: RouterSettings, running: readonly RouteContainerSettings[]): RouterReloadDiff {
  const needRestart: string[] = [];
  if (next.id !== cur.id || next.mode !== cur.mode) needRestart.push('router id/mode changes need a restart (ignored)');
  const oldL = new Set(cur.listeners.map(listenerKey));
  const newL = new Set(next.listeners.map(listenerKey));
  const oldC = cur.connectors ?? [];
  const newC = next.connectors ?? [];
  const newKeys = new Set(newC.map(connectorKey));
  const oldKeys = new Set(oldC.map(connectorKey));
  const newR = next.routeContainers ?? [];
  const routeContainersKept: RouterReloadDiff['routeContainersKept'] = [];
  const routeContainersRemoved: RouteContainerSettings[] = [];
  for (const old of running) {
    const match = newR.find((n) => routeContainerKey(n) === routeContainerKey(old));
    if (match) routeContainersKept.push({ old, next: match });
    else routeContainersRemoved.push(old);
  }
  return {
    needRestart,
    listenersRemoved: cur.listeners.filter((l) => !newL.has(listenerKey(l))),
    listenersAdded: next.listeners.filter((l) => !oldL.has(listenerKey(l))),
    connectorsRemoved: oldC.filter((c) => !newKeys.has(connectorKey(c))),
    connectorsAdded: newC.filter((n) => !oldKeys.has(connectorKey(n))),
    connectorsKept: oldC.filter((c) => newKeys.has(connectorKey(c))),
    routeContainersKept,
    routeContainersRemoved,
    routeContainersAdded: newR.filter((n) => !running.some((r) => routeContainerKey(r) === routeContainerKey(n))),
  };
}
