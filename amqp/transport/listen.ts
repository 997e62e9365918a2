/**
 * Opening a TCP listener, shared by the router and the broker: resolves once it listens (port 0
 * resolved), logs "Listening on HOST:PORT (listener NAME)" — tests and `amqp-mesh up` read it.
 */
import * as net from 'node:net';
import { Logger } from '../../lib/log';

export interface Listening {
  server: net.Server;
  name: string;
  host: string;
  port: number;
}

export async function listen(l: { name: string; host: string; port: number }, onSocket: (socket: net.Socket) => void, logger: Logger): Promise<Listening> {
  const server = net.createServer({ noDelay: true }, onSocket);
  server.on('error', (e) => logger.log('SERVER', 'error', `listener ${l.name}: ${e.message}`));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(l.port, l.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as net.AddressInfo;
  logger.log('SERVER', 'notice', `Listening on ${addr.address}:${addr.port} (listener ${l.name})`);
  return { server, name: l.name, host: addr.address, port: addr.port };
}
