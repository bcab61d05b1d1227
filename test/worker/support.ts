/**
 * Runs inside workerd. Every call goes through the real functions/worker.ts as a request of its
 * own (a loopback service binding), so per-request I/O rules apply exactly as in production.
 */
import { exports } from 'cloudflare:workers';
import { expect, inject } from 'vitest';
import type { WorkerSeed } from './seed.ts';

export const BASE = 'https://quarantine.test';
/** Must equal ADMIN_API_KEY in test/worker/vitest.config.ts (the bootstrap admin key). */
export const BOOTSTRAP_KEY = 'worker-test-bootstrap-admin-key-0123456789';

export function seed(): WorkerSeed {
  return inject('workerSeeds')[inject('workerDb')];
}

export function call(path: string, key?: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (key) headers.set('authorization', `Bearer ${key}`);
  return exports.default.fetch(`${BASE}${path}`, { ...init, headers });
}

export interface ListBody {
  items: Array<
    { id: string; type: string; recipients: Array<{ address: string; status: string; score: number | null }> } & Record<string, unknown>
  >;
  next_cursor: string | null;
}

export async function json<T = Record<string, unknown>>(res: Response, status = 200): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return JSON.parse(text) as T;
}

export async function list(query: string, key: string): Promise<ListBody> {
  return json<ListBody>(await call(`/v1/quarantine${query}`, key));
}

/** An RFC 9457 problem with this status and code. */
export async function problem(
  res: Response,
  status: number,
  code: string,
  opts: { requestIdHeader?: boolean } = {},
): Promise<Record<string, unknown>> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const body = JSON.parse(text) as Record<string, unknown>;
  expect(body).toMatchObject({ status, code });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  expect(body.request_id).toEqual(expect.stringMatching(/.+/));
  if (opts.requestIdHeader !== false) expect(res.headers.get('x-request-id')).toBe(body.request_id);
  return body;
}
