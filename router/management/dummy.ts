/**
 * Management entity `dummy`: qdrouterd's entity for testing management itself (its own system
 * tests create, update, call and delete it); it is kept and shown, never acted on.
 */
import { typed, type EntityModule } from './view';

export const dummyEntity: EntityModule = {
  name: 'dummy',
  bases: ['entity'],
  attributes: ['arg1', 'arg2', 'num1', 'num2', 'name', 'identity', 'type'],
  operations: ['CREATE', 'READ', 'UPDATE', 'DELETE', 'CALLME'],
  schema: typed('integer', ['num1', 'num2']),
  read(v) {
    return v.configured('dummy').map((d) => ({ ...d, type: 'org.apache.qpid.dispatch.dummy' }));
  },
};
