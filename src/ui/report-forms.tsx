/** @jsxImportSource hono/jsx */
import type { LearnResult } from '../learn/learner.ts';

/**
 * "Report as spam" / "Not spam" on the message page: anyone who may see the message may report it
 * (as POST /v1/quarantine/{id}/report). POST with the page's CSRF token; the page then says what
 * the learner said (src/ui/report-routes.tsx).
 */
export function ReportForms(props: { id: string; csrf: string }) {
  return (
    <section aria-labelledby="h-report">
      <h2 id="h-report">Teach the spam filter</h2>
      <div class="actions">
        <form method="post" action={`/ui/quarantine/${props.id}/report`}>
          <input type="hidden" name="csrf" value={props.csrf} />
          <input type="hidden" name="kind" value="spam" />
          <button type="submit" class="secondary">
            Report as spam
          </button>
        </form>
        <form method="post" action={`/ui/quarantine/${props.id}/report`}>
          <input type="hidden" name="csrf" value={props.csrf} />
          <input type="hidden" name="kind" value="ham" />
          <button type="submit" class="secondary">
            Not spam
          </button>
        </form>
      </div>
    </section>
  );
}

/** What the page says after a report: the learner's own words (escaped by JSX where shown). */
export function reportNotice(kind: 'spam' | 'ham', r: LearnResult): string {
  const as = kind === 'spam' ? 'spam' : 'not spam';
  return r.learned
    ? `Reported as ${as}: the spam filter learned it. It said: ${r.output}`
    : `Reported as ${as}: the spam filter had learned this message before, so it counts once. It said: ${r.output}`;
}

/** A report that could not be made, by code (the learner's failure detail goes to the log). */
export const REPORT_ERRORS: Record<string, string> = {
  learner_not_configured: 'Reporting to the spam filter is not set up on this server; nothing was reported.',
  learner_failed: 'The spam filter could not learn the message; nothing was reported. Try again later.',
  upstream_unreachable: 'The mail host could not be reached; nothing was reported. Try again shortly.',
  payload_too_large: 'The message is larger than the spam filter is given; nothing was reported.',
};
