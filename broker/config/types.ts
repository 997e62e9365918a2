import type { PolicySettings } from '../../policy/engine';
/**
 * The validated, typed configuration the broker runs from.
 *
 * Like the router's (router/config/types.ts): attribute names are camelCase, defaults are filled
 * in, numbers are numbers, and every entity says where it came from.
 */

import type { ListenerTransport } from '../../amqp/transport/settings';
import type { ConfigWarning } from '../../config/errors';
import type { SaslMechanism } from '../../config/listener';
import type { LogEntity } from '../../config/log';
import type { SslProfileEntity } from '../../config/ssl-profile';
import type { EntitySource } from '../../config/types';

/** How an address delivers: `anycast` is a queue (each message to one consumer), `multicast` a topic (a copy per subscription). */
export type RoutingType = 'anycast' | 'multicast';

/** What a producer meets when an address is over its maxSizeBytes: credit withheld (`BLOCK`) or the message rejected (`FAIL`). */
export type AddressFullPolicy = 'BLOCK' | 'FAIL';

/** What every typed broker entity carries. */
export interface BrokerEntityCommon {
  /** The user-assigned name, if any (a queue's name is its identity and always set). */
  name?: string;
  /** Where the entity came from; line 0 for an entity created from defaults. */
  source: EntitySource;
}

/** The `broker` entity: exactly one per configuration, created from defaults if the file has none. */
export interface BrokerEntity extends BrokerEntityCommon {
  type: 'broker';
  /** The broker's identity; generated as `broker-<hostname>-<random>` when not set. */
  id: string;
  /**
   * Absolute directory of the journal and the store lock; a relative path in the file is resolved
   * against the configuration file's directory. Always set when `persistent` is true (required);
   * may be unset only when `persistent` is false.
   */
  dataDir?: string;
  /** false: in-memory store, nothing written to disk (default true). */
  persistent: boolean;
  /** Milliseconds between polls of the store lock by a waiting (slave) broker, and between lease renewals (default 1000). */
  lockPollMs: number;
  /** Milliseconds a lock holder's lease lasts without renewal (default 3000); always more than lockPollMs. */
  leaseMs: number;
  /**
   * How the store stays available (Artemis's names): `shared-store` (default; one dataDir both
   * members reach, lock in it), `jdbc` (store and lock in PostgreSQL at jdbcUrl), `replication`.
   */
  haPolicy: 'shared-store' | 'replication' | 'jdbc';
  /** The group whose members serve one logical broker (required for jdbc and replication). */
  haGroup?: string;
  /** PostgreSQL URL, `postgresql://user@host:port/db` (jdbc). */
  jdbcUrl?: string;
  /** ZooKeeper connect string, `host:port[,host:port...]` (replication). */
  zookeeper?: string;
  /** Members of a replicated group; a quorum is a majority (default 3). */
  groupSize: number;
  /** Host of this member's replication listener, announced to the group (default 127.0.0.1). */
  replicationHost: string;
  /** Port of the replication listener; 0 (default): one from the OS. */
  replicationPort: number;
  /** Largest message accepted, in bytes (default 64 MiB; a configured 0 also means 64 MiB). */
  maxMessageSize: number;
  /** Bytes of messages held across all addresses before their full policy applies; -1 (default) = half of memory. */
  globalMaxSizeBytes: number;
  /** The journal is compacted only once it holds at least this many bytes (default 64 MiB). */
  journalCompactMinBytes: number;
  /** Bytes of message bodies kept in memory before bodies are evicted to disk and read back when needed (default 64 MiB). */
  pageCacheBytes: number;
  /** Where SASL PLAIN users live: `<saslConfigDir>/<saslConfigName>.users`, as for the router (path as written). */
  saslConfigDir?: string;
  saslConfigName: string;
}

/** A `listener` entity: where the broker accepts AMQP connections (a slave opens none until it is live). */
export interface BrokerListener extends BrokerEntityCommon {
  type: 'listener';
  /** Host or address to listen on; "" (the default) means all local addresses. */
  host: string;
  /** TCP port; 0 asks for an ephemeral port. `amqp` and `amqps` are resolved to 5672 and 5671. */
  port: number;
  /** Offered SASL mechanisms, upper-case; default `['ANONYMOUS', 'PLAIN']`, or `['PLAIN']` with authenticatePeer; EXTERNAL with an sslProfile that has a caCertFile. */
  saslMechanisms: SaslMechanism[];
  /** Require SASL authentication of the peer (default false). */
  authenticatePeer: boolean;
  /** Largest frame the broker accepts, in octets (default 16384). */
  maxFrameSize: number;
  /** Most sessions per connection (default 32768; a configured 0 also means 32768). */
  maxSessions: number;
  /** Close a connection after this many seconds without a frame; 0 disables (default 16). */
  idleTimeoutSeconds: number;
  /** TLS (sslProfile, requireSsl), WebSocket (http, websockets) and the handshake deadline, as for the router's listeners (config/transport.ts). */
  transport: ListenerTransport;
}

/** Settings applied to a queue or topic when it is created; see {@link matchAddress}. */
export interface BrokerAddressSettings {
  /** Default anycast. */
  routingType: RoutingType;
  /** Deliveries of a message before it goes to the dead letter address (or is dropped); -1 = unlimited (default 10). */
  maxDeliveryAttempts: number;
  /** Where messages go after maxDeliveryAttempts; unset: they are dropped. */
  deadLetterAddress?: string;
  /** Where expired messages go; unset: they are dropped. */
  expiryAddress?: string;
  /** Bytes of messages the address holds before addressFullPolicy applies; -1 = unlimited (default). */
  maxSizeBytes: number;
  /** Default BLOCK. */
  addressFullPolicy: AddressFullPolicy;
  /** Queues and topics are created on first use (default true); false: only configured `queue` entities exist. */
  autoCreate: boolean;
}

/** An `address` entity: settings for the addresses it matches. Exactly one of prefix and pattern is set. */
export interface BrokerAddress extends BrokerAddressSettings, BrokerEntityCommon {
  type: 'address';
  /** Matches addresses that start with these tokens (tokens are separated by `.` or `/`). */
  prefix?: string;
  /** Matches addresses against a wildcard pattern: `*` is one token, `#` is zero or more. */
  pattern?: string;
}

/** A `queue` entity: a queue created at startup. */
export interface BrokerQueue extends BrokerEntityCommon {
  type: 'queue';
  /** The queue's name (unique among queues). */
  name: string;
  /** The address the queue is bound to (default: the queue's name). */
  address: string;
  /** As written; otherwise the routingType of the address settings matching `address` (anycast when none match). */
  routingType: RoutingType;
  /** Kept across restarts (default true); has no effect with broker persistent: false. */
  durable: boolean;
}

/** A whole validated broker configuration. */
export interface BrokerConfig {
  broker: BrokerEntity;
  listeners: BrokerListener[];
  /** In file order. */
  addresses: BrokerAddress[];
  /** In file order. */
  queues: BrokerQueue[];
  /** qdrouterd's log entity (config/log.ts), read as in a router file. */
  logs: LogEntity[];
  /** In file order; listeners carry theirs in `transport`. */
  sslProfiles: SslProfileEntity[];
  /** Who may connect, send and consume (qdrouterd's policy and vhosts). */
  policy: PolicySettings;
  /** Everything accepted with a remark, in file order; the broker should log these at startup. */
  warnings: ConfigWarning[];
  /** The configuration file name, as given (used in messages). */
  file: string;
}
