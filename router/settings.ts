/**
 * The router's validated configuration mapped onto what the running router needs
 * ({@link RouterSettings}): used at start and on every reload.
 */
import { ConfigError, RouterConfig } from './config';
import { listenerSocketSettings } from '../config/listener';
import { usersFor } from '../config/users';
import { listenerFailoverServerList } from '../amqp/failover';
import type { RouterSettings, ListenerSettings, ConnectorSettings } from './io/server';
import type { AutoLinkSettings, RouteContainerSettings, UnboundAutoLink } from './io/route-container';
import type { LinkRouteSettings } from './io/link-route';
import type { AddressRule } from './core/addresses';

/** Maps the loaded configuration onto what the router process needs. */
export function settingsFromConfig(cfg: RouterConfig): RouterSettings {
  const listeners: ListenerSettings[] = cfg.listeners.map((l, i) => ({
    // Name, address, SASL, limits and transport (TLS, WebSocket, handshake deadline), as the broker's.
    ...listenerSocketSettings(l, i),
    linkCapacity: l.linkCapacity,
    stripAnnotations: l.stripAnnotations,
    // Connections on a route-container listener are brokers or services connecting in: link
    // routes and auto-links naming the listener (or their container-id) use them.
    role: l.role,
    cost: l.cost,
    ...(l.policyVhost !== undefined ? { policyVhost: l.policyVhost } : {}),
    ...(l.multiTenant ? { multiTenant: true } : {}),
    ...(l.failoverUrls !== undefined && l.role !== 'inter-router' ? { failoverServerList: listenerFailoverServerList(l.failoverUrls) } : {}),
  }));
  // Route-container connectors, and normal ones (kept up the same way, used by nothing else).
  const routeContainers: RouteContainerSettings[] = cfg.connectors
    .filter((c) => c.role === 'route-container' || c.role === 'normal')
    .map((c, i) => ({
      role: c.role === 'normal' ? 'normal' as const : 'route-container' as const,
      name: c.name ?? `connector${i}/${c.host}:${c.port}`,
      host: c.host,
      port: c.port,
      failoverUrls: (c.failoverUrls ?? []).map((u) => ({ host: u.host, port: u.port })),
      maxFrameSize: c.maxFrameSize,
      idleTimeoutSeconds: c.idleTimeoutSeconds,
      linkCapacity: c.linkCapacity,
      sasl: connectorSasl(c),
      ...(c.policyVhost !== undefined && c.policyVhost !== '' ? { policyVhost: c.policyVhost } : {}),
      autoLinks: [],
      transport: c.transport,
    }));
  const routeContainerListeners = listeners.filter((l) => l.role === 'route-container').map((l) => ({ name: l.name, autoLinks: [] as AutoLinkSettings[] }));
  const linkRoutes: LinkRouteSettings[] = [];
  cfg.linkRoutes.forEach((l, i) => {
    if (l.addExternalPrefix !== undefined || l.delExternalPrefix !== undefined) {
      throw new ConfigError('ERR_CONFIG_NOT_SUPPORTED', l.source.file, l.source.line, 'linkRoute addExternalPrefix/delExternalPrefix are not supported yet');
    }
    if (l.containerId !== undefined) {
      // Served by whichever route-container connection's peer announces this container-id.
      linkRoutes.push({ name: l.name ?? `linkRoute${i}`, prefix: l.prefix, pattern: l.pattern, direction: l.direction, containerId: l.containerId });
      return;
    }
    // Without a connection the route only passes attaches on (towards the router that has the
    // container, learnt from the mesh); kept so that its attaches are link-routed (or refused
    // qd:no-route-to-dest) and management lists its address, as qdrouterd does.
    if (l.connection === undefined) {
      linkRoutes.push({ name: l.name ?? `linkRoute${i}`, prefix: l.prefix, pattern: l.pattern, direction: l.direction });
      return;
    }
    // Bound by name (LinkRouter): active while a route-container connection of that name is up,
    // which may be none yet (a template shared by the mesh, a connector a reload adds).
    linkRoutes.push({ name: l.name ?? `linkRoute${i}`, prefix: l.prefix, pattern: l.pattern, direction: l.direction, connection: l.connection });
  });
  const unboundAutoLinks: UnboundAutoLink[] = [];
  cfg.autoLinks.forEach((a, i) => {
    const settings = { name: a.name ?? `${a.address}.${a.direction}.${i}`, address: a.address, direction: a.direction, phase: a.phase, externalAddress: a.externalAddress };
    if (a.containerId !== undefined) {
      // Attached on whichever route-container connection's peer announces this container-id.
      for (const rc of [...routeContainers.filter((r) => r.role !== 'normal'), ...routeContainerListeners]) rc.autoLinks.push({ ...settings, containerId: a.containerId });
      return;
    }
    // Neither connection nor containerId: never attached (the loader warned).
    if (a.connection === undefined) return;
    const rl = routeContainerListeners.find((r) => r.name === a.connection);
    if (rl !== undefined) {
      rl.autoLinks.push(settings);
      return;
    }
    const rc = routeContainers.find((r) => r.name === a.connection && r.role !== 'normal');
    // No route-container connector of that name (yet): kept, inactive, until a reload adds one.
    if (rc === undefined) unboundAutoLinks.push({ ...settings, connection: a.connection });
    else rc.autoLinks.push(settings);
  });
  const connectors: ConnectorSettings[] = cfg.connectors
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => c.role === 'inter-router' || (c.role === 'edge' && cfg.router.mode === 'edge'))
    .map(({ c, i }) => ({
      role: c.role === 'edge' ? 'edge' as const : 'inter-router' as const,
      name: c.name ?? `connector${i}/${c.host}:${c.port}`,
      host: c.host,
      port: c.port,
      cost: c.cost,
      maxFrameSize: c.maxFrameSize,
      idleTimeoutSeconds: c.idleTimeoutSeconds,
      sasl: connectorSasl(c),
      transport: c.transport,
    }));
  const r = cfg.router;
  const addresses: AddressRule[] = cfg.addresses.map((a) => ({
    prefix: a.prefix ?? undefined,
    pattern: a.pattern ?? undefined,
    distribution: a.distribution,
    waypoint: a.waypoint,
    ingressPhase: a.ingressPhase,
    egressPhase: a.egressPhase,
    ...(a.priority >= 0 ? { priority: a.priority } : {}),
  }));
  const users = usersFor(cfg.router, cfg.listeners, 'router');
  return {
    connectors,
    routeContainers,
    routeContainerListeners,
    unboundAutoLinks,
    linkRoutes,
    mesh: {
      helloIntervalMs: r.helloIntervalSeconds * 1000,
      helloMaxAgeMs: r.helloMaxAgeSeconds * 1000,
      raIntervalMs: r.raIntervalSeconds * 1000,
      raIntervalFluxMs: r.raIntervalFluxSeconds * 1000,
      remoteLsMaxAgeMs: r.remoteLsMaxAgeSeconds * 1000,
    },
    ...(users !== undefined ? { users } : {}),
    policy: cfg.policy,
    id: cfg.router.id,
    mode: cfg.router.mode,
    listeners,
    addresses,
    maxMessageSize: 64 * 1024 * 1024,
    maxAddressLength: 4096,
  };
}

/** SASL towards a connector's peer: PLAIN with credentials, else EXTERNAL when asked for, else ANONYMOUS. */
function connectorSasl(c: RouterConfig['connectors'][number]): ConnectorSettings['sasl'] {
  if (c.saslUsername !== undefined) return { mechanism: 'PLAIN', user: c.saslUsername, password: c.saslPassword };
  if (c.saslMechanisms?.includes('EXTERNAL')) return { mechanism: 'EXTERNAL' };
  return { mechanism: 'ANONYMOUS' };
}
