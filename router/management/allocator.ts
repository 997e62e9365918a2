/**
 * Management entity `allocator`: qdrouterd's C memory pools. amqp-mesh has none, so there are no
 * entities, but the type answers (qdstat -m shows an empty table instead of an error).
 */
import { counters, typed, type EntityModule } from './view';

export const allocatorEntity: EntityModule = {
  name: 'allocator',
  bases: ['operationalEntity', 'entity'],
  attributes: ['typeName', 'typeSize', 'transferBatchSize', 'localFreeListMax', 'globalFreeListMax', 'totalAllocFromHeap', 'totalFreeToHeap', 'heldByThreads', 'batchesRebalancedToThreads', 'batchesRebalancedToGlobal', 'name', 'identity', 'type'],
  operations: ['READ'],
  schema: {
    ...typed('integer', ['typeSize', 'transferBatchSize']),
    ...counters(['localFreeListMax', 'globalFreeListMax', 'totalAllocFromHeap', 'totalFreeToHeap', 'heldByThreads', 'batchesRebalancedToThreads', 'batchesRebalancedToGlobal']),
  },
  read() {
    return [];
  },
};
