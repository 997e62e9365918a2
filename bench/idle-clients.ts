/**
 * Opens many idle AMQP connections (header + open, then silence) from one process: used by the
 * bench to measure the router's memory per idle connection. Run as a child process:
 *   node dist/bench/idle-clients.js PORT COUNT
 * prints "open N" when all are open, then waits for stdin to close.
 */
import * as net from 'node:net';
import { Writer } from '../amqp/codec';
import { AMQP_HEADER } from '../amqp/frames';
import { beginFrame, endFrame, D } from '../amqp/performatives';

function openFrame(id: number): Buffer {
  const w = new Writer(128);
  w.bytes(AMQP_HEADER);
  const f = beginFrame(w, 0, 0);
  w.descriptor(D.Open);
  const m = w.beginList();
  w.string(`idle-${id}`);
  w.endList(m, 1);
  endFrame(w, f);
  return w.take();
}

async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  const count = Number(process.argv[3]);
  const sockets: net.Socket[] = [];
  let open = 0;
  const batch = 200;
  for (let i = 0; i < count; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, count - i) }, (_, k) =>
        new Promise<void>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1');
          s.once('error', reject);
          let got = 0;
          s.on('data', (b) => {
            got += b.length;
            // AMQP header (8) + the router's open frame: the connection is open.
            if (got > 8 && open < count + 1) {
              s.removeAllListeners('data');
              s.on('data', () => undefined);
              open++;
              resolve();
            }
          });
          s.write(openFrame(i + k));
          sockets.push(s);
        }),
      ),
    );
  }
  process.stdout.write(`open ${open}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    for (const s of sockets) s.destroy();
    process.exit(0);
  });
}

main().catch((e) => {
  process.stderr.write(`idle-clients: ${e}\n`);
  process.exit(1);
});
