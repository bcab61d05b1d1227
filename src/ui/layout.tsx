/** @jsxImportSource hono/jsx */
import { raw } from 'hono/html';
import type { Child } from 'hono/jsx';
import { actingGateway, HOME_GATEWAY, type Identity } from '../auth/identity.ts';
import { usePage } from './words.ts';
import { pendingRequests } from './request-count.ts';

/** Every page: no inline script or style (CSP), one h1, a skip link, sign-out when signed in. */
export function Layout(props: { title: string; who?: Identity | null; csrf?: string; wide?: boolean; children?: Child }) {
  const { w, timeZone } = usePage();
  // The doctype keeps browsers out of quirks mode (JSX cannot write one).
  return (
    <>
      {raw('<!DOCTYPE html>')}
      <html lang={w.language}>
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>{`${props.title} · quarantine-edge`}</title>
          <link rel="icon" href="data:," />
          <link rel="stylesheet" href="/ui/static/app.css" />
          <script src="/ui/static/app.js" defer></script>
        </head>
        <body>
          <a class="skip" href="#main">
            {w.t('page.skip')}
          </a>
          <header class="top">
            <a class="brand" href="/ui">
              quarantine-edge
            </a>
            {props.who && props.csrf ? (
              <div>
                <span class="muted">{whoLabel(props.who)}</span>{' '}
                <form class="inline" method="post" action="/ui/sign-out">
                  <input type="hidden" name="csrf" value={props.csrf} />
                  <button type="submit" class="secondary">
                    {w.t('page.sign_out')}
                  </button>
                </form>
              </div>
            ) : null}
            {props.who ? <Nav who={props.who} /> : null}
          </header>
          <main id="main" tabindex={-1} class={props.wide ? 'wide' : undefined}>
            {props.children}
          </main>
          <footer class="muted">
            {timeZone ? (
              <span>{w.t('page.times_zone', { zone: timeZone })}</span>
            ) : (
              <span data-tz={w.t('page.times_browser')}>{w.t('page.times_utc')}</span>
            )}
          </footer>
        </body>
      </html>
    </>
  );
}

/** What this role may open: the same scopes as the API (audit: admins and domain admins; digest settings: a mailbox). */
function Nav(props: { who: Identity }) {
  const role = props.who.role;
  const { w } = usePage();
  const pending = pendingRequests(props.who);
  // a registered gateway's session: its release requests are not on the pages yet (src/ui/session-gateway.ts)
  const home = actingGateway(props.who) === HOME_GATEWAY;
  return (
    <nav class="main-nav" aria-label={w.t('page.nav.label')}>
      {role !== 'user' ? <a href="/ui">Overview</a> : null}
      <a href="/ui/quarantine">{w.t('page.nav.quarantine')}</a>
      <a href="/ui/senders">{w.t('page.nav.senders')}</a>
      {role !== 'user' && home ? <a href="/ui/requests">{`Release requests${pending ? ` (${pending})` : ''}`}</a> : null}
      {role !== 'user' ? <a href="/ui/audit">Audit log</a> : null}
      {role === 'admin' && home ? <a href="/ui/gateways">Gateways</a> : null}
      {role === 'user' ? <a href="/ui/subscription">{w.t('page.nav.settings')}</a> : null}
    </nav>
  );
}

export function whoLabel(who: Identity): string {
  if (who.role === 'user') return usePage().w.t('page.mailbox', { mailbox: who.mailbox });
  // the gateway a key session acts in, for those who administer it (a mailbox owner reads their address only)
  const at = actingGateway(who) === HOME_GATEWAY ? '' : ` at gateway ${actingGateway(who)}`;
  if (who.role === 'domain_admin') return `Domain admin (${who.domains.join(', ')})${at}`;
  return `Admin${at}`;
}

/**
 * A time in the owner's saved zone, in their language (data-zone: the script leaves it); without a
 * saved zone as UTC text, which the script shows in the browser's zone.
 */
export function When(props: { iso: string }) {
  const { w, timeZone } = usePage();
  if (timeZone) {
    return (
      <time datetime={props.iso} data-zone={timeZone}>
        {w.time(Math.floor(Date.parse(props.iso) / 1000), timeZone)}
      </time>
    );
  }
  return <time datetime={props.iso}>{props.iso.slice(0, 16).replace('T', ' ')} UTC</time>;
}

/** Cursor paging: back to the first page, and on to the next (the API's next_cursor). */
export function Pager(props: { firstHref: string | null; nextHref: string | null; first: string; next: string }) {
  return (
    <nav class="pager" aria-label="Pages">
      {props.firstHref ? <a href={props.firstHref}>{props.first}</a> : null}
      {props.nextHref ? (
        <a href={props.nextHref} rel="next">
          {props.next}
        </a>
      ) : null}
    </nav>
  );
}

export function Notice(props: { text: string | null; error?: boolean }) {
  if (!props.text) return null;
  return (
    <p class={props.error ? 'notice error' : 'notice'} role={props.error ? 'alert' : 'status'}>
      {props.text}
    </p>
  );
}

/** An error page keeps the way on: the signed-in reader's navigation, else the quarantine and sign-in. */
export function ErrorPage(props: {
  status: number;
  title: string;
  detail: string;
  requestId: string;
  who?: Identity | null;
  csrf?: string;
}) {
  const { w } = usePage();
  return (
    <Layout title={props.title} who={props.who ?? null} {...(props.csrf === undefined ? {} : { csrf: props.csrf })}>
      <h1>{props.title}</h1>
      <p>{props.detail}</p>
      <p class="muted">{w.t('page.error_line', { status: String(props.status), id: props.requestId })}</p>
      {props.who ? (
        <p>
          <a href="/ui/quarantine">{w.t('page.back_quarantine')}</a>
        </p>
      ) : (
        <nav class="main-nav" aria-label={w.t('page.nav.label')}>
          <a href="/ui/quarantine">{w.t('page.nav.quarantine')}</a>
          <a href="/ui/sign-in">{w.t('page.sign_in.title')}</a>
        </nav>
      )}
    </Layout>
  );
}

export function SignInPage(props: { csrf: string; error?: string | null; linkError?: string | null; address?: string }) {
  const { w } = usePage();
  return (
    <Layout title={w.t('page.sign_in.title')}>
      <h1>{w.t('page.sign_in.title')}</h1>
      <Notice text={props.error ?? null} error />
      <form method="post" action="/ui/sign-in">
        <input type="hidden" name="csrf" value={props.csrf} />
        <p>
          <label for="key">{w.t('page.sign_in.key')}</label>
          <input id="key" name="key" type="password" autocomplete="off" required size={40} />
        </p>
        <button type="submit">{w.t('page.sign_in.title')}</button>
      </form>
      <p class="muted">{w.t('page.sign_in.help')}</p>
      <h2 id="h-link">{w.t('page.link.heading')}</h2>
      <Notice text={props.linkError ?? null} error />
      <form method="post" action="/ui/email-link" aria-labelledby="h-link">
        <input type="hidden" name="csrf" value={props.csrf} />
        <p>
          <label for="address">{w.t('page.link.address')}</label>
          <input id="address" name="address" type="email" autocomplete="email" required size={40} value={props.address ?? ''} />
        </p>
        <button type="submit">{w.t('page.link.heading')}</button>
      </form>
    </Layout>
  );
}

export function PortalPage(props: { csrf: string; mailbox: string; token: string }) {
  const { w } = usePage();
  return (
    <Layout title={w.t('page.portal.title')}>
      <h1>{w.t('page.portal.title')}</h1>
      <p>{w.t('page.portal.intro', { mailbox: props.mailbox })}</p>
      <form method="post" action={`/ui/portal/${props.token}`}>
        <input type="hidden" name="csrf" value={props.csrf} />
        <button type="submit">{w.t('page.portal.continue')}</button>
      </form>
    </Layout>
  );
}
