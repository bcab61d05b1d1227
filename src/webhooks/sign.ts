import { Webhook } from 'standardwebhooks';

/**
 * Standard Webhooks signatures (the library is plain JavaScript over its own SHA-256, so the same
 * code signs on Node and in workerd): `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
 */
export function newSigningSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

export function sign(secret: string, msgId: string, timestampSeconds: number, body: string): string {
  return new Webhook(secret).sign(msgId, new Date(timestampSeconds * 1000), body);
}

/** Constant-time check of one `v1,<sig>` (of several, space separated) against the expected one. */
export function signatureMatches(expected: string, header: string): boolean {
  const want = expected.slice(expected.indexOf(',') + 1);
  let ok = false;
  for (const part of header.split(' ')) {
    const [version, sig = ''] = part.split(',');
    if (version !== 'v1' || sig.length !== want.length) continue;
    let diff = 0;
    for (let i = 0; i < sig.length; i++) diff |= sig.charCodeAt(i) ^ want.charCodeAt(i);
    if (diff === 0) ok = true;
  }
  return ok;
}
