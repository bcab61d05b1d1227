import { createRoute, z } from '@hono/zod-openapi';
import { AppError } from '../../errors.ts';
import { runBulk } from '../../quarantine/bulk.ts';
import { deleteMessage } from '../../quarantine/delete.ts';
import { releaseMessage, type ReleaseResult } from '../../quarantine/release.ts';
import { reportMessage } from '../../quarantine/report.ts';
import { OWNER_ACTIONS, POLICY_TYPES } from '../../quarantine/release-policy.ts';
import { releaseToOverride } from '../../quarantine/release-override.ts';
import { releaseHttpAnswer } from '../../quarantine/release-answer.ts';
import { markReleased } from '../../quarantine/resolve.ts';
import type { Identity } from '../../auth/identity.ts';
import type { Deps } from '../../deps.ts';
import { newRouter } from '../env.ts';
import { idempotent } from '../idempotency.ts';
import { Address, bodyProblemResponses, ItemId, mailKey, problems, ProblemFields } from '../schemas.ts';

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } });
const params = z.object({ id: ItemId });

const Outcome = z.object({ recipient: z.string(), released: z.boolean(), reply: z.string().nullable() });
/** With report_ham: the spam filter's answer, or why it could not learn (the release stands either way). */
const ReleaseReport = z.union([
  z.object({ kind: z.literal('ham'), learned: z.boolean(), learner_output: z.string() }),
  z.object({ error: z.object({ code: z.string(), detail: z.string() }) }),
]);
export const ReleaseAnswer = z
  .object({
    id: z.string(),
    status: z.enum(['released', 'partial', 'failed']),
    results: z.array(Outcome),
    via: z.string(),
    report: ReleaseReport.optional(),
  })
  .openapi('ReleaseResult');
const ReleaseBody = z
  .object({
    recipients: z.array(Address).min(1).max(100).optional(),
    allow_sender: z.boolean().optional(),
    force: z
      .boolean()
      .optional()
      .describe("admins, with recipients: release copies stuck in 'releasing' (outcome unknown) again; may deliver twice"),
    confirm_dangerous: z
      .boolean()
      .optional()
      .describe('admins and domain admins: required (true) to release virus or banned mail, else 409 confirmation_required'),
    report_ham: z
      .boolean()
      .optional()
      .describe('once released, also report the message to the spam filter as not spam (its answer in `report`)'),
    recipients_override: z
      .array(Address)
      .min(1)
      .max(20)
      .optional()
      .describe(
        "admins: deliver a copy to these addresses instead of the message's recipients (AM.PDP's recipient override); the recipients' copies stay pending; audited as release_override",
      ),
  })
  .strict();

/** A release that delivered nothing: the problem, with amavisd's reply per recipient. */
export const ReleaseFailed = ProblemFields.extend({
  code: z.enum(['release_failed']),
  id: z.string(),
  results: z.array(Outcome),
  via: z.string(),
}).openapi('ReleaseFailed');

const releaseProblems = problems(
  'nothing_to_release',
  'release_not_allowed',
  'forbidden',
  'confirmation_required',
  'idempotency_conflict',
  'conflict',
  'release_failed',
  'upstream_unreachable',
  'release_outcome_unknown',
  'release_not_configured',
  'amavisd_busy',
  'lookup_tables_missing',
  'payload_too_large',
  'unsupported_media_type',
);
/** A mailbox owner's release the release policy does not allow: what they may do instead. */
export const ReleaseNotAllowed = ProblemFields.extend({
  code: z.enum(['release_not_allowed']),
  content_type: z.enum(POLICY_TYPES),
  allowed: z.enum(OWNER_ACTIONS).describe('what the policy lets the owner do: request (a release request), none'),
}).openapi('ReleaseNotAllowed');

const releaseResponses = {
  200: { description: 'Released to every recipient', ...json(ReleaseAnswer) },
  207: { description: 'Released to some recipients only: see results', ...json(ReleaseAnswer) },
  ...releaseProblems,
  403: {
    description: `${releaseProblems[403].description} (release_not_allowed: a mailbox owner, where the release policy says request or none; forbidden: recipients_override without an admin key)`,
    content: {
      'application/problem+json': { schema: z.union([ReleaseNotAllowed, ProblemFields.extend({ code: z.enum(['forbidden']) })]) },
    },
  },
  502: {
    description: `${releaseProblems[502].description} (release_failed: amavisd refused; the results are inside, nothing was delivered; release_outcome_unknown: the request went out but no answer came back, or it could not be recorded: the copies stay 'releasing')`,
    content: {
      'application/problem+json': {
        schema: z.union([ReleaseFailed, ProblemFields.extend({ code: z.enum(['upstream_unreachable', 'release_outcome_unknown']) })]),
      },
    },
  },
};

/** The HTTP answer for a release outcome; a release that delivered nothing never looks like success. */
export type ReleaseHttpAnswer =
  | { status: 200 | 207; body: z.infer<typeof ReleaseAnswer> }
  | { status: 502; body: z.infer<typeof ReleaseFailed> };

export function releaseAnswer(result: ReleaseResult, requestId: string): ReleaseHttpAnswer {
  return releaseHttpAnswer(result, requestId);
}

async function reportHam(deps: Deps, who: Identity, id: string): Promise<z.infer<typeof ReleaseReport>> {
  try {
    const r = await reportMessage(deps, who, mailKey(id, deps.gateway), 'ham');
    return { kind: 'ham', learned: r.learned, learner_output: r.learner_output };
  } catch (err) {
    if (err instanceof AppError) return { error: { code: err.code, detail: err.message } };
    throw err;
  }
}

export function quarantineActionRoutes() {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'post',
      path: '/{id}/release',
      tags: ['quarantine'],
      summary: 'Release a message through amavisd (AM.PDP) to its recipients in your scope',
      description:
        'Send an `Idempotency-Key` header: the same key and body within 24 h returns the first answer and does not release again.',
      request: { params, body: { ...json(ReleaseBody), required: false } },
      responses: releaseResponses,
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const body = (c.req.header('content-length') === '0' || !c.req.header('content-type') ? {} : c.req.valid('json')) ?? {};
      const deps = c.get('deps');
      const who = c.get('identity');
      if (body.recipients_override) {
        const clash = (['recipients', 'allow_sender', 'force', 'report_ham'] as const).find((f) => body[f] !== undefined);
        if (clash) throw new AppError('invalid_field', `${clash}: not with recipients_override`, { field: clash });
      }
      const answer = await idempotent<ReleaseHttpAnswer>(
        deps,
        who,
        c.req.header('idempotency-key'),
        { op: 'release', id, body },
        async (remember) => {
          let stored: ReleaseHttpAnswer | undefined;
          if (body.recipients_override) {
            const result = await releaseToOverride(
              deps,
              who,
              { key: mailKey(id, deps.gateway), recipients: body.recipients_override, confirmDangerous: body.confirm_dangerous },
              async (trx, res) => {
                stored = releaseAnswer(res, c.get('requestId'));
                if (remember) await remember(trx, stored);
              },
            );
            return stored ?? releaseAnswer(result, c.get('requestId'));
          }
          const result = await releaseMessage(
            deps,
            who,
            {
              key: mailKey(id, deps.gateway),
              recipients: body.recipients,
              allowSender: body.allow_sender,
              force: body.force,
              confirmDangerous: body.confirm_dangerous,
              ...(remember ? { answerKey: { keyHash: remember.keyHash, requestId: c.get('requestId') } } : {}),
            },
            async (trx, res) => {
              stored = releaseAnswer(res, c.get('requestId'));
              if (remember) await remember(trx, stored);
            },
          );
          return stored ?? releaseAnswer(result, c.get('requestId'));
        },
      );
      if (answer.replayed) c.header('idempotent-replayed', 'true');
      if (answer.status === 502) return c.json(answer.body, 502, { 'content-type': 'application/problem+json' });
      // "release and report as not spam": after the release is settled, never instead of it
      if (body.report_ham && !answer.replayed) return c.json({ ...answer.body, report: await reportHam(deps, who, id) }, answer.status);
      return c.json(answer.body, answer.status);
    },
  );

  r.openapi(
    createRoute({
      method: 'delete',
      path: '/{id}',
      tags: ['quarantine'],
      summary: "Delete your recipients' copies; the stored message goes when no recipient is left pending",
      request: {
        params,
        query: z
          .object({
            recipients: z.string().max(10000).optional().openapi({ description: 'comma list of recipient addresses' }),
            block_sender: z.enum(['true', 'false']).optional(),
          })
          .strict(),
      },
      responses: {
        200: { description: 'Deleted', ...json(z.object({ id: z.string(), deleted: z.array(z.string()), content_removed: z.boolean() })) },
        // nothing_to_delete: every recipient in your scope (or every one named) was already deleted,
        // released or is releasing; as a repeated release answers nothing_to_release
        ...problems('nothing_to_delete', 'lookup_tables_missing'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const q = c.req.valid('query');
      const recipients = q.recipients
        ?.split(',')
        .map((a) => a.trim())
        .filter(Boolean)
        .map((a) => {
          const parsed = Address.safeParse(a);
          if (!parsed.success)
            throw new AppError('invalid_field', `recipients: ${JSON.stringify(a)} is not an address`, { field: 'recipients' });
          return parsed.data;
        });
      const result = await deleteMessage(c.get('deps'), c.get('identity'), {
        key: mailKey(id, c.get('deps').gateway),
        recipients,
        blockSender: q.block_sender === 'true',
      });
      return c.json(result, 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/{id}/mark-released',
      tags: ['quarantine'],
      summary: "Admins: record copies stuck in 'releasing' (outcome unknown) as released, without delivering",
      description:
        'For when the mail log or the mailbox shows that amavisd did deliver. The other way out is a release with `force` (which delivers again).',
      request: {
        params,
        body: {
          required: true,
          ...json(z.object({ recipients: z.array(Address).min(1).max(100), note: z.string().max(500).optional() }).strict()),
        },
      },
      responses: {
        200: { description: 'Marked released', ...json(z.object({ id: z.string(), marked: z.array(z.string()) })) },
        // forbidden: not an admin; conflict: a recipient named is not 'releasing', or changed meanwhile
        ...problems('forbidden', 'conflict', 'payload_too_large', 'unsupported_media_type'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const b = c.req.valid('json');
      return c.json(
        await markReleased(c.get('deps'), c.get('identity'), {
          key: mailKey(id, c.get('deps').gateway),
          recipients: b.recipients,
          note: b.note,
        }),
        200,
      );
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/bulk',
      tags: ['quarantine'],
      summary: 'Release or delete up to 500 messages; one result per id',
      request: {
        body: {
          required: true,
          ...json(
            z
              .object({
                action: z.enum(['release', 'delete']),
                // Each id is checked on its own: a malformed one gets its own 400 result.
                ids: z.array(z.string().max(100)).min(1).max(500),
                allow_sender: z.boolean().optional(),
                block_sender: z.boolean().optional(),
                confirm_dangerous: z
                  .boolean()
                  .optional()
                  .describe(
                    'release: admins and domain admins mean to release virus or banned mail too (else those ids answer 409 confirmation_required)',
                  ),
              })
              .strict(),
          ),
        },
      },
      responses: {
        200: {
          description:
            'One result per distinct id, in order, each with its own HTTP-like status and, on failure, its problem code ' +
            '(a malformed id: 400 invalid_field; a database failure for one id: 503/500; an unknown release outcome: 502 release_outcome_unknown)',
          ...json(
            z.object({
              results: z.array(
                z.object({
                  id: z.string(),
                  status: z.number().int(),
                  result: z.any().optional(),
                  error: z.object({ code: z.string(), detail: z.string() }).passthrough().optional(),
                }),
              ),
            }),
          ),
        },
        ...bodyProblemResponses,
      },
    }),
    async (c) => {
      const b = c.req.valid('json');
      if (b.action === 'release' && b.block_sender !== undefined)
        throw new AppError('invalid_field', 'block_sender is for delete', { field: 'block_sender' });
      if (b.action === 'delete' && b.confirm_dangerous !== undefined)
        throw new AppError('invalid_field', 'confirm_dangerous is for release', { field: 'confirm_dangerous' });
      if (b.action === 'delete' && b.allow_sender !== undefined)
        throw new AppError('invalid_field', 'allow_sender is for release', { field: 'allow_sender' });
      const results = await runBulk(c.get('deps'), c.get('identity'), {
        action: b.action,
        ids: b.ids,
        allowSender: b.allow_sender,
        blockSender: b.block_sender,
        confirmDangerous: b.confirm_dangerous,
      });
      return c.json({ results }, 200);
    },
  );
  return r;
}
