import { signPortalToken } from '../../src/ui/portal-token.ts';

/** What PageClient sends requests through: a Hono app's `request`, or the Worker's fetch in workerd. */
export interface Fetcher {
  request(url: string, init?: RequestInit): Response | Promise<Response>;
}

/**
 * A minimal browser for page tests over app.request: keeps cookies (as a browser would for this
 * origin), reads the CSRF token out of a page's forms and posts forms.
 */
export class PageClient {
  cookies = new Map<string, string>();
  /** every Set-Cookie seen, raw, for attribute checks */
  setCookies: string[] = [];
  constructor(
    private app: Fetcher,
    private origin = 'http://localhost',
  ) {}

  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await this.app.request(`${this.origin}${path}`, { ...init, headers });
    for (const sc of res.headers.getSetCookie()) {
      this.setCookies.push(sc);
      const [pair] = sc.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      if (/max-age=0\b/i.test(sc) || /expires=Thu, 01 Jan 1970/i.test(sc)) this.cookies.delete(name);
      else this.cookies.set(name, pair!.slice(eq + 1));
    }
    return res;
  }

  async page(path: string): Promise<{ res: Response; html: string; csrf: string | null }> {
    const res = await this.request(path);
    const html = await res.text();
    return { res, html, csrf: /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? null };
  }

  post(path: string, fields: Record<string, string | string[] | undefined>, headers: Record<string, string> = {}): Promise<Response> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
    }
    return this.request(path, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
  }
}

type App = Fetcher;

/** A browser signed in through a portal link for `mailbox` (GET shows the button, POST starts the session). */
export async function portalSession(app: App, secret: string, mailbox: string, expires: number): Promise<PageClient> {
  const b = new PageClient(app);
  const token = await signPortalToken(secret, mailbox, expires);
  const { csrf } = await b.page(`/ui/portal/${token}`);
  const res = await b.post(`/ui/portal/${token}`, { csrf: csrf! });
  if (res.status !== 303 || !b.cookies.has('qe_session')) throw new Error(`portal sign-in for ${mailbox} answered ${res.status}`);
  return b;
}

/** A browser signed in with an API key. */
export async function keySession(app: App, key: string, origin?: string): Promise<PageClient> {
  const b = new PageClient(app, origin);
  const { csrf } = await b.page('/ui/sign-in');
  const res = await b.post('/ui/sign-in', { csrf: csrf!, key });
  if (res.status !== 303 || !b.cookies.has('qe_session')) throw new Error(`key sign-in answered ${res.status}`);
  return b;
}
