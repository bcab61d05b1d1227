/** @jsxImportSource hono/jsx */
import type { Words } from '../digest/wording.ts';
import type { LearnResult } from '../learn/learner.ts';
import { usePage } from './words.ts';

/**
 * "Report as spam" / "Not spam" on the message page: anyone who may see the message may report it
 * (as POST /v1/quarantine/{id}/report). POST with the page's CSRF token; the page then says what
 * the learner said (src/ui/report-routes.tsx). The reader's words: an owner's catalog, English for admins.
 */
export function ReportForms(props: { id: string; csrf: string }) {
  const { w } = usePage();
  return (
    <section aria-labelledby="h-report">
      <h2 id="h-report">{w.t('page.report.heading')}</h2>
      <div class="actions">
        <form method="post" action={`/ui/quarantine/${props.id}/report`}>
          <input type="hidden" name="csrf" value={props.csrf} />
          <input type="hidden" name="kind" value="spam" />
          <button type="submit" class="secondary">
            {w.t('page.report.spam')}
          </button>
        </form>
        <form method="post" action={`/ui/quarantine/${props.id}/report`}>
          <input type="hidden" name="csrf" value={props.csrf} />
          <input type="hidden" name="kind" value="ham" />
          <button type="submit" class="secondary">
            {w.t('page.report.ham')}
          </button>
        </form>
      </div>
    </section>
  );
}

/**
 * What the page says after a report. Admins also read the learner's own words (escaped by JSX
 * where shown); an owner reads whether it was learned, in their language, without sa-learn's output.
 */
export function reportNotice(kind: 'spam' | 'ham', r: LearnResult, w: Words, owner: boolean): string {
  if (owner) return w.t(`page.report.${r.learned ? 'done' : 'again'}_${kind}`);
  const as = kind === 'spam' ? 'spam' : 'not spam';
  return r.learned
    ? `Reported as ${as}: the spam filter learned it. It said: ${r.output}`
    : `Reported as ${as}: the spam filter had learned this message before, so it counts once. It said: ${r.output}`;
}

/** A report that could not be made, by code (the learner's failure detail goes to the log). */
const REPORT_ERRORS: Record<string, string> = {
  learner_not_configured: 'Reporting to the spam filter is not set up on this server; nothing was reported.',
  learner_failed: 'The spam filter could not learn the message; nothing was reported. Try again later.',
  upstream_unreachable: 'The mail host could not be reached; nothing was reported. Try again shortly.',
  payload_too_large: 'The message is larger than the spam filter is given; nothing was reported.',
};

/** The words for a report's failure code (catalog page.report.err.* for owners); null: not a report failure. */
export function reportError(code: string, w: Words, owner: boolean): string | null {
  if (!Object.hasOwn(REPORT_ERRORS, code)) return null;
  return owner ? w.t(`page.report.err.${code}`) : REPORT_ERRORS[code]!;
}
