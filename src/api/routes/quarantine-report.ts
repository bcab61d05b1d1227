import { createRoute, z } from '@hono/zod-openapi';
import { LEARN_KINDS } from '../../learn/learner.ts';
import { reportMessage } from '../../quarantine/report.ts';
import { newRouter } from '../env.ts';
import { ItemId, mailKey, problems } from '../schemas.ts';

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } });

export const ReportAnswer = z
  .object({
    id: z.string(),
    kind: z.enum(LEARN_KINDS),
    learned: z.boolean().openapi({ description: 'false: the spam filter had learned this message as this kind before (it counts once)' }),
    learner_output: z.string(),
  })
  .openapi('ReportResult');

/** POST /v1/quarantine/{id}/report: teach SpamAssassin's Bayes filter (src/quarantine/report.ts). */
export function quarantineReportRoutes() {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'post',
      path: '/{id}/report',
      tags: ['quarantine'],
      summary: 'Report a message to the spam filter as spam or not spam (ham); it learns from it once',
      request: {
        params: z.object({ id: ItemId }),
        body: { required: true, ...json(z.object({ kind: z.enum(LEARN_KINDS) }).strict()) },
      },
      responses: {
        200: { description: "The learner's answer", ...json(ReportAnswer) },
        // learner_not_configured: no SA_LEARN_COMMAND here nor on the relay; learner_failed: it ran and failed;
        // learner_busy: other reports hold the learner (one at a time) longer than a report waits
        ...problems(
          'payload_too_large',
          'unsupported_media_type',
          'learner_not_configured',
          'learner_failed',
          'learner_busy',
          'upstream_unreachable',
        ),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { kind } = c.req.valid('json');
      return c.json(await reportMessage(c.get('deps'), c.get('identity'), mailKey(id, c.get('deps').gateway), kind), 200);
    },
  );
  return r;
}
