/**
 * The store contract (test/support/store-contract.ts) on the in-memory store: restarts go
 * through a shared MemoryDisk, so nothing touches the file system.
 */
import { MemoryDisk, MemoryStore } from '../../broker/store/memory';
import { storeContract } from '../support/store-contract';

let disk = new MemoryDisk();

storeContract('MemoryStore', {
  open: (opts) => {
    disk = new MemoryDisk();
    return new MemoryStore({ ...opts, disk });
  },
  reopen: (opts) => new MemoryStore({ ...opts, disk }),
  cleanup: () => {
    disk = new MemoryDisk();
  },
});
