/** @jsxImportSource hono/jsx */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Hono } from 'hono';
import { parseItemId, type MailKey } from '../amavis/mail-id.ts';
import { AppError } from '../errors.ts';
import { inFilter, runBulk, type BulkInput, type RecipientFilter } from '../quarantine/bulk.ts';
import { deleteMessage } from '../quarantine/delete.ts';
import { countQuarantine } from '../quarantine/count.ts';
import { csvHeaders, exportCsv } from '../quarantine/export.ts';
import { listQuarantine } from '../quarantine/list.ts';
import { detailOf, getItem, getItemDetail, getRawMessage } from '../quarantine/read.ts';
import { releaseMessage } from '../quarantine/release.ts';
import { releaseMode, type ReleaseMode } from '../quarantine/release-policy.ts';
import { requestRelease } from '../quarantine/release-requests.ts';
import { markReleased } from '../quarantine/resolve.ts';
import { reportMessage } from '../quarantine/report.ts';
import { reportError, reportNotice } from './report-forms.tsx';
import { ERROR_CODES, resultWords } from './result-words.ts';
import { csrf, ctx, flag, form, inBackground, one, requireSession, type C, type UiEnv } from './context.ts';
import { filterFields, listHref, pageQuery, parseFilters, recipientFilter } from './filters.ts';
import { bodyCsp, inertHtml, noteDocument } from './mail-html.ts';
import { ConfirmBulkPage, DetailPage, ListPage, type BulkFailure, type ConfirmRow } from './quarantine-pages.tsx';
import { checkCsrf, type Session } from './session.ts';

const BULK: Record<string, Pick<BulkInput, 'action' | 'allowSender' | 'blockSender'>> = {
  release: { action: 'release' },
  delete: { action: 'delete' },
  release_allow: { action: 'release', allowSender: true },
  delete_block: { action: 'delete', blockSender: true },
};

/** Failures listed by id in the result (and so in its URL); the rest are counted. */
const SHOWN_FAILURES = 50;

/** The recipient filter a message page was opened with, as its forms post it back. */
function scopeFields(body: Record<string, unknown>): Record<string, string> {
  const { domain, recipient } = filterFields(body);
  return { ...(domain ? { domain } : {}), ...(recipient ? { recipient } : {}) };
}

/**
 * The selected messages with the recipients the action reaches (pending, in scope, in the filter),
 * and what the release policy lets the caller do with each (read once per content code).
 */
async function selection(c: C, s: Session, ids: string[], only: RecipientFilter | undefined): Promise<ConfirmRow[]> {
  const rows: ConfirmRow[] = [];
  const modes = new Map<string, ReleaseMode>();
  for (const id of ids) {
    const k = parseItemId(id, c.get('deps').gateway);
    if (!k) continue;
    try {
      const item = await getItem(c.get('deps'), s.identity, k);
      const addresses = item.recipients.filter((r) => r.status === 'pending' && (!only || inFilter(r.address, only))).map((r) => r.address);
      if (!addresses.length) continue;
      let mode = modes.get(item.content_code);
      if (mode === undefined) modes.set(item.content_code, (mode = await releaseMode(c.get('deps'), s.identity, item.content_code)));
      rows.push({ id, subject: item.subject, type: item.type, addresses, releaseMode: mode });
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'not_found') throw err;
    }
  }
  return rows;
}

const NULL_SENDER_TEXT =
  'This message has the null sender <> (a bounce or an automatic reply), so its sender cannot be ' +
  'allowed or blocked. Nothing was changed; use plain Release or Delete instead.';

const BODY_UNREADABLE =
  'No HTML could be read from this message within the limits of this view. ' +
  'Download the original from the message page to see all of it.';
const many = (v: unknown): string[] =>
  (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter((x): x is string => typeof x === 'string');

/** The message an id names in the session's gateway (an id of another gateway names none here). */
function key(c: C, id: string): MailKey {
  const k = parseItemId(id, c.get('deps').gateway);
  if (!k) throw new AppError('not_found', 'no quarantined message with this id');
  return k;
}

export async function renderDetail(
  c: C,
  s: Session,
  id: string,
  o: {
    notice?: string | null;
    error?: string | null;
    status?: ContentfulStatusCode;
    filter?: Record<string, string>;
  },
) {
  const k = key(c, id);
  const item = await getItem(c.get('deps'), s.identity, k);
  let detail = null;
  try {
    detail = await detailOf(c.get('deps'), item, k); // the item is read (and scoped) once
  } catch (err) {
    if (!(err instanceof AppError) || err.code !== 'not_found') throw err;
  }
  // Rendered here only to learn what the frame will hold (remote images, cut); the page never includes it.
  const body = detail?.html ? inertHtml(detail.html, { loadImages: false }) : null;
  // A filter that does not parse is a 400, never "no filter": the buttons would reach every recipient.
  const { values, input, error } = parseFilters(o.filter ?? scopeFields(c.req.query()), c.get('reader').timeZone);
  if (!input) throw new AppError('bad_request', `The list's filter is not valid: ${error}`);
  const only = recipientFilter(input);
  const shown = detail ?? item;
  const scoped = only
    ? {
        filters: { domain: values.domain, recipient: values.recipient },
        addresses: shown.recipients.filter((r) => r.status === 'pending' && inFilter(r.address, only)).map((r) => r.address),
      }
    : null;
  return c.html(
    <DetailPage
      who={s.identity}
      csrf={await csrf(c)}
      item={detail ?? item}
      bodyMissing={!detail}
      images={c.req.query('images') === '1'}
      remoteImages={body?.remoteImages ?? false}
      htmlTruncated={body?.truncated ?? false}
      notice={o.notice ?? null}
      error={o.error ?? null}
      scoped={scoped}
      listsUnavailable={c.get('deps').variant.lookup.detail}
      releaseMode={await releaseMode(c.get('deps'), s.identity, item.content_code)}
    />,
    o.status ?? 200,
  );
}

/** A sender list could not be written (null sender, unlistable address): the message page, 400, saying why. */
async function listingRefused(c: C, s: Session, id: string, err: AppError, body: Record<string, unknown>) {
  const item = await getItem(c.get('deps'), s.identity, key(c, id));
  const { w } = c.get('reader');
  const owner = s.identity.role === 'user';
  const text =
    item.sender === ''
      ? owner
        ? w.t('page.result.no_sender_this')
        : NULL_SENDER_TEXT
      : owner
        ? w.t('page.result.not_listable')
        : `The sender cannot be listed: ${err.message}`;
  return renderDetail(c, s, id, { error: text, status: 400, filter: scopeFields(body) });
}

/** After a release with report_ham: the release stands whatever the spam filter answers. */
async function releasedAndReported(c: C, s: Session, id: string, status: 'released' | 'partial', body: Record<string, unknown>) {
  const { w } = c.get('reader');
  const owner = s.identity.role === 'user';
  const released = resultWords(w, owner).notice(status)!;
  try {
    const r = await reportMessage(c.get('deps'), s.identity, key(c, id), 'ham');
    const said = reportNotice('ham', { learned: r.learned, output: r.learner_output }, w, owner);
    return renderDetail(c, s, id, { notice: `${released} ${said}`, filter: scopeFields(body) });
  } catch (err) {
    const failed = err instanceof AppError ? reportError(err.code, w, owner) : null;
    if (!failed || !(err instanceof AppError)) throw err;
    c.get('deps').log.warn('report after release failed', { code: err.code, detail: err.message });
    return renderDetail(c, s, id, { notice: released, error: failed, filter: scopeFields(body) });
  }
}

/** The list, one message, its sandboxed body, and the actions on them (same verbs as the API). */
export function quarantineRoutes(ui: Hono<UiEnv>) {
  ui.get('/quarantine', async (c) => {
    const s = c.get('session');
    if (!s) return c.redirect('/ui/sign-in', 303);
    const query = pageQuery(c.req.query(), c.req.queries('type'));
    const { values, input, error: filterError } = parseFilters(query, c.get('reader').timeZone);
    const said = resultWords(c.get('reader').w, s.identity.role === 'user');
    let error = filterError;
    let result = { items: [] as Awaited<ReturnType<typeof listQuarantine>>['items'], next_cursor: null as string | null };
    if (input) {
      try {
        result = await listQuarantine(c.get('deps'), s.identity, input);
      } catch (err) {
        if (!(err instanceof AppError) || err.code !== 'invalid_cursor') throw err;
        error = said.stalePage;
        result = await listQuarantine(c.get('deps'), s.identity, { ...input, cursor: undefined });
      }
    }
    const total = input ? await countQuarantine(c.get('deps'), s.identity, input) : null;
    const ok = Number(query.ok ?? 0),
      failed = Number(query.failed ?? 0),
      nullSender = Number(query.null_sender ?? 0);
    const bulk = /^bulk-(\w+)$/.exec(query.done ?? '')?.[1];
    const notice = bulk ? said.bulk(bulk, ok, failed, nullSender) : said.notice(query.done ?? '');
    if (query.done === 'none_selected') error = said.noneSelected;
    const failures: BulkFailure[] = [];
    for (const x of c.req.queries('fail') ?? []) {
      const [id, code] = x.split('~');
      if (id && parseItemId(id, c.get('deps').gateway) && failures.length < SHOWN_FAILURES)
        failures.push({ id, reason: said.reason(code ?? '') });
    }
    const more = bulk ? Math.max(0, Math.min(failed, 200) - failures.length) : 0;
    return c.html(
      <ListPage
        who={s.identity}
        csrf={await csrf(c)}
        filters={values}
        items={result.items}
        notice={notice}
        error={error}
        failures={bulk ? failures : []}
        moreFailures={more > 0 ? said.more(more) : null}
        cursor={query.cursor ?? null}
        total={total}
        nextHref={result.next_cursor ? listHref(values, { cursor: result.next_cursor }) : null}
        firstHref={query.cursor ? listHref(values) : null}
        listsUnavailable={c.get('deps').variant.lookup.detail}
      />,
      filterError ? 400 : 200,
    );
  });

  // What the list shows (filters, order; every page) as CSV: the API's export verb.
  ui.get('/quarantine/export.csv', async (c) => {
    const s = c.get('session');
    if (!s) return c.redirect('/ui/sign-in', 303);
    const { input, error } = parseFilters(pageQuery(c.req.query(), c.req.queries('type')));
    if (!input) throw new AppError('bad_request', `The list's filter is not valid: ${error}`);
    const { limit: _limit, cursor: _cursor, ...filters } = input;
    const { stream, done } = await exportCsv(c.get('deps'), s.identity, filters);
    c.get('holdDatabase')(done);
    return c.body(stream, 200, csvHeaders());
  });

  // Confirm (what it reaches), then act on the filter's recipients, then back to the same view.
  ui.post('/quarantine/bulk', async (c) => {
    const s = requireSession(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    const action = one(body.action);
    const how = typeof action === 'string' && Object.hasOwn(BULK, action) ? BULK[action]! : null;
    if (!how) throw new AppError('bad_request', 'choose release, delete, release and allow, or delete and block');
    const posted = filterFields(body);
    const { values, input, error } = parseFilters(posted, c.get('reader').timeZone);
    if (!input) throw new AppError('bad_request', `The list's filter is not valid: ${error}`);
    const cursor = posted.cursor ?? null;
    const back = (extra: Record<string, string | string[]>) => listHref(values, cursor ? { cursor, ...extra } : extra);
    const ids = [...new Set(many(body.ids))];
    if (ids.length === 0) return c.redirect(back({ done: 'none_selected' }), 303);
    if (ids.length > 200) throw new AppError('bad_request', 'select at most 200 messages');
    const only = recipientFilter(input);
    const confirmed = flag(body.confirmed);
    const dangerousOk = flag(body.dangerous);
    // an owner never confirms virus or banned mail: the release policy alone decides what they may release
    const owner = s.identity.role === 'user';
    if (!confirmed || (how.action === 'release' && !dangerousOk && !owner)) {
      const rows = await selection(c, s, ids, only);
      const dangerous = how.action === 'release' && !owner && rows.some((r) => r.type === 'virus' || r.type === 'banned');
      if (!confirmed || dangerous) {
        const refused = confirmed && dangerous;
        return c.html(
          <ConfirmBulkPage
            who={s.identity}
            csrf={await csrf(c)}
            action={action as string}
            verb={how.action}
            label={c.get('reader').w.t(`page.bulk.action.${action}`)}
            filters={values}
            cursor={cursor}
            ids={ids}
            rows={rows}
            error={refused ? c.get('reader').w.t('page.bulk.err_confirm') : null}
          />,
          refused ? 400 : 200,
        );
      }
    }
    // the confirmation page's box for virus / banned mail is the verb's confirm_dangerous
    const results = await runBulk(c.get('deps'), s.identity, { ...how, ids, only, confirmDangerous: dangerousOk });
    const good = results.filter((r) => r.status === 200).length;
    const nullSender = results.filter((r) => r.error?.code === 'invalid_field' && /null sender/.test(r.error.detail)).length;
    const failed = results.filter((r) => r.status !== 200);
    const extra: Record<string, string | string[]> = { done: `bulk-${action as string}`, ok: String(good), failed: String(failed.length) };
    if (nullSender) extra.null_sender = String(nullSender);
    if (failed.length) {
      extra.fail = failed
        .slice(0, SHOWN_FAILURES)
        .map((r) => `${r.id}~${r.status === 207 ? 'partial' : r.status === 502 ? 'release_failed' : (r.error?.code ?? 'failed')}`);
    }
    return c.redirect(back(extra), 303);
  });

  ui.get('/quarantine/:id', async (c) => {
    const s = requireSession(c);
    const done = c.req.query('done') ?? '';
    const text = resultWords(c.get('reader').w, s.identity.role === 'user').notice(done);
    const error = ERROR_CODES.has(done) ? text : null;
    return renderDetail(c, s, c.req.param('id'), { notice: error ? null : text, error });
  });

  // The HTML part alone, rebuilt inert, for the sandboxed iframe; never part of a page.
  ui.get('/quarantine/:id/body', async (c) => {
    const s = requireSession(c);
    const detail = await getItemDetail(c.get('deps'), s.identity, key(c, c.req.param('id')));
    let html: string;
    if (detail.html !== null) html = inertHtml(detail.html, { loadImages: c.req.query('images') === '1' }).html;
    else if (detail.parse_error || detail.truncated)
      html = noteDocument(s.identity.role === 'user' ? c.get('reader').w.t('page.msg.body_unreadable') : BODY_UNREADABLE);
    else throw new AppError('not_found', 'this message has no HTML part');
    return c.body(html, 200, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': bodyCsp(c.req.query('images') === '1'),
      'x-frame-options': 'SAMEORIGIN',
    });
  });

  // The original message, as GET /v1/quarantine/{id}/raw: what a view could not show in full.
  ui.get('/quarantine/:id/raw', async (c) => {
    const s = requireSession(c);
    const k = key(c, c.req.param('id'));
    const bytes = await getRawMessage(c.get('deps'), s.identity, k);
    return c.body(bytes as unknown as ArrayBuffer, 200, {
      'content-type': 'message/rfc822',
      'content-disposition': `attachment; filename="${k.partitionTag}.${k.mailId}.eml"`,
      'x-content-type-options': 'nosniff',
    });
  });

  ui.post('/quarantine/:id/release', async (c) => {
    const s = requireSession(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    const id = c.req.param('id');
    const allowSender = flag(body.allow_sender);
    // force (admins, from the "Release outcome unknown" box) names the stuck recipients
    const force = flag(body.force);
    // named recipients: a forced release's stuck copies, or the copies a filtered view showed
    const named = many(body.recipients);
    const recipients = named.length ? named : undefined;
    const confirmDangerous = flag(body.confirm_dangerous);
    let done: string;
    try {
      const r = await releaseMessage(c.get('deps'), s.identity, { key: key(c, id), allowSender, force, recipients, confirmDangerous });
      // "Release and report as not spam": once released, the report; the page says what the learner said
      if (flag(body.report_ham) && r.status !== 'failed') return releasedAndReported(c, s, id, r.status, body);
      done =
        r.status === 'released' ? (allowSender ? 'released_allowed' : 'released') : r.status === 'partial' ? 'partial' : 'release_failed';
    } catch (err) {
      if (err instanceof AppError && err.code === 'invalid_field' && allowSender) return listingRefused(c, s, id, err, body);
      if (err instanceof AppError && err.code === 'release_not_allowed') {
        // only owners are refused by the release policy (README: Release policy): the catalog's words
        const { w } = c.get('reader');
        return renderDetail(c, s, id, {
          error: w.t(err.extra.allowed === 'request' ? 'act.not_allowed.request' : 'act.not_allowed.none'),
          status: 403,
        });
      }
      if (!(err instanceof AppError) || !ERROR_CODES.has(err.code)) throw err;
      done = err.code;
    }
    return c.redirect(`/ui/quarantine/${id}?${new URLSearchParams({ ...scopeFields(body), done })}`, 303);
  });

  // A mailbox owner's release request (where the release policy says `request`), as the API's.
  ui.post('/quarantine/:id/release-request', async (c) => {
    const s = requireSession(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    const id = c.req.param('id');
    const { delivery } = await requestRelease(c.get('deps'), s.identity, key(c, id));
    inBackground(c, delivery);
    return c.redirect(`/ui/quarantine/${id}?done=requested`, 303);
  });

  ui.post('/quarantine/:id/mark-released', async (c) => {
    const s = requireSession(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    const id = c.req.param('id');
    await markReleased(c.get('deps'), s.identity, { key: key(c, id), recipients: many(body.recipients), note: 'marked on the page' });
    return c.redirect(`/ui/quarantine/${id}?done=marked_released`, 303);
  });

  ui.post('/quarantine/:id/delete', async (c) => {
    const s = requireSession(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    const id = c.req.param('id');
    const blockSender = flag(body.block_sender);
    const named = many(body.recipients);
    try {
      await deleteMessage(c.get('deps'), s.identity, { key: key(c, id), blockSender, recipients: named.length ? named : undefined });
    } catch (err) {
      if (err instanceof AppError && err.code === 'invalid_field' && blockSender) return listingRefused(c, s, id, err, body);
      if (err instanceof AppError && err.code === 'nothing_to_delete') {
        return c.redirect(`/ui/quarantine/${id}?${new URLSearchParams({ ...scopeFields(body), done: 'nothing_to_delete' })}`, 303);
      }
      throw err;
    }
    const scope = scopeFields(body);
    return c.redirect(
      listHref({ domain: scope.domain, recipient: scope.recipient }, { done: blockSender ? 'deleted_blocked' : 'deleted' }),
      303,
    );
  });
}
