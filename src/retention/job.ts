import type { ScheduledJob } from '../jobs/cron.ts';
import { purge, purgeSummary } from './purge.ts';

/**
 * Off unless PURGE_SCHEDULE is set: it deletes from amavisd's own tables (src/retention/purge.ts
 * says what), and many gateways already run their own cleanup (iRedMail's cron). The trigger
 * wrangler.toml lists for it: daily at 03:17 UTC (off the hour, when most gateways are quiet).
 */
export const purgeJob: ScheduledJob = {
  cron: '17 3 * * *',
  name: 'purge',
  optIn: 'PURGE_SCHEDULE',
  async run(deps) {
    const report = await purge(deps);
    return { job: 'purge', summary: purgeSummary(report), ...report };
  },
};
