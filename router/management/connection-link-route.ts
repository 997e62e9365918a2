/**
 * Management entity `router.connection.linkRoute`: link routes a connection makes for itself
 * over its own management link (qdrouterd's connection-scoped routes). Each connection sees,
 * creates and deletes only its own; they go when it closes.
 */
import { withAllAttributes, type EntityModule } from './view';
import { ConfigChangeError } from '../config-store';
import { addressTokens } from '../../config/match';
import type { ConnectionLinkRoute } from '../io/link-route';

export const connectionLinkRouteEntity: EntityModule = {
  name: 'router.connection.linkRoute',
  bases: ['configurationEntity', 'entity'],
  attributes: ['name', 'identity', 'type', 'pattern', 'direction', 'containerId'],
  operations: ['CREATE', 'DELETE', 'READ'],
  schema: { pattern: { type: 'string', required: true }, direction: { type: ['in', 'out'], required: true } },
  read(v) {
    return v.connectionLinkRoutes(v.requester).map((r) => withAllAttributes(connectionLinkRouteEntity.attributes, { ...r, type: 'org.apache.qpid.dispatch.router.connection.linkRoute' }));
  },
};

/**
 * The route a CREATE asks for, checked as qdrouterd's core agent checks it: a `pattern` string
 * with tokens and a `direction` of in or out; the name (defaulting to the identity) unused on the
 * connection so far.
 * @throws ConfigChangeError 400 with what is wrong.
 */
export function computeConnectionLinkRoute(attributes: Record<string, unknown>, identity: string, namesInUse: ReadonlySet<string>): ConnectionLinkRoute {
  const { pattern, direction } = attributes;
  if (typeof pattern !== 'string') throw new ConfigChangeError(400, `'pattern' must be a string of tokens, got ${pattern === undefined ? 'none' : JSON.stringify(typeof pattern === 'bigint' ? String(pattern) : pattern)}`);
  if (addressTokens(pattern) === '') throw new ConfigChangeError(400, `pattern "${pattern}" has no tokens; expected something like "orders" or "orders.*"`);
  if (direction !== 'in' && direction !== 'out') throw new ConfigChangeError(400, `'direction' must be in or out, got ${direction === undefined ? 'none' : JSON.stringify(direction)}`);
  const name = attributes.name === undefined || attributes.name === null ? identity : attributes.name;
  if (typeof name !== 'string') throw new ConfigChangeError(400, `'name' must be a string`);
  if (namesInUse.has(name)) throw new ConfigChangeError(400, `Name conflicts with an existing entity: '${name}'`);
  return { name, identity, pattern, direction };
}
