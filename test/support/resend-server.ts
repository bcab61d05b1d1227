/**
 * A local HTTP server that speaks the part of Resend's API the digest uses: POST /emails and
 * POST /emails/batch (<= 100, strict or permissive validation), Bearer auth, and Idempotency-Key
 * (the same key and body within 24 h answers the first response again and sends nothing; the same
 * key with another body is 409 invalid_idempotent_request). It can be told to fail, and to hold
 * requests (hold()): a client killed while its request is held meets the worst moment there is.
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

/** See ResendTwin.hold. */
export interface HoldOptions {
  /** let this many more POSTs through first (default 0) */
  after?: number;
  /**
   * true (default): each held request is processed at once (its emails recorded, its answer stored
   * under its Idempotency-Key) and only the HTTP answer is kept back: the service accepted the batch
   * and the client never heard so. false: the request is held before anything is looked at and is
   * processed when released (a late request; its answer then goes to whoever is still listening).
   */
  accept?: boolean;
}

export interface Hold {
  /** requests held so far (released ones included) */
  readonly count: number;
  /** resolves once `n` requests have been held */
  reached(n?: number): Promise<void>;
  /** hold no further requests; those held stay held */
  stop(): void;
  /** stop, and let every held request go on (answer it, or with accept: false process it) */
  release(): void;
}

export interface ResendTwin {
  url: string;
  /** every email accepted, in order */
  emails: SentEmail[];
  /** every request, with its status */
  requests: Array<{ path: string; status: number; idempotencyKey: string | null; count: number }>;
  /**
   * Resend's rate limit: at most `perSecond` POSTs in any second (null: none); beyond it 429
   * rate_limit_exceeded with retry-after and ratelimit-* headers, as Resend answers.
   */
  rateLimit(perSecond: number | null): void;
  /** the 429s the rate limit gave */
  readonly limited: number;
  /** answer the next `times` requests with `status` (e.g. 429, 500, 422) */
  failNext(status: number, times?: number): void;
  /** accept this many more emails, then answer every request with `status` until `healthy()` */
  failAfter(emails: number, status: number): void;
  /** refuse these addresses with a 422 (per email in permissive mode) */
  rejectAddresses: Set<string>;
  /**
   * Hold the POSTs to /emails and /emails/batch that arrive from now on (after `after` more):
   * see HoldOptions. Answers or processing resume on release(); reset() and close() release too.
   */
  hold(opts?: HoldOptions): Hold;
  /** resolves once no client has a connection open (e.g. after killing the client: all it sent has arrived) */
  disconnected(timeoutMs?: number): Promise<void>;
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
  let perSecond: number | null = null;
  let arrivals: number[] = [];
  let limited = 0;
  interface Holding {
    left: number;
    accept: boolean;
    take(go: () => void): void;
    release(): void;
  }
  let holding: Holding | null = null;
  const holds = new Set<Holding>();

  const server: Server = createServer(async (req, res) => {
    // hold(): decided as the request arrives, before its body is read, so a request that reached the
    // twin while holding is held even if the hold is stopped meanwhile. accept: its answer waits;
    // otherwise the request itself does.
    let held: Holding | null = null;
    if (
      holding &&
      req.method === 'POST' &&
      (req.url === '/emails' || req.url === '/emails/batch') &&
      API_KEY_PATTERN.test(req.headers.authorization ?? '')
    ) {
      if (holding.left > 0) holding.left--;
      else held = holding;
    }
    const body = await readBody(req).catch(() => null);
    if (body === null) return; // the client went away half way through its request
    const key = (req.headers['idempotency-key'] as string | undefined) ?? null;
    const holdAnswer = held?.accept === true;
    const send = (status: number, headers: Record<string, string>, answer: string) => {
      const write = () => {
        if (res.writableEnded || res.destroyed || req.socket.destroyed) return; // the client is gone
        res.writeHead(status, headers);
        res.end(answer);
      };
      if (holdAnswer) return held!.take(write);
      write();
    };
    const reply = (status: number, payload: unknown, count = 0) => {
      requests.push({ path: req.url ?? '', status, idempotencyKey: key, count });
      const answer = JSON.stringify(payload);
      if (key && status < 500 && status !== 429 && status !== 409) idem.set(key, { body, status, answer });
      send(status, { 'content-type': 'application/json', ...(status === 429 ? { 'retry-after': '0' } : {}) }, answer);
    };
    const error = (status: number, name: string, message: string) => reply(status, { statusCode: status, name, message });

    // Resend's "list emails": lets a test inside workerd see what was sent.
    if (req.method === 'GET' && req.url === '/emails') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ object: 'list', data: emails }));
    }
    if (req.method !== 'POST' || (req.url !== '/emails' && req.url !== '/emails/batch')) return error(404, 'not_found', 'no such route');
    if (!API_KEY_PATTERN.test(req.headers.authorization ?? '')) return error(401, 'missing_api_key', 'Missing API key');
    if (perSecond !== null) {
      const now = Date.now();
      arrivals = arrivals.filter((t) => now - t < 1000);
      if (arrivals.length >= perSecond) {
        limited++;
        const reset = Math.max(1, Math.ceil((arrivals[0]! + 1000 - now) / 1000));
        requests.push({ path: req.url, status: 429, idempotencyKey: key, count: 0 });
        return send(
          429,
          {
            'content-type': 'application/json',
            'retry-after': String(reset),
            'ratelimit-limit': String(perSecond),
            'ratelimit-remaining': '0',
            'ratelimit-reset': String(reset),
          },
          JSON.stringify({
            statusCode: 429,
            name: 'rate_limit_exceeded',
            message: 'Too many requests. You can only make 2 requests per second.',
          }),
        );
      }
      arrivals.push(now);
    }
    if (held && !held.accept) await new Promise<void>((go) => held!.take(go));
    if (key) {
      const prior = idem.get(key);
      if (prior && prior.body !== body)
        return error(409, 'invalid_idempotent_request', 'Same idempotency key used with a different request payload');
      if (prior) {
        requests.push({ path: req.url, status: prior.status, idempotencyKey: key, count: 0 });
        return send(prior.status, { 'content-type': 'application/json' }, prior.answer);
      }
    }
    if (failing && failing.times > 0) {
      failing.times--;
      return error(
        failing.status,
        failing.status === 429 ? 'rate_limit_exceeded' : failing.status >= 500 ? 'internal_server_error' : 'validation_error',
        'told to fail',
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return error(422, 'validation_error', 'body is not JSON');
    }
    const batch = req.url === '/emails/batch';
    const list = (batch ? parsed : [parsed]) as Array<Record<string, unknown>>;
    if (!Array.isArray(list) || list.length === 0 || list.length > 100)
      return error(422, 'validation_error', 'a batch holds 1 to 100 emails');
    if (budget && budget.left < list.length) return error(budget.status, 'internal_server_error', 'told to fail after N');
    const permissive = req.headers['x-batch-validation'] === 'permissive';
    const invalid = (e: Record<string, unknown>) => {
      const to = (Array.isArray(e.to) ? e.to : [e.to]) as string[];
      if (!e.from || !e.subject || to.length === 0) return 'from, to and subject are required';
      const bad = to.find((a) => rejectAddresses.has(a));
      return bad ? `Invalid \`to\` field: ${bad}` : null;
    };
    const errors = list
      .map((e, index) => ({ index, message: invalid(e) }))
      .filter((x): x is { index: number; message: string } => x.message !== null);
    if (errors.length && (!batch || !permissive)) return error(422, 'validation_error', errors[0]!.message);
    const data: Array<{ id: string }> = [];
    list.forEach((e, i) => {
      if (errors.some((x) => x.index === i)) return;
      const id = `twin-${++seq}`;
      data.push({ id });
      emails.push({
        id,
        from: String(e.from),
        to: (Array.isArray(e.to) ? e.to : [e.to]) as string[],
        subject: String(e.subject),
        html: e.html as string | undefined,
        text: e.text as string | undefined,
        headers: e.headers as Record<string, string> | undefined,
      });
    });
    if (budget) budget.left -= data.length;
    if (!batch) return reply(200, data[0], 1);
    return reply(200, permissive ? { data, errors } : { data }, data.length);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  /** reset() and close(): no more holding, every held request goes on */
  const releaseAll = () => {
    holding = null;
    for (const h of holds) h.release();
  };
  /** One hold() at a time: a new one replaces the last for new requests; the last's held ones stay held. */
  const hold = (opts: HoldOptions = {}): Hold => {
    let count = 0;
    let released = false;
    let parked: Array<() => void> = [];
    let waiters: Array<{ n: number; resolve(): void }> = [];
    const self: Holding = {
      left: opts.after ?? 0,
      accept: opts.accept ?? true,
      take(go) {
        count++;
        waiters = waiters.filter((w) => (count >= w.n ? (w.resolve(), false) : true));
        if (released) go();
        else parked.push(go);
      },
      release() {
        if (holding === self) holding = null;
        released = true;
        holds.delete(self);
        const go = parked;
        parked = [];
        for (const g of go) g();
      },
    };
    holding = self;
    holds.add(self);
    return {
      get count() {
        return count;
      },
      reached: (n = 1) => (count >= n ? Promise.resolve() : new Promise<void>((resolve) => void waiters.push({ n, resolve }))),
      stop: () => {
        if (holding === self) holding = null;
      },
      release: () => self.release(),
    };
  };
  /** resolves once no client connection is open (a killed client's requests have all arrived) */
  const disconnected = async (timeoutMs = 10_000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const n = await new Promise<number>((r) => server.getConnections((_e, c) => r(c ?? 0)));
      if (n === 0) return;
      if (Date.now() > until) throw new Error(`resend twin: ${n} connections still open after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return {
    url: `http://127.0.0.1:${port}`,
    emails,
    requests,
    rejectAddresses,
    rateLimit: (n) => {
      perSecond = n;
      arrivals = [];
    },
    get limited() {
      return limited;
    },
    failNext: (status, times = 1) => void (failing = { status, times }),
    failAfter: (n, status) => void (budget = { left: n, status }),
    hold,
    disconnected,
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
      perSecond = null;
      arrivals = [];
      limited = 0;
      releaseAll();
    },
    close: () =>
      new Promise<void>((r) => {
        releaseAll();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
