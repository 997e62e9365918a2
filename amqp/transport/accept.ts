/**
 * The engine options of a connection accepted on a listener, shared by the router and the
 * broker: limits from the listener, identity and SASL from the application and the transport.
 */
import type { ConnectionOptions } from '../engine/connection';
import type { SaslUsers } from '../sasl/scram';
import type { ListenerTransport } from './settings';
import type { Transport } from './transport';

/** What an accepted connection takes from its listener (qdrouterd `listener` attributes). */
export interface AcceptingListener {
  maxFrameSize: number;
  maxSessions: number;
  idleTimeoutSeconds: number;
  saslMechanisms: string[];
  authenticatePeer: boolean;
}

/** A listener of the router or the broker: where it listens, its limits and SASL, how it takes sockets. */
export interface ServerListenerSettings extends AcceptingListener {
  name: string;
  host: string;
  port: number;
  /** TLS, WebSocket, handshake deadline (plain TCP when absent). */
  transport?: ListenerTransport;
}

/** What the application adds: who we are, what we offer, how PLAIN users are checked. */
export interface AcceptingApplication {
  containerId: string;
  maxMessageSize: number;
  /** SASL users (PLAIN and SCRAM), when the application has any. */
  users?: SaslUsers;
  offeredCapabilities: string[];
  desiredCapabilities?: string[];
  properties: Record<string, unknown>;
}

/**
 * Options for an engine accepting `t` on `l`. Without authenticatePeer a PLAIN identity is
 * informational, as with ANONYMOUS; with it, the user must be known with that password. SCRAM
 * always proves the password.
 */
export function acceptedConnectionOptions(l: AcceptingListener, t: Transport, app: AcceptingApplication): ConnectionOptions {
  const users = app.users;
  return {
    containerId: app.containerId,
    maxFrameSize: l.maxFrameSize,
    channelMax: Math.max(0, l.maxSessions - 1),
    idleTimeoutMs: l.idleTimeoutSeconds * 1000,
    maxMessageSize: app.maxMessageSize,
    handleMax: 65535,
    saslMechanisms: l.saslMechanisms,
    requireSasl: l.authenticatePeer,
    checkPlain: (user, password) => {
      if (!l.authenticatePeer) return true;
      return users !== undefined && users.checkPassword(user, password);
    },
    scramCredentials: (user: string) => users?.credentials(user),
    externalId: t.externalId,
    offeredCapabilities: app.offeredCapabilities,
    desiredCapabilities: app.desiredCapabilities,
    properties: app.properties,
    incomingWindow: 65536,
  };
}
