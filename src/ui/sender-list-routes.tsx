/** @jsxImportSource hono/jsx */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Hono } from 'hono';
import { AppError } from '../errors.ts';
import { addSenderEntry, listSenderEntries, removeSenderEntry, type ListName } from '../senders/lists.ts';
import { csrf, ctx, field, form, one, requireSession, type C, type UiEnv } from './context.ts';
import { SenderListPage, type SenderFilterValues, type SenderFormValues } from './sender-list-pages.tsx';
import { checkCsrf, type Session } from './session.ts';

const PAGE_LIMIT = 500;
/** The result of a write, by the ?done= it redirects with (catalog keys page.senders.done.*). */
const DONE = new Set(['created', 'updated', 'unchanged', 'removed', 'not_removed']);

const listName = (v: string | undefined): ListName | undefined => (v === 'allow' || v === 'block' ? v : undefined);
const blank = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim());

/**
 * The page over the caller's scope, with an error (400 naming the field, or 404 out of scope) when
 * a write was refused. The verbs decide the scope: admins everything, domain admins their domains,
 * a mailbox its own address (src/senders/rows.ts usersScope / canManageRecipient).
 */
async function render(
  c: C,
  s: Session,
  o: { values?: SenderFormValues; notice?: string | null; error?: string | null; status?: ContentfulStatusCode } = {},
) {
  const q = c.req.query();
  const filters: SenderFilterValues = {
    recipient: s.identity.role === 'user' ? undefined : blank(q.recipient)?.slice(0, 300),
    sender: blank(q.sender)?.slice(0, 300),
    list: listName(q.list),
  };
  let error = o.error ?? null;
  let status: ContentfulStatusCode = o.status ?? 200;
  let entries: Awaited<ReturnType<typeof listSenderEntries>> = [];
  try {
    entries = await listSenderEntries(c.get('deps'), s.identity, { ...filters, list: listName(filters.list), limit: PAGE_LIMIT });
  } catch (err) {
    // a malformed filter: the page says which field, lists nothing; no lookup tables: it says so (501)
    if (!(err instanceof AppError) || (err.code !== 'invalid_field' && err.code !== 'lookup_tables_missing')) throw err;
    error = err.code === 'invalid_field' ? fieldError(c, s, err, 'filter') : unavailable(c, s, err);
    status = err.status;
  }
  const values = o.values ?? { recipient: '', sender: '', list: 'allow' };
  return c.html(
    <SenderListPage
      who={s.identity}
      csrf={await csrf(c)}
      entries={entries}
      limit={PAGE_LIMIT}
      filters={filters}
      values={values}
      notice={o.notice ?? null}
      error={error}
    />,
    status,
  );
}

/** No lookup tables: admins read the setup detail; an owner reads that sender lists are not set up. */
function unavailable(c: C, s: Session, err: AppError): string {
  return s.identity.role === 'user'
    ? c.get('reader').w.t('page.senders.unavailable', { reason: c.get('reader').w.t('page.senders.not_set_up') })
    : err.message;
}

/**
 * A field the verb refused. Admins read the verb's detail ("sender: expected a@b.example, ..."); an
 * owner reads the catalog's sentence for that field. An owner's recipient is their own mailbox
 * (read-only in the form), so only a changed form gets there: the recipient sentence.
 */
function fieldError(c: C, s: Session, err: AppError, where: 'filter' | 'write'): string {
  const { w } = c.get('reader');
  if (s.identity.role !== 'user')
    return w.t(where === 'filter' ? 'page.senders.err_filter' : 'page.senders.err_field', { reason: err.message });
  if (err.extra.field === 'sender') return w.t(where === 'filter' ? 'page.senders.err_filter_sender' : 'page.senders.err_sender');
  return w.t('page.senders.err_recipient');
}

/** A refused write: 400 (which field) or 404 (recipient outside the caller's scope), the form kept. */
function refused(c: C, s: Session, err: unknown, values: SenderFormValues) {
  const { w } = c.get('reader');
  if (err instanceof AppError && err.code === 'lookup_tables_missing')
    return render(c, s, { values, error: `${unavailable(c, s, err)} ${w.t('page.senders.unchanged')}`, status: err.status });
  if (err instanceof AppError && (err.code === 'invalid_field' || err.code === 'not_found')) {
    const text = err.code === 'not_found' ? w.t('page.senders.err_recipient') : fieldError(c, s, err, 'write');
    return render(c, s, { values, error: text, status: err.status });
  }
  throw err;
}

/** Sender allow/block lists: the same verbs as /v1/sender-lists, never the API over HTTP. */
export function senderListRoutes(ui: Hono<UiEnv>) {
  ui.get('/senders', async (c) => {
    const s = c.get('session');
    if (!s) return c.redirect('/ui/sign-in', 303);
    const done = c.req.query('done') ?? '';
    return render(c, s, { notice: DONE.has(done) ? c.get('reader').w.t(`page.senders.done.${done}`) : null });
  });

  ui.post('/senders/add', async (c) => {
    const s = requireSession(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    const values: SenderFormValues = {
      recipient: (field(body.recipient) ?? '').slice(0, 300),
      sender: (field(body.sender) ?? '').slice(0, 300),
      list: field(body.list) ?? '',
    };
    const list = listName(values.list);
    if (!list) return render(c, s, { values, error: c.get('reader').w.t('page.senders.err_list'), status: 400 });
    try {
      const r = await addSenderEntry(c.get('deps'), s.identity, { recipient: values.recipient, sender: values.sender, list });
      return c.redirect(`/ui/senders?done=${r.change}`, 303);
    } catch (err) {
      return refused(c, s, err, values);
    }
  });

  ui.post('/senders/remove', async (c) => {
    const s = requireSession(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    const recipient = (field(body.recipient) ?? '').slice(0, 300);
    const sender = (field(body.sender) ?? '').slice(0, 300);
    const rawList = field(body.list);
    const list = listName(rawList);
    if (rawList !== undefined && rawList !== '' && !list) {
      return render(c, s, { error: c.get('reader').w.t('page.senders.err_list_remove'), status: 400 });
    }
    try {
      const r = await removeSenderEntry(c.get('deps'), s.identity, { recipient, sender, list });
      return c.redirect(`/ui/senders?done=${r.removed ? 'removed' : 'not_removed'}`, 303);
    } catch (err) {
      return refused(c, s, err, { recipient: '', sender: '', list: 'allow' });
    }
  });
}
