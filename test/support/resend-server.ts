/**
 * A local HTTP server that speaks the part of Resend's API the digest uses: POST /emails and
 * POST /emails/batch (<= 100, strict or permissive validation), Bearer auth, and Idempotency-Key
 * (the same key and body within 24 h answers the first response again and sends nothing; the same
 * key with another body is 409 invalid_idempotent_request). It can be told to fail.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SentEmail {
  id: string;
  from: string;
  to: string[];
  subject: string;
  html?: string;
  text?: string;
  headers?: Record<string, string>;
}

export interface ResendTwin {
  url: string;
  /** every email accepted, in order */
  emails: SentEmail[];
  /** every request, with its status */
  requests: Array<{ path: string; status: number; idempotencyKey: string | null; count: number }>;
  /** answer the next `times` requests with `status` (e.g. 429, 500, 422) */
  failNext(status: number, times?: number): void;
  /** accept this many more emails, then answer every request with `status` until `healthy()` */
  failAfter(emails: number, status: number): void;
  /** refuse these addresses with a 422 (per email in permissive mode) */
  rejectAddresses: Set<string>;
  healthy(): void;
  reset(): void;
  close(): Promise<void>;
}

const API_KEY_PATTERN = /^Bearer re_[A-Za-z0-9_]+$/;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startResendTwin(): Promise<ResendTwin> {
  const emails: SentEmail[] = [];
  const requests: ResendTwin['requests'] = [];
  const idem = new Map<string, { body: string; status: number; answer: string }>();
  let failing: { status: number; times: number } | null = null;
  let budget: { left: number; status: number } | null = null;
  const rejectAddresses = new Set<string>();
  let seq = 0;

  const server: Server = createServer(async (req, res) => {
    const body = await readBody(req);
    const key = (req.headers['idempotency-key'] as string | undefined) ?? null;
    const reply = (status: number, payload: unknown, count = 0) => {
      requests.push({ path: req.url ?? '', status, idempotencyKey: key, count });
      const answer = JSON.stringify(payload);
      if (key && status < 500 && status !== 429 && status !== 409) idem.set(key, { body, status, answer });
      res.writeHead(status, { 'content-type': 'application/json', ...(status === 429 ? { 'retry-after': '0' } : {}) });
      res.end(answer);
    };
    const error = (status: number, name: string, message: string) => reply(status, { statusCode: status, name, message });

    // Resend's "list emails": lets a test inside workerd see what was sent.
    if (req.method === 'GET' && req.url === '/emails') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ object: 'list', data: emails }));
    }
    if (req.method !== 'POST' || (req.url !== '/emails' && req.url !== '/emails/batch')) return error(404, 'not_found', 'no such route');
    if (!API_KEY_PATTERN.test(req.headers.authorization ?? '')) return error(401, 'missing_api_key', 'Missing API key');
    if (key) {
      const prior = idem.get(key);
      if (prior && prior.body !== body) return error(409, 'invalid_idempotent_request', 'Same idempotency key used with a different request payload');
      if (prior) {
        requests.push({ path: req.url, status: prior.status, idempotencyKey: key, count: 0 });
        res.writeHead(prior.status, { 'content-type': 'application/json' });
        return res.end(prior.answer);
      }
    }
    if (failing && failing.times > 0) {
      failing.times--;
      return error(failing.status, failing.status === 429 ? 'rate_limit_exceeded' : failing.status >= 500 ? 'internal_server_error' : 'validation_error', 'told to fail');
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return error(422, 'validation_error', 'body is not JSON');
    }
    const batch = req.url === '/emails/batch';
    const list = (batch ? parsed : [parsed]) as Array<Record<string, unknown>>;
    if (!Array.isArray(list) || list.length === 0 || list.length > 100) return error(422, 'validation_error', 'a batch holds 1 to 100 emails');
    if (budget && budget.left < list.length) return error(budget.status, 'internal_server_error', 'told to fail after N');
    const permissive = req.headers['x-batch-validation'] === 'permissive';
    const invalid = (e: Record<string, unknown>) => {
      const to = (Array.isArray(e.to) ? e.to : [e.to]) as string[];
      if (!e.from || !e.subject || to.length === 0) return 'from, to and subject are required';
      const bad = to.find((a) => rejectAddresses.has(a));
      return bad ? `Invalid \`to\` field: ${bad}` : null;
    };
    const errors = list.map((e, index) => ({ index, message: invalid(e) })).filter((x): x is { index: number; message: string } => x.message !== null);
    if (errors.length && (!batch || !permissive)) return error(422, 'validation_error', errors[0]!.message);
    const data: Array<{ id: string }> = [];
    list.forEach((e, i) => {
      if (errors.some((x) => x.index === i)) return;
      const id = `twin-${++seq}`;
      data.push({ id });
      emails.push({ id, from: String(e.from), to: (Array.isArray(e.to) ? e.to : [e.to]) as string[], subject: String(e.subject),
        html: e.html as string | undefined, text: e.text as string | undefined, headers: e.headers as Record<string, string> | undefined });
    });
    if (budget) budget.left -= data.length;
    if (!batch) return reply(200, data[0], 1);
    return reply(200, permissive ? { data, errors } : { data }, data.length);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    emails,
    requests,
    rejectAddresses,
    failNext: (status, times = 1) => void (failing = { status, times }),
    failAfter: (n, status) => void (budget = { left: n, status }),
    healthy: () => {
      failing = null;
      budget = null;
    },
    reset: () => {
      emails.length = 0;
      requests.length = 0;
      idem.clear();
      failing = null;
      budget = null;
      rejectAddresses.clear();
    },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
