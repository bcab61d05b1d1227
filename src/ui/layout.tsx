/** @jsxImportSource hono/jsx */
import { raw } from 'hono/html';
import type { Child } from 'hono/jsx';
import type { Identity } from '../auth/identity.ts';
import { pendingRequests } from './request-count.ts';

/** Every page: no inline script or style (CSP), one h1, a skip link, sign-out when signed in. */
export function Layout(props: { title: string; who?: Identity | null; csrf?: string; wide?: boolean; children?: Child }) {
  // The doctype keeps browsers out of quirks mode (JSX cannot write one).
  return (
    <>
      {raw('<!DOCTYPE html>')}
      <html lang="en">
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
            Skip to content
          </a>
          <header class="top">
            <a class="brand" href="/ui/quarantine">
              quarantine-edge
            </a>
            {props.who && props.csrf ? (
              <div>
                <span class="muted">{whoLabel(props.who)}</span>{' '}
                <form class="inline" method="post" action="/ui/sign-out">
                  <input type="hidden" name="csrf" value={props.csrf} />
                  <button type="submit" class="secondary">
                    Sign out
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
            <span data-tz>Times are in UTC.</span>
          </footer>
        </body>
      </html>
    </>
  );
}

/** What this role may open: the same scopes as the API (audit: admins and domain admins; digest settings: a mailbox). */
function Nav(props: { who: Identity }) {
  const role = props.who.role;
  return (
    <nav class="main-nav" aria-label="Main">
      <a href="/ui/quarantine">Quarantine</a>
      <a href="/ui/senders">Sender lists</a>
      {role !== 'user' ? (
        <a href="/ui/requests">{`Release requests${pendingRequests(props.who) ? ` (${pendingRequests(props.who)})` : ''}`}</a>
      ) : null}
      {role !== 'user' ? <a href="/ui/audit">Audit log</a> : null}
      {role === 'user' ? <a href="/ui/subscription">Digest settings</a> : null}
    </nav>
  );
}

export function whoLabel(who: Identity): string {
  if (who.role === 'user') return `Mailbox ${who.mailbox}`;
  if (who.role === 'domain_admin') return `Domain admin (${who.domains.join(', ')})`;
  return 'Admin';
}

/** A time as UTC text; the script shows it in the reader's zone. */
export function When(props: { iso: string }) {
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
export function ErrorPage(props: { status: number; title: string; detail: string; requestId: string; who?: Identity | null }) {
  return (
    <Layout title={props.title} who={props.who ?? null}>
      <h1>{props.title}</h1>
      <p>{props.detail}</p>
      <p class="muted">
        Error {props.status} · request {props.requestId}
      </p>
      {props.who ? (
        <p>
          <a href="/ui/quarantine">Back to the quarantine</a>
        </p>
      ) : (
        <nav class="main-nav" aria-label="Main">
          <a href="/ui/quarantine">Quarantine</a>
          <a href="/ui/sign-in">Sign in</a>
        </nav>
      )}
    </Layout>
  );
}

export function SignInPage(props: { csrf: string; error?: string | null; linkError?: string | null; address?: string }) {
  return (
    <Layout title="Sign in">
      <h1>Sign in</h1>
      <Notice text={props.error ?? null} error />
      <form method="post" action="/ui/sign-in">
        <input type="hidden" name="csrf" value={props.csrf} />
        <p>
          <label for="key">API key</label>
          <input id="key" name="key" type="password" autocomplete="off" required size={40} />
        </p>
        <button type="submit">Sign in</button>
      </form>
      <p class="muted">
        Admins and domain admins sign in with their API key; it is checked once and never stored in the browser. Mailbox owners: open the
        link in your quarantine digest email, or ask for one below.
      </p>
      <h2 id="h-link">Email me a link</h2>
      <Notice text={props.linkError ?? null} error />
      <form method="post" action="/ui/email-link" aria-labelledby="h-link">
        <input type="hidden" name="csrf" value={props.csrf} />
        <p>
          <label for="address">Your email address</label>
          <input id="address" name="address" type="email" autocomplete="email" required size={40} value={props.address ?? ''} />
        </p>
        <button type="submit">Email me a link</button>
      </form>
    </Layout>
  );
}

export function PortalPage(props: { csrf: string; mailbox: string; token: string }) {
  return (
    <Layout title="Your quarantined mail">
      <h1>Your quarantined mail</h1>
      <p>
        This link opens the quarantine of <strong>{props.mailbox}</strong>.
      </p>
      <form method="post" action={`/ui/portal/${props.token}`}>
        <input type="hidden" name="csrf" value={props.csrf} />
        <button type="submit">Continue</button>
      </form>
    </Layout>
  );
}
