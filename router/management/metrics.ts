/**
 * `/metrics` of an http listener: the router's counters in Prometheus text, under qdrouterd's
 * names (http-libwebsockets.c), read from the router entity as management reads it.
 */
import { routerEntity } from './router';
import type { ManagementView } from './view';

/** qdrouterd's metric names, their types, and the router attribute each reports. */
const METRICS: readonly [name: string, type: 'gauge' | 'counter', attribute: string][] = [
  ['qdr_connections_total', 'gauge', 'connectionCount'],
  ['qdr_links_total', 'gauge', 'linkCount'],
  ['qdr_addresses_total', 'gauge', 'addrCount'],
  ['qdr_routers_total', 'gauge', 'nodeCount'],
  ['qdr_link_routes_total', 'gauge', 'linkRouteCount'],
  ['qdr_auto_links_total', 'gauge', 'autoLinkCount'],
  ['qdr_presettled_deliveries_total', 'counter', 'presettledDeliveries'],
  ['qdr_dropped_presettled_deliveries_total', 'counter', 'droppedPresettledDeliveries'],
  ['qdr_accepted_deliveries_total', 'counter', 'acceptedDeliveries'],
  ['qdr_released_deliveries_total', 'counter', 'releasedDeliveries'],
  ['qdr_rejected_deliveries_total', 'counter', 'rejectedDeliveries'],
  ['qdr_modified_deliveries_total', 'counter', 'modifiedDeliveries'],
  ['qdr_deliveries_ingress_total', 'counter', 'deliveriesIngress'],
  ['qdr_deliveries_egress_total', 'counter', 'deliveriesEgress'],
  ['qdr_deliveries_transit_total', 'counter', 'deliveriesTransit'],
  ['qdr_deliveries_ingress_route_container_total', 'counter', 'deliveriesIngressRouteContainer'],
  ['qdr_deliveries_egress_route_container_total', 'counter', 'deliveriesEgressRouteContainer'],
  ['qdr_deliveries_delayed_1sec_total', 'counter', 'deliveriesDelayed1Sec'],
  ['qdr_deliveries_delayed_10sec_total', 'counter', 'deliveriesDelayed10Sec'],
  ['qdr_deliveries_stuck_total', 'gauge', 'deliveriesStuck'],
  ['qdr_links_blocked_total', 'gauge', 'blockedLinkCount'],
  ['qdr_deliveries_redirected_to_fallback_total', 'counter', 'deliveriesRedirectedToFallback'],
];

/** The router's metrics as Prometheus text (`# TYPE name type` then `name value`, as qdrouterd writes them). */
export function computeMetricsText(v: ManagementView): string {
  const r = routerEntity.read(v)[0] as Record<string, unknown>;
  return METRICS.map(([name, type, attribute]) => `# TYPE ${name} ${type}\n${name} ${Number(r[attribute] ?? 0)}\n`).join('');
}
