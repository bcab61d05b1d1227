import type { Config } from '../config.ts';
import type { Deps } from '../deps.ts';
import type { GatewayOpener } from '../gateways/context.ts';
import { webhookJob } from '../webhooks/job.ts';
import { purgeJob } from '../retention/job.ts';
import { digestJob } from '../digest/job.ts';
import { adminDigestJob } from '../digest/admin-run.ts';
import { statsSnapshotJob } from '../quarantine/stats-snapshots.ts';

/**
 * The scheduled jobs: the one table both runtimes read. wrangler.toml's [triggers] crons must list
 * exactly these expressions (test/unit/cron.test.ts checks it); on Node, `serve` runs the same
 * table in-process (src/jobs/scheduler.node.ts), so no second process or system cron is needed.
 *
 * A job with `optIn` runs only when its variable is set, at the expression the variable holds:
 * purge deletes from amavisd's own tables, and many gateways (iRedMail) already clean them up.
 * Its `cron` is the trigger wrangler.toml lists for it; on Workers it runs at that trigger only
 * when the variable names it (PURGE_SCHEDULE="17 3 * * *").
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
  /** off unless this variable holds a cron expression (then: the job's schedule) */
  optIn?: 'PURGE_SCHEDULE';
  run(deps: Deps, env: JobEnv): Promise<JobReport>;
}

/** Runtime extras a job may use (a Cloudflare Queue binding on Workers). */
export interface JobEnv {
  queue?: { send(body: unknown): Promise<void>; sendBatch?(messages: Array<{ body: unknown }>): Promise<void> };
  /** enters registered gateways (Root.gateways); absent: the jobs serve the deployment's own database only */
  gateways?: GatewayOpener;
}

export const CRON_TABLE: ScheduledJob[] = [webhookJob, purgeJob, digestJob, adminDigestJob, statsSnapshotJob];

/** When `job` runs under this configuration (five fields, UTC), or null when it is off. */
export function scheduleOf(job: ScheduledJob, config: Pick<Config, 'PURGE_SCHEDULE'>): string | null {
  return job.optIn ? (config[job.optIn] ?? null) : job.cron;
}

/** The jobs a trigger runs (Workers): those whose schedule under this configuration is that trigger. */
export function jobsFor(cron: string, config: Pick<Config, 'PURGE_SCHEDULE'>): ScheduledJob[] {
  return CRON_TABLE.filter((j) => scheduleOf(j, config) === cron);
}

/** A trigger of the table (wrangler.toml lists them all), possibly with nothing to do under this configuration. */
export function isKnownTrigger(cron: string): boolean {
  return CRON_TABLE.some((j) => j.cron === cron);
}
