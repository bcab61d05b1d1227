/** One webhook POST's outcome: status null when no answer came; error null on 2xx. */
export interface Attempt {
  status: number | null;
  error: string | null;
  ms: number;
}

export interface PostOptions {
  /** the whole request, connect included */
  timeoutMs: number;
  /** WEBHOOK_ALLOW_PRIVATE: a transport that checks addresses skips the check */
  allowPrivate: boolean;
}

/**
 * How a delivery is sent: no redirects followed (a 3xx is a failure), a hard timeout, the body never
 * kept. Node injects post.node.ts (it checks the addresses a name resolves to); Workers use fetchPost.
 */
export type WebhookPost = (url: string, body: string, headers: Record<string, string>, opts: PostOptions) => Promise<Attempt>;

export const statusError = (status: number): string | null =>
  status >= 200 && status < 300 ? null : status >= 300 && status < 400 ? `redirect (HTTP ${status}) not followed` : `HTTP ${status}`;

/** Global fetch: on Workers, Cloudflare's fetch cannot reach private addresses. */
export const fetchPost: WebhookPost = async (url, body, headers, { timeoutMs }) => {
  const started = Date.now();
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await fetch(url, { method: 'POST', body, headers, redirect: 'manual', signal: abort.signal });
    await res.body?.cancel().catch(() => {});
    return { status: res.status, error: statusError(res.status), ms: Date.now() - started };
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    const error = abort.signal.aborted
      ? `no answer within ${timeoutMs} ms`
      : `request failed: ${(err as Error).message}${cause ? ` (${cause})` : ''}`.slice(0, 500);
    return { status: null, error, ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
};
