import { describe, expect, it } from 'vitest';
import { learnArgv, learnedFrom } from '../../src/learn/learner.ts';

describe('the learner command and its answer', () => {
  it('replaces {kind} in place and never involves a shell', () => {
    expect(learnArgv('sudo -u amavis sa-learn --{kind} -', 'spam')).toEqual(['sudo', '-u', 'amavis', 'sa-learn', '--spam', '-']);
    expect(learnArgv(' spamc  -L {kind} ', 'ham')).toEqual(['spamc', '-L', 'ham']);
    expect(learnArgv('sa-learn --{kind} -; rm -rf /', 'ham')).toEqual(['sa-learn', '--ham', '-;', 'rm', '-rf', '/']);
  });

  it("reads sa-learn's and spamc's words", () => {
    expect(learnedFrom('Learned tokens from 1 message(s) (1 message(s) examined)')).toBe(true);
    expect(learnedFrom('Learned tokens from 0 message(s) (1 message(s) examined)')).toBe(false);
    expect(learnedFrom('Message successfully un/learned')).toBe(true);
    expect(learnedFrom('Message was already un/learned')).toBe(false);
  });
});

describe('the learner command, one at a time', () => {
  it('a report that cannot get its turn is refused with 503 learner_busy and a Retry-After; the next one runs', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { commandLearner } = await import('../../src/learn/command.node.ts');
    const dir = mkdtempSync(join(tmpdir(), 'qe-learner-'));
    const script = join(dir, 'slow-learner.sh');
    // holds its turn until the file `go` exists, as a learner holding the Bayes lock would
    writeFileSync(script, `cat >/dev/null; while [ ! -e ${dir}/go ]; do sleep 0.05; done; echo "Learned tokens from 1 message(s)"\n`);
    const learner = commandLearner(`sh ${script} {kind}`, { concurrency: 1, waitMs: 200 });
    const message = new TextEncoder().encode('Subject: x\r\n\r\nbody\r\n');

    const first = learner.learn('spam', message);
    const second = await learner.learn('ham', message).catch((e: unknown) => e);
    expect(second).toMatchObject({ code: 'learner_busy', status: 503, extra: { retryAfter: 1 } });
    writeFileSync(join(dir, 'go'), '');
    await expect(first).resolves.toEqual({ learned: true, output: 'Learned tokens from 1 message(s)' });
    await expect(learner.learn('ham', message)).resolves.toMatchObject({ learned: true });
  });
});
