/**
 * Management entity `log`: every log module (qdrouterd's names), configured or not, with how it
 * is enabled and where it writes. UPDATE changes it live (an unconfigured module gains a section).
 */
import { LOG_MODULES } from '../../config/log';
import type { EntityModule } from './view';

/** What the DEFAULT module is when nothing sets it (qdrouterd's defaults). */
const DEFAULT_MODULE = { enable: 'info+', includeTimestamp: true, includeSource: false, outputFile: 'stderr' };

export const logEntity: EntityModule = {
  name: 'log',
  bases: ['configurationEntity','entity'],
  attributes: ['module', 'enable', 'includeTimestamp', 'includeSource', 'outputFile', 'name', 'identity', 'type'],
  operations: ['UPDATE', 'READ'],
  read(v) {
    const configured = new Map(v.configured('log').map((r) => [r.module, r]));
    return LOG_MODULES.map((module) => {
      const identity = `log/${module}`;
      // Other modules follow DEFAULT for whatever they do not set.
      const base = module === 'DEFAULT' ? DEFAULT_MODULE : { enable: 'default' };
      return { ...base, ...configured.get(module), module, name: identity, identity, type: 'org.apache.qpid.dispatch.log' };
    });
  },
};
