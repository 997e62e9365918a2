/** Management entity `log`: The log modules (qdrouterd's names) and how each is enabled. */
import type { EntityModule } from './view';

export const logEntity: EntityModule = {
  name: 'log',
  bases: ['configurationEntity','entity'],
  attributes: ['module', 'enable', 'includeTimestamp', 'includeSource', 'outputFile', 'name', 'identity', 'type'],
  operations: ['UPDATE', 'READ'],
  read(v) {
    return v.logModules().map((m) => ({
      name: `log/${m.module}`, identity: `log/${m.module}`, type: 'org.apache.qpid.dispatch.log', module: m.module, enable: m.enable,
      includeTimestamp: true, includeSource: false, outputFile: null,
    }));
  },
};
