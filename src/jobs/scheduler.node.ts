import { Cron } from 'croner';
import type { Deps } from '../deps.ts';
import { CRON_TABLE, scheduleOf, type JobEnv } from './cron.ts';

/**
 * Node: run CRON_TABLE in-process (UTC); an opt-in job (purge) only when its variable is set, at
 * the expression it holds. A job still running when its next time comes is skipped (croner's
 * `protect`), so a slow digest never overlaps itself. `jobs` says what runs when (logged at start).
 * `env.gateways`: how the jobs enter registered gateways (src/jobs/gateways.ts).
 */
export function startScheduler(deps: Deps, env: JobEnv = {}): { stop(): void; jobs: Record<string, string> } {
  const jobs: Record<string, string> = {};
  const crons: Array<Cron<unknown>> = [];
  for (const job of CRON_TABLE) {
    const schedule = scheduleOf(job, deps.config);
    if (schedule === null) {
      jobs[job.name] = `off (set ${job.optIn})`;
      continue;
    }
    jobs[job.name] = schedule;
    crons.push(
      cronOrFail(job.optIn, schedule, { timezone: 'UTC', protect: true, catch: true }, async () => {
        try {
          const report = await job.run(deps, env);
          deps.log.info('job finished', report);
        } catch (err) {
          deps.log.error('job failed', { job: job.name, message: (err as Error).message });
        }
      }),
    );
  }
  return { stop: () => crons.forEach((c) => c.stop()), jobs };
}

/** A bad expression in a variable stops the start naming the variable (the config parser checked only its shape). */
function cronOrFail(variable: string | undefined, ...args: ConstructorParameters<typeof Cron>): Cron<unknown> {
  try {
    return new Cron(...args);
  } catch (err) {
    throw new Error(`${variable ?? 'cron table'}: ${(err as Error).message}`);
  }
}
