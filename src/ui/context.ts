import type { Context } from 'hono';
import type { AppEnv } from '../api/env.ts';

export { inBackground } from '../api/env.ts';
import { AppError } from '../errors.ts';
import { csrfFor, type Session } from './session.ts';
import type { PageReader } from './words.ts';

/** What every page handler sees: the app's variables plus the page session (or null). */
export type UiEnv = { Variables: AppEnv['Variables'] & { session: Session | null; reader: PageReader } };
export type C = Context<UiEnv>;

export const ctx = (c: C) => c as unknown as Context<AppEnv>;
export const csrf = (c: C) => csrfFor(ctx(c), c.get('session'));

export function requireSession(c: C): Session {
  const s = c.get('session');
  if (!s) throw new AppError('unauthorized', 'sign in first');
  return s;
}

export function form(c: C) {
  return c.req.parseBody({ all: true });
}

/** The first value of a form field (a repeated field is an array). */
export const one = (v: unknown) => (Array.isArray(v) ? v[0] : v);

/** A form field as text, or undefined. */
export const field = (v: unknown): string | undefined => {
  const x = one(v);
  return typeof x === 'string' ? x : undefined;
};

/** A checkbox or hidden flag: present and "1"/"on"/"true". */
export const flag = (v: unknown) => ['1', 'on', 'true'].includes(field(v) ?? '');
