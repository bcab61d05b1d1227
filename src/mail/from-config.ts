import type { Config } from '../config.ts';
import type { Mailer } from './mailer.ts';
import { resendMailer } from './resend.ts';

/**
 * The mailer every runtime can build from the environment: Resend (fetch only). SMTP needs TCP and
 * nodemailer, so Node builds it in src/mail/smtp.node.ts and passes it in Deps.
 */
export function mailerFromConfig(config: Config): Mailer | null {
  if (config.RESEND_API_KEY)
    return resendMailer({ apiKey: config.RESEND_API_KEY, baseUrl: config.RESEND_BASE_URL, rateLimit: config.RESEND_RATE_LIMIT });
  return null;
}
