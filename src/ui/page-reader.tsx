/** @jsxImportSource hono/jsx */
import { ownerReader } from '../digest/reader.ts';
import type { C } from './context.ts';
import { ENGLISH, PageContext, type PageReader } from './words.ts';

/**
 * Who reads this request's pages: a mailbox session's owner (their saved language and zone, else
 * DIGEST_LANGUAGE, else Accept-Language), admins in English, anyone not signed in by DIGEST_LANGUAGE
 * and Accept-Language. Every page this request renders (c.html) is wrapped in PageContext with it.
 */
export async function usePageReader(c: C): Promise<PageReader> {
  const who = c.get('session')?.identity;
  const accept = c.req.header('accept-language');
  const reader: PageReader =
    who && who.role !== 'user'
      ? ENGLISH
      : await ownerReader(c.get('deps'), who?.role === 'user' ? who.mailbox : null, accept).then((r) => ({ w: r.w, timeZone: r.timeZone }));
  c.set('reader', reader);
  const html = c.html.bind(c);
  c.html = ((node: unknown, ...rest: unknown[]) =>
    (html as (...a: unknown[]) => unknown)(
      typeof node === 'string' ? node : <PageContext.Provider value={reader}>{node as never}</PageContext.Provider>,
      ...rest,
    )) as typeof c.html;
  return reader;
}
