/**
 * A small AMQP management client (as qdmanage queries): how `amqp-mesh apply` reads a running
 * router's live state (connectors, auto-links) instead of parsing its log.
 */
import rhea = require('rhea');

/** A management request that got no answer, or a refusal. */
export class ManagementQueryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ManagementQueryError';
  }
}

/**
 * QUERY of one entity type on the router at host:port: every entity's `attributeNames`, as records.
 * @throws ManagementQueryError without an answer in `timeoutMs`, or on a status other than 200.
 */
export function queryEntities(host: string, port: number, entityType: string, attributeNames: string[], timeoutMs = 5000): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const container = rhea.create_container({ id: `amqp-mesh-mgmt-${process.pid}-${Math.random().toString(36).slice(2, 8)}` });
    const conn = container.connect({ host, port, reconnect: false } as rhea.ConnectionOptions);
    let done = false;
    const finish = (err: Error | null, rows?: Record<string, unknown>[]) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      conn.close();
      // rhea keeps the socket until the peer's close; a short grace, then it goes.
      setTimeout(() => (conn as unknown as { socket?: { destroy(): void } }).socket?.destroy(), 500).unref();
      if (err) reject(err);
      else resolve(rows ?? []);
    };
    const timer = setTimeout(() => finish(new ManagementQueryError(`no management answer from ${host}:${port} in ${timeoutMs} ms`)), timeoutMs);
    conn.on('connection_error', (ctx) => finish(new ManagementQueryError(`management connection to ${host}:${port} refused: ${ctx.connection.error?.description ?? 'closed'}`)));
    conn.on('disconnected', (ctx) => finish(new ManagementQueryError(`management connection to ${host}:${port} lost`, { cause: ctx.error })));
    const replies = conn.open_receiver({ source: { dynamic: true }, credit_window: 1 } as rhea.ReceiverOptions);
    const requests = conn.open_sender('$management');
    replies.on('receiver_open', () => {
      requests.send({
        reply_to: replies.source.address,
        correlation_id: '1',
        application_properties: { operation: 'QUERY', type: 'org.amqp.management', name: 'self', entityType: `org.apache.qpid.dispatch.${entityType}` },
        body: { attributeNames },
      });
    });
    replies.on('message', (ctx) => {
      const props = ctx.message.application_properties ?? {};
      if (props.statusCode !== 200) return finish(new ManagementQueryError(`QUERY ${entityType} on ${host}:${port}: ${props.statusCode} ${props.statusDescription}`));
      const body = ctx.message.body as { attributeNames: string[]; results: unknown[][] };
      finish(null, body.results.map((row) => Object.fromEntries(body.attributeNames.map((n, i) => [n, row[i]]))));
    });
  });
}
