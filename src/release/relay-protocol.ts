/**
 * The relay protocol: a Worker asks the on-host relay to release a message over AM.PDP.
 * Runtime-neutral (fetch + Web Crypto), so it runs in workerd as well as on Node.
 *
 * Request: `POST ${RELAY_URL}/v1/release`, JSON body (relayReleaseBody), headers
 *   x-qe-timestamp:  Unix seconds when signed; the relay accepts ±5 minutes of its own clock
 *   x-qe-request-id: a fresh id (UUID); the relay accepts each one once
 *   x-qe-signature:  `v1=` + hex HMAC-SHA256(RELAY_SECRET, base string)
 * base string (LF-separated, no trailing LF):
 *   "qe-relay-v1" \n METHOD \n PATH \n timestamp \n request-id \n hex(SHA-256(raw body bytes))
 * PATH is the endpoint path relative to RELAY_URL (`/v1/release`), so a reverse proxy that mounts
 * the relay under a prefix (and strips it) does not break signatures.
 *
 * The relay signs its answer the same way with the base string
 *   "qe-relay-v1-response" \n status \n request-id \n timestamp \n hex(SHA-256(raw body bytes))
 * and the client believes a 200 only with a valid answer signature for its own request id: a
 * "released" that did not come from the relay would mark mail released that never was.
 */
import { z } from 'zod';
import { toReleaseReply } from '../amavis/pdp.ts';
import { toHex } from '../crypto/sha256.ts';
import { AppError } from '../errors.ts';
import type { ReleaseReply, ReleaseRequest, ReleaseTransport } from './transport.ts';

export const RELAY_RELEASE_PATH = '/v1/release';
/** `POST ${RELAY_URL}/v1/learn/{ham|spam}`: the original message as the body (src/learn/relay-learner.ts) */
export const RELAY_LEARN_PATH = '/v1/learn';
export const RELAY_WINDOW_MS = 5 * 60_000;
export const RELAY_HEADERS = {
  timestamp: 'x-qe-timestamp',
  requestId: 'x-qe-request-id',
  signature: 'x-qe-signature',
} as const;

const REQUEST_PREFIX = 'qe-relay-v1';
const RESPONSE_PREFIX = 'qe-relay-v1-response';
const REQUEST_ID = /^[A-Za-z0-9_-]{16,128}$/;
const SIGNATURE = /^v1=([0-9a-f]{64})$/;
const CONTROL = /[\u0000-\u001f\u007f]/;
const encoder = new TextEncoder();

/** The JSON body of a release through the relay; the relay validates it with this schema. */
export const relayReleaseBody = z
  .object({
    partition_tag: z.number().int().min(0).max(2147483647),
    mail_id: z.string().regex(/^[A-Za-z0-9+_-]{1,16}$/, 'expected an amavisd mail_id'),
    secret_id: z.string().regex(/^[A-Za-z0-9+_-]{1,16}$/, 'expected an amavisd secret_id'),
    recipients: z
      .array(
        z
          .string()
          .min(1)
          .max(320)
          .refine((r) => !CONTROL.test(r), 'must not contain control characters'),
      )
      .max(1000),
    requested_by: z
      .string()
      .max(320)
      .refine((r) => !CONTROL.test(r), 'must not contain control characters')
      .default(''),
  })
  .strict();
export type RelayReleaseBody = z.infer<typeof relayReleaseBody>;

export function relayBodyOf(req: ReleaseRequest): RelayReleaseBody {
  return {
    partition_tag: req.partitionTag,
    mail_id: req.mailId,
    secret_id: req.secretId,
    recipients: req.recipients,
    requested_by: req.requestedBy,
  };
}

export function releaseRequestOf(body: RelayReleaseBody): ReleaseRequest {
  return {
    partitionTag: body.partition_tag,
    mailId: body.mail_id,
    secretId: body.secret_id,
    recipients: body.recipients,
    requestedBy: body.requested_by,
  };
}

/** The relay's 200 answer. */
export const relayReleaseAnswer = z.object({
  setreplies: z.array(z.string()),
  attributes: z.array(z.tuple([z.string(), z.string()])),
  released: z.boolean(),
});
export type RelayReleaseAnswer = z.infer<typeof relayReleaseAnswer>;

type Bytes = Uint8Array | string;
const bytesOf = (b: Bytes): Uint8Array<ArrayBuffer> => (typeof b === 'string' ? encoder.encode(b) : new Uint8Array(b));

const hex = (buf: ArrayBuffer): string => toHex(new Uint8Array(buf));

function unhex(s: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return out;
}

async function sha256Hex(body: Bytes): Promise<string> {
  return hex(await crypto.subtle.digest('SHA-256', bytesOf(body)));
}

function hmacKey(secret: string, usage: 'sign' | 'verify'): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [usage]);
}

async function sign(secret: string, base: string): Promise<string> {
  return `v1=${hex(await crypto.subtle.sign('HMAC', await hmacKey(secret, 'sign'), encoder.encode(base)))}`;
}

/** Web Crypto's HMAC verify compares in constant time; a malformed header never gets that far. */
async function verifySignature(secret: string, base: string, header: string | null | undefined): Promise<boolean> {
  const m = SIGNATURE.exec(header ?? '');
  if (!m) return false;
  return crypto.subtle.verify('HMAC', await hmacKey(secret, 'verify'), unhex(m[1]!), encoder.encode(base));
}

async function requestBase(method: string, path: string, timestamp: string, requestId: string, body: Bytes) {
  return [REQUEST_PREFIX, method.toUpperCase(), path, timestamp, requestId, await sha256Hex(body)].join('\n');
}

async function responseBase(status: number, requestId: string, timestamp: string, body: Bytes) {
  return [RESPONSE_PREFIX, String(status), requestId, timestamp, await sha256Hex(body)].join('\n');
}

export interface SignInput {
  method: string;
  path: string;
  body: Bytes;
  /** ms since the epoch (default now) */
  nowMs?: number;
  /** default: a random UUID */
  requestId?: string;
}

/** The three headers for a relay request. */
export async function signRelayRequest(secret: string, input: SignInput): Promise<Record<string, string>> {
  const timestamp = String(Math.floor((input.nowMs ?? Date.now()) / 1000));
  const requestId = input.requestId ?? crypto.randomUUID();
  const signature = await sign(secret, await requestBase(input.method, input.path, timestamp, requestId, input.body));
  return { [RELAY_HEADERS.timestamp]: timestamp, [RELAY_HEADERS.requestId]: requestId, [RELAY_HEADERS.signature]: signature };
}

export type HeaderSource = Headers | Record<string, string | undefined>;
const header = (h: HeaderSource, name: string): string | undefined =>
  h instanceof Headers ? (h.get(name) ?? undefined) : (h[name] ?? h[name.toLowerCase()]);

export type VerifyResult =
  | { ok: true; requestId: string; timestampMs: number }
  | { ok: false; reason: 'missing' | 'malformed' | 'signature' | 'stale'; detail: string };

export interface VerifyInput {
  method: string;
  path: string;
  body: Bytes;
  headers: HeaderSource;
  nowMs: number;
  windowMs?: number;
}

/** Signature first, then the clock: an unsigned request learns nothing about the relay's time. */
export async function verifyRelayRequest(secret: string, input: VerifyInput): Promise<VerifyResult> {
  const timestamp = header(input.headers, RELAY_HEADERS.timestamp);
  const requestId = header(input.headers, RELAY_HEADERS.requestId);
  const signature = header(input.headers, RELAY_HEADERS.signature);
  if (!timestamp || !requestId || !signature) {
    return { ok: false, reason: 'missing', detail: `send ${Object.values(RELAY_HEADERS).join(', ')}` };
  }
  if (!/^\d{1,12}$/.test(timestamp) || !REQUEST_ID.test(requestId) || !SIGNATURE.test(signature)) {
    return { ok: false, reason: 'malformed', detail: 'a signature header is malformed' };
  }
  const base = await requestBase(input.method, input.path, timestamp, requestId, input.body);
  if (!(await verifySignature(secret, base, signature))) {
    return { ok: false, reason: 'signature', detail: 'the signature does not match (check RELAY_SECRET on both sides)' };
  }
  const timestampMs = Number(timestamp) * 1000;
  const skew = timestampMs - input.nowMs;
  if (Math.abs(skew) > (input.windowMs ?? RELAY_WINDOW_MS)) {
    return {
      ok: false,
      reason: 'stale',
      detail: `the timestamp is ${Math.round(Math.abs(skew) / 1000)} s ${skew < 0 ? 'behind' : 'ahead of'} the relay's clock (allowed: ±${Math.round((input.windowMs ?? RELAY_WINDOW_MS) / 1000)} s)`,
    };
  }
  return { ok: true, requestId, timestampMs };
}

/** The relay's answer signature, bound to the request id it answers. */
export async function signRelayResponse(
  secret: string,
  input: { status: number; requestId: string; body: Bytes; nowMs?: number },
): Promise<Record<string, string>> {
  const timestamp = String(Math.floor((input.nowMs ?? Date.now()) / 1000));
  const signature = await sign(secret, await responseBase(input.status, input.requestId, timestamp, input.body));
  return { [RELAY_HEADERS.timestamp]: timestamp, [RELAY_HEADERS.requestId]: input.requestId, [RELAY_HEADERS.signature]: signature };
}

export async function verifyRelayResponse(
  secret: string,
  input: { status: number; requestId: string; body: Bytes; headers: HeaderSource },
): Promise<boolean> {
  const timestamp = header(input.headers, RELAY_HEADERS.timestamp);
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) return false;
  if (header(input.headers, RELAY_HEADERS.requestId) !== input.requestId) return false;
  const base = await responseBase(input.status, input.requestId, timestamp, input.body);
  return verifySignature(secret, base, header(input.headers, RELAY_HEADERS.signature));
}

export interface RelayTransportOptions {
  /** for the whole exchange; above the relay's own AM.PDP reply timeout (30 s). Default 40 s. */
  timeoutMs?: number;
  clock?: { now(): number };
}

export function problemOf(text: string): { detail: string; code: string | null; retryAfter?: number } {
  try {
    const p = JSON.parse(text) as { detail?: unknown; code?: unknown };
    if (typeof p.detail === 'string') {
      const code = typeof p.code === 'string' ? p.code : null;
      return { detail: code ? `${code}: ${p.detail}` : p.detail, code };
    }
  } catch {
    // not a problem document (e.g. a proxy's HTML error page)
  }
  return { detail: text.slice(0, 200).replace(/\s+/g, ' ').trim() || '(empty body)', code: null };
}

/** Errors of fetch that happen before a byte of the request left (Node's undici names them in `cause`). */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** Codes the relay answers (signed) only before it has sent anything to amavisd. */
const RELAY_NOT_SENT = new Set([
  'upstream_unreachable',
  'amavisd_busy',
  'unauthorized',
  'conflict',
  'bad_request',
  'invalid_field',
  'payload_too_large',
  'not_found',
]);

/** Release through the on-host relay (`RELAY_URL` + `RELAY_SECRET`): what a Worker uses. */
export function relayTransport(
  url: string,
  secret: string,
  fetchFn: typeof fetch = (input, init) => fetch(input, init),
  opts: RelayTransportOptions = {},
): ReleaseTransport {
  const endpoint = `${url.replace(/\/+$/, '')}${RELAY_RELEASE_PATH}`;
  const origin = new URL(endpoint).origin;
  const timeoutMs = opts.timeoutMs ?? 40_000;
  return {
    kind: 'relay',
    async release(req: ReleaseRequest, beforeSend?: () => Promise<void>): Promise<ReleaseReply> {
      // Checked here too, so a bad value is a 400 for the caller, not a round trip.
      const parsed = relayReleaseBody.safeParse(relayBodyOf(req));
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const field = issue?.path.join('.') ?? 'request';
        throw new AppError('bad_request', `${field}: ${issue?.message ?? 'invalid'}`, { field });
      }
      const body = JSON.stringify(parsed.data);
      const headers = await signRelayRequest(secret, { method: 'POST', path: RELAY_RELEASE_PATH, body, nowMs: opts.clock?.now() });
      const requestId = headers[RELAY_HEADERS.requestId]!;
      if (beforeSend) await beforeSend();
      // From here on, a failure may be after the relay has handed the request to amavisd.
      const unknown = (what: string) =>
        new AppError('release_outcome_unknown', `relay at ${origin}: ${what}, after the request was sent: amavisd may have acted on it`);
      let res: Response;
      let text: string;
      try {
        res = await fetchFn(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        text = await res.text();
      } catch (err) {
        const e = err as Error & { cause?: { code?: unknown } };
        const cause = typeof e.cause?.code === 'string' ? e.cause.code : '';
        if (NOT_SENT.has(cause)) throw new AppError('upstream_unreachable', `relay at ${origin} unreachable: ${cause}`);
        throw unknown(
          e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${timeoutMs} ms` : `the exchange failed (${e.message})`,
        );
      }
      if (res.status === 200) {
        if (!(await verifyRelayResponse(secret, { status: 200, requestId, body: text, headers: res.headers }))) {
          throw unknown('the answer is not signed for this request; not trusted');
        }
        let answer: RelayReleaseAnswer;
        try {
          answer = relayReleaseAnswer.parse(JSON.parse(text));
        } catch {
          throw unknown('the answer is not a release result');
        }
        // The verdict is recomputed from amavisd's own lines, not taken from the relay's flag.
        return toReleaseReply(answer.attributes, 'relay', req.secretId);
      }
      const problem = problemOf(text);
      const detail = `relay at ${origin} answered ${res.status}: ${problem.detail}`;
      const signed = await verifyRelayResponse(secret, { status: res.status, requestId, body: text, headers: res.headers });
      // Only the relay itself can say that nothing reached amavisd; a proxy in front that refuses
      // (4xx) never passed the request on, but its 5xx may come after the relay received it.
      if (signed ? !RELAY_NOT_SENT.has(problem.code ?? '') : res.status >= 500) throw unknown(`answered ${res.status}: ${problem.detail}`);
      if (problem.code === 'amavisd_busy') {
        throw new AppError('amavisd_busy', detail, { retryAfter: Number(res.headers.get('retry-after')) || 5 });
      }
      if (res.status === 502 || res.status === 503 || res.status === 504) throw new AppError('upstream_unreachable', detail);
      if (res.status === 401) throw new AppError('release_failed', `${detail} (check RELAY_SECRET and both clocks)`);
      throw new AppError('release_failed', detail);
    },
  };
}
