import type { ScheduledJob } from '../jobs/cron.ts';
import { purge, purgeSummary } from './purge.ts';

/** Daily at 03:17 UTC (off the hour, when most gateways are quiet). */
export const purgeJob: ScheduledJob = {
  cron: '17 3 * * *',
  name: 'purge',
  async run(deps) {
    const report = await purge(deps);
    return { job: 'purge', summary: purgeSummary(report), ...report };
  },
};
