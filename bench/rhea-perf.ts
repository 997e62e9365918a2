/**
 * rhea load generator: one sender and one receiver (separate connections) through a router,
 * unsettled, measuring msgs/s and send-to-receive latency (timestamp carried in the body).
 */
import rhea from 'rhea';
import type { EventContext, Message } from 'rhea';

import type { MeshPerfResult } from './tools';

/** The same figures the C client reports. */
export type PerfResult = Pick<MeshPerfResult, 'messages' | 'seconds' | 'msgsPerSec' | 'p50Us' | 'p99Us' | 'maxUs' | 'accepted'>;

/** Percentile of a sorted array. */
export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length));
  return sorted[i];
}

export function runRheaPerf(opts: { port: number; address: string; messages: number; bodySize?: number; credit?: number }): Promise<PerfResult> {
  const n = opts.messages;
  const bodySize = opts.bodySize ?? 100;
  const lat = new Float64Array(n);
  return new Promise((resolve, reject) => {
    const rc = rhea.create_container().connect({ host: '127.0.0.1', port: opts.port, reconnect: false });
    const sc = rhea.create_container().connect({ host: '127.0.0.1', port: opts.port, reconnect: false });
    let received = 0, accepted = 0, sent = 0;
    let start = 0;
    const filler = Buffer.alloc(bodySize);
    const timer = setTimeout(() => reject(new Error(`rhea perf timed out: sent ${sent} received ${received} accepted ${accepted}`)), 120_000);
    const finish = () => {
      if (received < n || accepted < n) return;
      const seconds = Number(process.hrtime.bigint() - BigInt(start)) / 1e9;
      clearTimeout(timer);
      lat.sort();
      rc.close();
      sc.close();
      resolve({ messages: n, seconds, msgsPerSec: n / seconds, p50Us: percentile(lat, 50), p99Us: percentile(lat, 99), maxUs: lat[n - 1], accepted });
    };
    const receiver = rc.open_receiver({ source: opts.address, credit_window: opts.credit ?? 1000 });
    receiver.on('message', (ctx: EventContext) => {
      const body = (ctx.message as Message).body as Buffer | { content: Buffer };
      const b: Buffer = Buffer.isBuffer(body) ? body : (body as { content: Buffer }).content;
      const t = Number(b.readBigUInt64BE(0));
      lat[received++] = (Number(process.hrtime.bigint()) - t) / 1000;
      finish();
    });
    receiver.on('receiver_open', () => {
      const sender = sc.open_sender({ target: opts.address });
      const pump = () => {
        if (start === 0) start = Number(process.hrtime.bigint());
        while (sender.sendable() && sent < n) {
          const body = Buffer.from(filler);
          body.writeBigUInt64BE(process.hrtime.bigint(), 0);
          sender.send({ body: rhea.message.data_section(body) });
          sent++;
        }
      };
      sender.on('sendable', pump);
      sender.on('accepted', () => {
        accepted++;
        finish();
      });
    });
    rc.on('disconnected', (ctx: EventContext) => ctx.error && reject(ctx.error));
  });
}
