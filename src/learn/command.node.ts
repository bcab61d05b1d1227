import { spawn } from 'node:child_process';
import { AppError } from '../errors.ts';
import { type PdpLimit, slotLimit } from '../release/limit.ts';
import { learnArgv, learnedFrom, type Learner, type LearnKind, type LearnResult } from './learner.ts';

const OUTPUT_MAX = 4096;

/**
 * SA_LEARN_COMMAND run directly, the message on its standard input: e.g. `sa-learn --{kind} -`, or
 * `sudo -u amavis sa-learn --{kind} -` so the Bayes database is amavisd's, or `spamc -L {kind}`.
 * No shell; bounded in time (the process is killed) and in output kept, and in number: one learner
 * process at a time by default (each is a Perl process of ~100 MB holding the Bayes database's
 * lock, so more at once only wait inside it); a report that cannot get its turn within
 * `waitMs` is refused with 503 learner_busy and a Retry-After, and nothing was learned.
 */
export function commandLearner(
  command: string,
  opts: { timeoutMs?: number; concurrency?: number; waitMs?: number; maxQueue?: number } = {},
): Learner {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const limit: PdpLimit = slotLimit(
    { max: opts.concurrency ?? 1, maxWaitMs: opts.waitMs ?? 30_000, maxQueue: opts.maxQueue ?? 100 },
    (why, retryAfter) => new AppError('learner_busy', `the spam filter is learning other messages; ${why}; retry shortly`, { retryAfter }),
  );
  return {
    via: 'command',
    async learn(kind, message) {
      const done = await limit.acquire();
      try {
        return await run(learnArgv(command, kind), message, timeoutMs);
      } finally {
        done();
      }
    },
  };
}

function run(argv: string[], message: Uint8Array, timeoutMs: number): Promise<LearnResult> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    let out = '';
    const keep = (b: Buffer) => {
      if (out.length < OUTPUT_MAX) out += b.toString('utf8').slice(0, OUTPUT_MAX - out.length);
    };
    const child = spawn(file!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.stdin.on('error', () => {}); // a learner that exits early closes its input; its exit code says the rest
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(
        new AppError(
          'learner_failed',
          `the learner could not be started (${(err as NodeJS.ErrnoException).code ?? err.message}): check SA_LEARN_COMMAND`,
        ),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const output = out.replace(/\s+/g, ' ').trim().slice(0, 500);
      if (code === 0) return resolve({ learned: learnedFrom(out), output });
      reject(
        new AppError(
          'learner_failed',
          signal ? `the learner was stopped after ${timeoutMs / 1000} s` : `the learner exited with ${code}: ${output}`,
        ),
      );
    });
    child.stdin.end(message);
  });
}

export type { LearnKind };
