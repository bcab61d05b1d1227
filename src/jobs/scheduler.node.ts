import { Cron } from 'croner';
import type { Deps } from '../deps.ts';
import { CRON_TABLE } from './cron.ts';

/**
 * Node: run CRON_TABLE in-process (UTC). A job still running when its next time comes is skipped
 * (croner's `protect`), so a slow digest never overlaps itself.
 */
export function startScheduler(deps: Deps): { stop(): void } {
  const crons = CRON_TABLE.map(
    (job) =>
      new Cron(job.cron, { timezone: 'UTC', protect: true, catch: true }, async () => {
        try {
          const report = await job.run(deps, {});
          deps.log.info('job finished', report);
        } catch (err) {
          deps.log.error('job failed', { job: job.name, message: (err as Error).message });
        }
      }),
  );
  return { stop: () => crons.forEach((c) => c.stop()) };
}
