/**
 * Teaching the spam filter: "report as spam / not spam" hands the original message to
 * SpamAssassin's learner on the mail host (`sa-learn`, or `spamc -L` where spamd runs). On Node
 * next to amavisd the command runs directly (src/learn/command.node.ts); from a Worker it goes
 * through the relay's signed POST /v1/learn (src/learn/relay-learner.ts), which runs the same command.
 */
export const LEARN_KINDS = ['ham', 'spam'] as const;
export type LearnKind = (typeof LEARN_KINDS)[number];

export interface LearnResult {
  /** false: the learner had learned this message as this kind already (it counts once) */
  learned: boolean;
  /** the learner's own words, one line, for the answer and the audit */
  output: string;
}

export interface Learner {
  readonly via: 'command' | 'relay';
  /**
   * Rejects with AppError: learner_not_configured (the relay has no command), learner_failed (the
   * command failed or timed out), upstream_unreachable (the relay did not answer).
   */
  learn(kind: LearnKind, message: Uint8Array): Promise<LearnResult>;
}

/** The largest message the learner is given (amavisd's default message size limit is far below). */
export const LEARN_MAX_BYTES = 32 * 1024 * 1024;

/**
 * What the learner said, as learned or not: sa-learn "Learned tokens from 1 message(s) (1 message(s)
 * examined)" (0 when seen before); spamc -L "Message successfully un/learned" or "Message was
 * already un/learned".
 */
export function learnedFrom(output: string): boolean {
  const sa = /Learned tokens from (\d+) message/.exec(output);
  if (sa) return Number(sa[1]) > 0;
  return /successfully (un\/)?(un)?learned/i.test(output);
}

/** The command's argv for a kind: `{kind}` replaced wherever it stands, split on spaces (no shell). */
export function learnArgv(command: string, kind: LearnKind): string[] {
  return command
    .trim()
    .split(/\s+/)
    .map((a) => a.replaceAll('{kind}', kind));
}
