import type { Deps } from '../deps.ts';
import { webhookJob } from '../webhooks/job.ts';
import { purgeJob } from '../retention/job.ts';
import { digestJob } from '../digest/job.ts';

/**
 * The scheduled jobs: the one table both runtimes read. wrangler.toml's [triggers] crons must list
 * exactly these expressions (test/unit/cron.test.ts checks it); on Node, `serve` runs the same
 * table in-process (src/jobs/scheduler.node.ts), so no second process or system cron is needed.
 */
export interface JobReport {
  job: string;
  /** a one-line human summary for logs and the CLI */
  summary: string;
  [k: string]: unknown;
}

export interface ScheduledJob {
  /** five-field cron expression, UTC */
  cron: string;
  name: string;
  run(deps: Deps, env: JobEnv): Promise<JobReport>;
}

/** Runtime extras a job may use (a Cloudflare Queue binding on Workers). */
export interface JobEnv {
  queue?: { send(body: unknown): Promise<void>; sendBatch?(messages: Array<{ body: unknown }>): Promise<void> };
}

export const CRON_TABLE: ScheduledJob[] = [webhookJob, purgeJob, digestJob];

export function jobsFor(cron: string): ScheduledJob[] {
  return CRON_TABLE.filter((j) => j.cron === cron);
}
