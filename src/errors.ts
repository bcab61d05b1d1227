/**
 * The closed list of error codes. Every failure a client can see is one of these; anything else
 * becomes an opaque 500 in onError, with the details only in the log.
 */
export const ERROR_STATUS = {
  bad_request: 400,
  invalid_field: 400,
  invalid_cursor: 400,
  unauthorized: 401,
  forbidden: 403,
  release_not_allowed: 403,
  not_found: 404,
  conflict: 409,
  nothing_to_release: 409,
  nothing_to_delete: 409,
  confirmation_required: 409,
  idempotency_conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  not_implemented: 501,
  lookup_tables_missing: 501,
  learner_not_configured: 501,
  learner_failed: 502,
  release_failed: 502,
  upstream_unreachable: 502,
  release_outcome_unknown: 502,
  amavisd_busy: 503,
  learner_busy: 503,
  database_unavailable: 503,
  gateway_unavailable: 503,
  database_permission_denied: 503,
  misconfigured: 503,
  release_not_configured: 503,
  mail_not_configured: 503,
  digest_not_configured: 503,
  hook_not_configured: 503,
  too_many_requests: 429,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;
/** The statuses a problem can have: literal, so a route's answer is typed without casts. */
export type ErrorStatus = (typeof ERROR_STATUS)[ErrorCode];

const TITLES: Record<ErrorCode, string> = {
  bad_request: 'Bad request',
  invalid_field: 'Invalid field',
  invalid_cursor: 'Invalid cursor',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  release_not_allowed: 'Release not allowed for the mailbox owner',
  not_found: 'Not found',
  conflict: 'Conflict',
  nothing_to_release: 'Nothing to release',
  nothing_to_delete: 'Nothing to delete',
  confirmation_required: 'Confirmation required',
  idempotency_conflict: 'Idempotency key reused with a different request',
  payload_too_large: 'Payload too large',
  unsupported_media_type: 'Unsupported media type',
  not_implemented: 'Not implemented',
  lookup_tables_missing: "amavisd's lookup tables are missing",
  gateway_unavailable: "A mail gateway's database is not reachable",
  learner_not_configured: 'Reporting to the spam filter is not configured',
  learner_failed: 'The spam filter could not learn the message',
  release_failed: 'Release failed',
  upstream_unreachable: 'Upstream unreachable',
  release_outcome_unknown: 'Release outcome unknown',
  amavisd_busy: 'amavisd is busy',
  learner_busy: 'The spam filter is busy',
  database_unavailable: 'Database unavailable',
  database_permission_denied: 'Database permission denied',
  misconfigured: 'The server is misconfigured',
  release_not_configured: 'Release is not configured',
  mail_not_configured: 'Sending mail is not configured',
  digest_not_configured: 'Digests are not configured',
  hook_not_configured: 'Inbound webhook is not configured',
  too_many_requests: 'Too many requests',
  internal: 'Internal server error',
};

export class AppError extends Error {
  readonly status: ErrorStatus;
  constructor(
    readonly code: ErrorCode,
    detail?: string,
    readonly extra: { field?: string; retryAfter?: number; [k: string]: unknown } = {},
  ) {
    super(detail ?? TITLES[code]);
    this.name = 'AppError';
    this.status = ERROR_STATUS[code];
  }
  get title(): string {
    return TITLES[this.code];
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  request_id: string;
  field?: string;
  [k: string]: unknown;
}

export function toProblem(err: AppError, requestId: string): Problem {
  const { retryAfter: _r, ...rest } = err.extra;
  return {
    type: `https://quarantine-edge.dev/problems/${err.code.replace(/_/g, '-')}`,
    title: err.title,
    status: err.status,
    detail: err.message,
    code: err.code,
    request_id: requestId,
    ...rest,
  };
}

export function internalProblem(requestId: string): Problem {
  return {
    type: 'https://quarantine-edge.dev/problems/internal',
    title: TITLES.internal,
    status: 500,
    detail: 'An unexpected error occurred. Quote the request_id when reporting it.',
    code: 'internal',
    request_id: requestId,
  };
}
