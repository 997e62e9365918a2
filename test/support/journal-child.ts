/**
 * The process the kill -9 test (test/system/journal.test.ts) kills: several "producers" append
 * messages to a journal as fast as group commit lets them and print a line only once sync()
 * reported the change durable. The parent kills it at a random moment and checks the journal
 * against what was printed. Runs until killed.
 *
 *   node journal-child.js <dataDir> [producers=8] [compactMinBytes=262144]
 *
 * Printed (stdout, one line each):
 *   READY <nextMessageId>  recovered, producing
 *   ACKED <id>             message <id> and its ref in queue "q" are durable
 *   DONE <id>              the ack of <id> is durable (ids with id % 4 !== 1 are acked once
 *                          ACKED: most die, so compactions keep happening)
 *   COUNTED <id>           delivery count 2 of <id> is durable (ids with id % 12 === 1)
 * Ids with id % 10 === 5 are stored through commitTx instead of addMessage + addRef.
 */
import { JournalStore } from '../../broker/store/journal';

/** The body of message `id`: deterministic, 1..3000 bytes, so the parent can check it. */
export function childPayload(id: number): Buffer {
  const size = 1 + ((id * 7919) % 3000);
  const b = Buffer.allocUnsafe(size);
  let x = id >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function main(): void {
  const [dir, producersArg, compactArg] = process.argv.slice(2);
  if (!dir) {
    process.stderr.write('usage: journal-child <dataDir> [producers] [compactMinBytes]\n');
    process.exit(2);
  }
  const producers = Number(producersArg ?? 8);
  const store = new JournalStore(dir, {
    compactMinBytes: Number(compactArg ?? 256 * 1024),
    log: (level, msg) => process.stderr.write(`${level}: ${msg}\n`),
  });
  const rec = store.recover();
  if (!rec.queues.has('q')) store.createQueue('q', { durable: true });
  let next = rec.nextMessageId;
  // Pipes are synchronous on Linux: a line written here is in the pipe before the next append.
  const say = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const die = (err: Error): never => {
    process.stderr.write(`journal-child: ${err.message}\n`);
    process.exit(3);
  };
  say(`READY ${next}`);
  const produce = (): void => {
    const id = next++;
    if (id % 10 === 5) {
      store.commitTx([{ op: 'addMessage', msgId: id, payload: childPayload(id) }, { op: 'addRef', queue: 'q', msgId: id }]);
    } else {
      store.addMessage(id, childPayload(id));
      store.addRef('q', id);
    }
    store.sync((err) => {
      if (err) die(err);
      say(`ACKED ${id}`);
      if (id % 4 !== 1) {
        store.ack('q', id);
        store.sync((e) => (e ? die(e) : say(`DONE ${id}`)));
      } else if (id % 12 === 1) {
        store.setDeliveryCount('q', id, 2);
        store.sync((e) => (e ? die(e) : say(`COUNTED ${id}`)));
      }
      produce();
    });
  };
  for (let p = 0; p < producers; p++) produce();
}

if (require.main === module) main();
