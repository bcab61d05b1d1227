import { sql } from 'kysely';
import { bind, text } from '../amavis/schema.ts';
import type { Deps } from '../deps.ts';
import { renderHtml, renderText } from '../digest/render.ts';
import { mailerFromConfig } from '../mail/from-config.ts';
import type { OutgoingEmail } from '../mail/mailer.ts';
import { messageIdHost, randomMessageId } from '../mail/message-id.ts';

/**
 * The owner hears how their release request was decided: one email through the configured mailer
 * (DIGEST_FROM, Resend or SMTP), after the decision is committed. Best effort: without a mailer or
 * DIGEST_FROM nothing is sent, and a failed send is logged, never the decision's failure.
 */
const HTML = `<!DOCTYPE html>
<html lang="en"><body style="font-family:system-ui,sans-serif;">
<p>Your request to release this message was <strong>{{decision}}</strong>.</p>
<p>Subject: {{subject}}<br>From: {{sender}}</p>
{{#reason}}<p>Reason: {{reason}}</p>{{/reason}}
{{#approved}}<p>It has been delivered to your mailbox.</p>{{/approved}}
</body></html>`;
const TEXT = `Your request to release this message was {{decision}}.

Subject: {{subject}}
From:    {{sender}}
{{#reason}}Reason:  {{reason}}
{{/reason}}{{#approved}}
It has been delivered to your mailbox.
{{/approved}}`;

export interface Decision {
  id: string;
  partitionTag: number;
  mailId: string;
  recipient: string;
  decision: 'approved' | 'denied';
  reason: string | null;
}

/**
 * Reads what the email says within the request (the request's database connection is not used
 * after it), then starts the send: `delivery` never rejects; on Workers hand it to waitUntil.
 */
export async function notifyDecision(deps: Deps, d: Decision): Promise<{ delivery: Promise<void> }> {
  const from = deps.config.DIGEST_FROM;
  const mailer = deps.mailer ?? mailerFromConfig(deps.config);
  if (!from || !mailer) return { delivery: Promise.resolve() };
  let email: OutgoingEmail;
  try {
    const { rows } = await sql<{ subject: unknown; sender: unknown }>`
      SELECT m.subject, s.email AS sender FROM msgs m LEFT JOIN maddr s ON s.id = m.sid
      WHERE m.partition_tag = ${d.partitionTag} AND m.mail_id = ${bind(deps.variant, 'msgs.mail_id', d.mailId)}`.execute(deps.db);
    // the sender wrote the subject: Mustache escapes it in the HTML; no header line carries it
    const view = {
      decision: d.decision,
      approved: d.decision === 'approved',
      reason: d.reason,
      subject: text(rows[0]?.subject) || '(no subject)',
      sender: text(rows[0]?.sender) || '<>',
    };
    email = {
      from,
      to: d.recipient,
      subject: d.decision === 'approved' ? 'Your release request was approved' : 'Your release request was denied',
      html: renderHtml(HTML, view),
      text: renderText(TEXT, view),
      headers: { 'Auto-Submitted': 'auto-generated' },
      idempotencyKey: `release-request/${d.id}/${d.decision}`,
      ...(deps.config.PUBLIC_URL ? { messageId: randomMessageId(messageIdHost(deps.config.PUBLIC_URL)) } : {}),
    };
  } catch (err) {
    deps.log.error('release request decision not mailed', { request_id: d.id, message: (err as Error)?.message });
    return { delivery: Promise.resolve() };
  }
  const delivery = (async () => {
    try {
      const [o] = await mailer.send([email]);
      if (o?.ok) deps.log.info('release request decision mailed', { request_id: d.id, provider: mailer.provider });
      else deps.log.warn('release request decision not mailed', { request_id: d.id, error: o?.error ?? 'no outcome' });
    } catch (err) {
      deps.log.error('release request decision not mailed', { request_id: d.id, message: (err as Error)?.message });
    }
  })();
  return { delivery };
}
