/**
 * What the transport layer needs of `sslProfile`, `listener` and `connector` entities, already
 * validated and resolved by the configuration (files named exist; passwords read). Shared by the
 * router and the broker: both applications' listeners and connectors carry these.
 */

/** A resolved qdrouterd `sslProfile`. */
export interface TlsProfile {
  name: string;
  /** PEM certificate chain presented to peers (certFile). */
  cert?: Buffer;
  /** PEM private key (privateKeyFile), possibly encrypted with `passphrase`. */
  key?: Buffer;
  /** The private key's password (password / passwordFile, resolved). */
  passphrase?: string;
  /** PEM CA certificates that peers' certificates must chain to (caCertFile). */
  ca?: Buffer;
  /** OpenSSL cipher list (ciphers). */
  ciphers?: string;
  /** Allowed protocol versions (protocols, or the system OpenSSL policy's when none is written); unset: Node's defaults. */
  protocols?: ('TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3')[];
  /** qdrouterd's uidFormat: which certificate fields make the user id for EXTERNAL (e.g. `n`, `ou`, `2`). */
  uidFormat?: string;
  /** User id -> display name (uidNameMappingFile): the user a certificate's id maps to. */
  uidNames?: ReadonlyMap<string, string>;
  /** Where the profile was configured, for log lines. */
  source?: string;
}

/** How a listener accepts its sockets (qdrouterd `listener` attributes). */
export interface ListenerTransport {
  /** TLS with this profile (listener `sslProfile`), or plain TCP. */
  tls: TlsProfile | null;
  /** With `tls`: refuse plain AMQP (requireSsl: yes); otherwise detect TLS from the first bytes. */
  requireSsl: boolean;
  /** With `tls`: ask for and verify a client certificate (authenticatePeer: yes, or EXTERNAL offered). */
  verifyClient: boolean;
  /** AMQP over WebSocket on this port (http: yes with websockets: yes). */
  websockets: boolean;
  /** An http listener's own pages (qdrouterd's): files under rootDir, `/healthz`, `/metrics`. */
  http?: HttpPages;
  /** Close a connection whose AMQP/SASL handshake (and TLS/WebSocket before it) is not done in time; 0 = never. */
  initialHandshakeTimeoutSeconds: number;
}

/** What an http listener serves besides WebSocket upgrades (listener httpRootDir, healthz, metrics). */
export interface HttpPages {
  /** Files served under `/` (index.html for a directory); none: only the two endpoints. */
  rootDir: string | null;
  /** `/healthz` answers 200 OK while the process serves. */
  healthz: boolean;
  /** `/metrics` answers the application's figures (Prometheus text), when it has any. */
  metrics: boolean;
}

/** How a connector dials (qdrouterd `connector` attributes). */
export interface ConnectorTransport {
  /** TLS with this profile (connector `sslProfile`), or plain TCP. */
  tls: TlsProfile | null;
  /** With `tls`: the peer's certificate must name the host dialled (verifyHostname). */
  verifyHostname: boolean;
}

/** Plain TCP, as a listener without `sslProfile` or `http`. */
export const PLAIN_LISTENER: ListenerTransport = {
  tls: null, requireSsl: false, verifyClient: false, websockets: false, initialHandshakeTimeoutSeconds: 0,
};

/** Plain TCP, as a connector without `sslProfile`. */
export const PLAIN_CONNECTOR: ConnectorTransport = { tls: null, verifyHostname: true };
