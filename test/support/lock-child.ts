/**
 * A stand-in broker for the store lock's process tests (test/system/lock.test.ts): takes a
 * FileLeaseLock on a directory, then "writes to the store" every 50 ms, fenced like a journal.
 *
 *   node dist/test/support/lock-child.js DIR [poll=MS] [lease=MS] [renew=MS] [host=NAME] [gate=1]
 *
 * Prints one line per event on stdout:
 *   READY              started (with gate=1: waits for "GO <epoch ms>" on stdin, then acquires at that instant)
 *   WAIT <reason>      a poll decided to keep waiting
 *   LIVE <token>       acquired
 *   FENCED <reason>    checkFence threw or onLost ran; exits 3 right after, writing nothing more
 *   LOG <level> <msg>  the lock's log
 * Each store write appends "<token>\n" to DIR/writes.log, after a passing checkFence. SIGTERM
 * releases the lock and exits 0.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileLeaseLock } from '../../broker/io/file-lock';
import { FencedError } from '../../broker/store/types';

function say(line: string): void {
  // synchronous: lines must be out before a process.exit
  fs.writeSync(1, line + '\n');
}

function main(): void {
  const [dir, ...rest] = process.argv.slice(2);
  if (!dir) throw new Error('usage: lock-child DIR [poll=MS] [lease=MS] [renew=MS] [host=NAME] [gate=1]');
  const o = Object.fromEntries(rest.map((a) => a.split('=') as [string, string]));
  const num = (k: string): number | undefined => (o[k] === undefined ? undefined : Number(o[k]));
  const lock = new FileLeaseLock({
    dir,
    pollMs: num('poll'),
    leaseMs: num('lease'),
    renewMs: num('renew'),
    owner: o.host ? { host: o.host } : undefined,
    onPoll: (d) => {
      if (d.action === 'wait') say(`WAIT ${d.reason}`);
    },
    log: (level, msg) => say(`LOG ${level} ${msg}`),
  });
  const fenced = (reason: string): never => {
    say(`FENCED ${reason}`);
    process.exit(3);
  };
  lock.onLost((reason) => fenced(reason));
  process.on('SIGTERM', () => {
    void lock.release().then(() => process.exit(0));
  });

  const start = (): void => {
    void lock.acquire().then((token) => {
      say(`LIVE ${token}`);
      const log = path.join(dir, 'writes.log');
      setInterval(() => {
        try {
          lock.checkFence();
        } catch (e) {
          if (e instanceof FencedError) fenced(e.message);
          throw e;
        }
        fs.appendFileSync(log, `${token}\n`);
      }, 50);
    });
  };
  say('READY');
  if (o.gate !== '1') return start();
  let buf = '';
  const onData = (d: Buffer): void => {
    buf += d.toString();
    const m = /GO (\d+(?:\.\d+)?)\n/.exec(buf);
    if (!m) return;
    process.stdin.off('data', onData);
    process.stdin.pause();
    process.stdin.unref();
    // Spin to a wall-clock instant shared with the other child (same host, same clock): their
    // first polls then meet on the empty lock far more often than a wake-up on a pipe would.
    const at = Number(m[1]);
    while (Date.now() < at);
    start();
  };
  process.stdin.on('data', onData);
}

main();
