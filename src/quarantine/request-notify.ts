import { sql } from 'kysely';
import { bind, text } from '../amavis/schema.ts';
import { HOME_GATEWAY, maySeeGateway } from '../auth/identity.ts';
import { identityOfKey } from '../auth/keys.ts';
import type { Deps } from '../deps.ts';
import type { QeReleaseRequestsTable } from '../db/types.ts';
import { DEFAULT_LINK_TTL, linkUrl, signLinkSync } from '../digest/links.ts';
import { renderHtml, renderText } from '../digest/render.ts';
import { mailerFromConfig } from '../mail/from-config.ts';
import type { OutgoingEmail } from '../mail/mailer.ts';
import { messageIdHost, randomMessageId } from '../mail/message-id.ts';
import { policyTypeOf } from './release-policy.ts';

/**
 * The deciders hear of a new release request: every live admin key and every live domain admin key
 * of the request's domain that has a `notify_email` (README: Who may release what) gets one email
 * with signed Approve and Deny links. Each link is made for that key (the link's key id): it acts
 * as that key, only while the key is live, and only within its scope; GET shows a confirmation page
 * and changes nothing, POST acts (src/digest/request-actions.ts). Best effort, after the request is
 * committed: without DIGEST_FROM, a mailer, PUBLIC_URL or LINK_SECRET nothing is sent.
 */
const HTML = `<!DOCTYPE html>
<html lang="en"><body style="font-family:system-ui,sans-serif;">
<p><strong>{{recipient}}</strong> asks for a quarantined message to be released.</p>
<p>Subject: {{subject}}<br>From: {{sender}}<br>Type: {{type}}</p>
{{#note}}<p>Their note: {{note}}</p>{{/note}}
<p><a href="{{approve_url}}">Approve (release it to {{recipient}})</a></p>
<p><a href="{{deny_url}}">Deny (with a reason they are told)</a></p>
<p style="color:#57606a;font-size:13px">Each link asks you to confirm before anything happens.{{#requests_url}} Or decide on the <a href="{{requests_url}}">Release requests</a> page.{{/requests_url}}</p>
</body></html>`;
const TEXT = `{{recipient}} asks for a quarantined message to be released.

Subject: {{subject}}
From:    {{sender}}
Type:    {{type}}
{{#note}}Note:    {{note}}
{{/note}}
Approve (release it to {{recipient}}):
{{approve_url}}

Deny (with a reason they are told):
{{deny_url}}

Each link asks you to confirm before anything happens.
{{#requests_url}}Or decide on the Release requests page: {{requests_url}}
{{/requests_url}}`;

interface Decider {
  keyId: string;
  to: string;
}

/**
 * Live keys with a notify_email that may decide a request of this domain in this gateway ('' the
 * deployment's own): the deployment's admins, that gateway's admins, its domain admins of the domain.
 */
export async function decidersOf(deps: Deps, domain: string, gateway: string = HOME_GATEWAY): Promise<Decider[]> {
  const now = Math.floor(deps.clock.now() / 1000);
  const rows = await deps.state
    .selectFrom('qe_api_keys')
    .select(['id', 'role', 'domains', 'mailbox', 'gateways', 'name', 'notify_email'])
    .where('notify_email', 'is not', null)
    // keyIsLive (src/auth/keys.ts) in SQL: not revoked, not past its expiry
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .where('role', 'in', ['admin', 'domain_admin'])
    .orderBy('id')
    .execute();
  return rows
    .filter((r) => {
      const who = identityOfKey(r);
      if (!who || !maySeeGateway(who, gateway)) return false;
      return who.role === 'admin' || (who.role === 'domain_admin' && who.domains.includes(domain));
    })
    .map((r) => ({ keyId: r.id, to: r.notify_email! }));
}

export async function notifyDeciders(deps: Deps, row: QeReleaseRequestsTable): Promise<{ delivery: Promise<void> }> {
  const none = { delivery: Promise.resolve() };
  const { DIGEST_FROM: from, PUBLIC_URL: publicUrl, LINK_SECRET: secret } = deps.config;
  const mailer = deps.mailer ?? mailerFromConfig(deps.config);
  if (!from || !mailer || !publicUrl || !secret) return none;
  let emails: OutgoingEmail[];
  try {
    const deciders = await decidersOf(deps, row.domain, row.gateway_id);
    if (deciders.length === 0) return none;
    const partitionTag = Number(row.partition_tag);
    const { rows } = await sql<{ subject: unknown; sender: unknown; content: unknown }>`
      SELECT m.subject, s.email AS sender, m.content FROM msgs m LEFT JOIN maddr s ON s.id = m.sid
      WHERE m.partition_tag = ${partitionTag} AND m.mail_id = ${bind(deps.variant, 'msgs.mail_id', row.mail_id)}`.execute(deps.db);
    const expires = Math.floor(deps.clock.now() / 1000) + DEFAULT_LINK_TTL;
    const link = (action: 'approve_request' | 'deny_request', keyId: string) =>
      linkUrl(
        publicUrl,
        signLinkSync(secret, {
          action,
          partitionTag,
          mailId: row.mail_id,
          recipient: row.recipient,
          expires,
          keyId,
          // a registered gateway's request: the link acts there (src/api/routes/action-links.ts enters it)
          ...(row.gateway_id ? { gateway: row.gateway_id } : {}),
        }),
      );
    // the sender wrote the subject, the owner the note: Mustache escapes them in the HTML; no header line carries them
    const base = {
      recipient: row.recipient,
      subject: text(rows[0]?.subject) || '(no subject)',
      sender: text(rows[0]?.sender) || '<>',
      type: policyTypeOf(text(rows[0]?.content) || '?'),
      note: row.note,
      // the release requests pages serve the deployment's own requests only: none for a registered gateway's request
      requests_url: row.gateway_id ? null : `${publicUrl.replace(/\/+$/, '')}/ui/requests`,
    };
    emails = deciders.map((d) => {
      const view = { ...base, approve_url: link('approve_request', d.keyId), deny_url: link('deny_request', d.keyId) };
      return {
        from,
        to: d.to,
        subject: 'A release request is waiting for your decision',
        html: renderHtml(HTML, view),
        text: renderText(TEXT, view),
        headers: { 'Auto-Submitted': 'auto-generated' },
        idempotencyKey: `release-request/${row.id}/notify/${d.keyId}`,
        messageId: randomMessageId(messageIdHost(publicUrl)),
      };
    });
  } catch (err) {
    deps.log.error('release request not mailed to its deciders', { request_id: row.id, message: (err as Error)?.message });
    return none;
  }
  const delivery = (async () => {
    try {
      const outcomes = await mailer.send(emails);
      const sent = outcomes.filter((o) => o.ok).length;
      deps.log.info('release request mailed to its deciders', { request_id: row.id, sent, failed: outcomes.length - sent });
    } catch (err) {
      deps.log.error('release request not mailed to its deciders', { request_id: row.id, message: (err as Error)?.message });
    }
  })();
  return { delivery };
}
