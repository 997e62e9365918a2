/**
 * What a reloaded configuration changes in a running router (SIGHUP): a typed diff computed
 * from the old and new settings, pure, applied by the server (router/io/server.ts reconfigure).
 */
import type { ConnectorSettings, ListenerSettings, RouterSettings } from './io/server';
import type { RouteContainerSettings } from './io/route-container';

/** The changes a reload makes. */
export interface RouterReloadDiff {
  /** Changes ignored until a restart (listeners, router id or mode). */
  needRestart: string[];
  /** Inter-router connectors: removed (closed), added (dialled), kept (untouched). */
  connectorsRemoved: ConnectorSettings[];
  connectorsAdded: ConnectorSettings[];
  connectorsKept: ConnectorSettings[];
  /** Route-container connectors to the same endpoint keep their connection; only auto-links change. */
  routeContainersKept: { old: RouteContainerSettings; next: RouteContainerSettings }[];
  routeContainersRemoved: RouteContainerSettings[];
  routeContainersAdded: RouteContainerSettings[];
}

const listenerKey = (l: ListenerSettings): string => `${l.name}|${l.host}|${l.port}|${l.role}|${l.cost}`;
/** Everything that defines an inter-router connector (a cost change reconnects). */
const connectorKey = (c: ConnectorSettings): string => `${c.name}|${c.host}|${c.port}|${c.cost}`;
const routeContainerKey = (r: RouteContainerSettings): string => `${r.name}|${r.host}|${r.port}|${r.failoverUrls.map((u) => `${u.host}:${u.port}`).join(',')}`;

/**
 * The diff from `cur` to `next`. `running` are the route-container connectors still serving (a
 * retiring one does not count as present).
 */
export function computeReloadDiff(cur: RouterSettings, next: RouterSettings, running: readonly RouteContainerSettings[]): RouterReloadDiff {
  const needRestart: string[] = [];
  if (next.id !== cur.id || next.mode !== cur.mode) needRestart.push('router id/mode changes need a restart (ignored)');
  if (next.listeners.map(listenerKey).join() !== cur.listeners.map(listenerKey).join()) needRestart.push('listener changes need a restart (ignored)');
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
    connectorsRemoved: oldC.filter((c) => !newKeys.has(connectorKey(c))),
    connectorsAdded: newC.filter((n) => !oldKeys.has(connectorKey(n))),
    connectorsKept: oldC.filter((c) => newKeys.has(connectorKey(c))),
    routeContainersKept,
    routeContainersRemoved,
    routeContainersAdded: newR.filter((n) => !running.some((r) => routeContainerKey(r) === routeContainerKey(n))),
  };
}
