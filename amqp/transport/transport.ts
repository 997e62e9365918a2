/**
 * A transport is one byte stream carrying AMQP frames: a TCP socket, a TLS session over one, or a
 * WebSocket (plain or over TLS). The engine and the pump see only the stream; how it was made
 * (and who the peer proved to be) is told here.
 */
import type { Duplex } from 'node:stream';

/** What carries the bytes. */
export type TransportKind = 'tcp' | 'tls' | 'ws' | 'wss';

/** One accepted or dialled connection's byte stream. */
export interface Transport {
  readonly kind: TransportKind;
  /** Frames in, frames out. `writableLength` is what is still queued (backpressure). */
  readonly stream: Duplex;
  /** `host:port` of the peer, for logs. */
  readonly peer: string;
  /**
   * The user id a verified client certificate gives (the profile's uidFormat, or the subject), for
   * SASL EXTERNAL; null without a verified certificate.
   */
  readonly externalId: string | null;
}

/** `host:port` of a socket's peer, bracketing IPv6. */
export function peerOf(socket: { remoteAddress?: string; remotePort?: number }): string {
  const host = socket.remoteAddress ?? '?';
  return `${host.includes(':') ? `[${host}]` : host}:${socket.remotePort ?? '?'}`;
}

/** A peer's `host:port` (or `[v6]:port`, as {@link peerOf} writes it) split; port 0 when there is none. */
export function splitHostPort(peer: string): [string, number] {
  const i = peer.lastIndexOf(':');
  if (i < 0) return [peer, 0];
  return [peer.slice(0, i).replace(/^\[|\]$/g, ''), Number(peer.slice(i + 1)) || 0];
}
