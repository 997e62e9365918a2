// Master/slave pairs on a shared store (one dataDir both members reach), with real broker
// processes: the broker HA contract (test/support/ha-contract.ts).
//
//   [master M]   [slave S]
//         \       /
//          dataDir D (journal + lock/)
// @runs-alone: the HA contract asserts takeover times.
import { brokerConfig, tempDir } from '../support/broker';
import { haContract } from '../support/ha-contract';

haContract('shared-store', {
  group() {
    const dataDir = tempDir();
    return { config: (id, port, broker) => brokerConfig(dataDir, { id, port, broker }) };
  },
});
