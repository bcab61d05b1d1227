/** @jsxImportSource hono/jsx */
import type { Hono } from 'hono';
import { parseItemId } from '../amavis/mail-id.ts';
import { AppError } from '../errors.ts';
import { LEARN_KINDS, type LearnKind } from '../learn/learner.ts';
import { reportMessage } from '../quarantine/report.ts';
import { ctx, field, form, one, requireSession, type UiEnv } from './context.ts';
import { renderDetail } from './quarantine-routes.tsx';
import { reportError, reportNotice } from './report-forms.tsx';
import { checkCsrf } from './session.ts';

/** POST /ui/quarantine/{id}/report: the API's report verb; the message page answers with the learner's words. */
export function reportRoutes(ui: Hono<UiEnv>) {
  ui.post('/quarantine/:id/report', async (c) => {
    const s = requireSession(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    const id = c.req.param('id');
    const key = parseItemId(id, c.get('deps').gateway);
    if (!key) throw new AppError('not_found', 'no quarantined message with this id');
    const kind = field(body.kind);
    if (!(LEARN_KINDS as readonly string[]).includes(kind ?? ''))
      throw new AppError('invalid_field', 'kind: spam or ham', { field: 'kind' });
    const { w } = c.get('reader');
    const owner = s.identity.role === 'user';
    try {
      const r = await reportMessage(c.get('deps'), s.identity, key, kind as LearnKind);
      return renderDetail(c, s, id, { notice: reportNotice(r.kind, { learned: r.learned, output: r.learner_output }, w, owner) });
    } catch (err) {
      const said = err instanceof AppError ? reportError(err.code, w, owner) : null;
      if (!said || !(err instanceof AppError)) throw err;
      c.get('deps').log.warn('report failed', { code: err.code, detail: err.message });
      return renderDetail(c, s, id, { error: said, status: err.status as 501 });
    }
  });
}
