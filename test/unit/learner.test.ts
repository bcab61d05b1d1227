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
