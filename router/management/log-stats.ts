/** Management entity `logStats`: how many lines each log module has logged, by level. */
import { LOG_MODULES } from '../../config/log';
import { counters, type EntityModule } from './view';

const LEVELS = ['trace', 'debug', 'info', 'notice', 'warning', 'error', 'critical'] as const;

export const logStatsEntity: EntityModule = {
  name: 'logStats',
  bases: ['operationalEntity', 'entity'],
  attributes: ['traceCount', 'debugCount', 'infoCount', 'noticeCount', 'warningCount', 'errorCount', 'criticalCount', 'name', 'identity', 'type'],
  operations: ['READ'],
  schema: counters(['traceCount', 'debugCount', 'infoCount', 'noticeCount', 'warningCount', 'errorCount', 'criticalCount']),
  read(v) {
    return LOG_MODULES.map((module) => {
      const counts = v.logCounts(module);
      return {
        name: module, identity: `logStats/${module}`, type: 'org.apache.qpid.dispatch.logStats',
        ...Object.fromEntries(LEVELS.map((l) => [`${l}Count`, counts[l] ?? 0])),
      };
    });
  },
};
