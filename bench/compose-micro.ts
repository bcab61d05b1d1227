/**
 * Composing one digest of 20 listed messages, the shape of a digest at 1M messages over 50,000
 * mailboxes, and writing it into a Resend batch body: CPU per digest in one process, no database.
 *   npx tsx bench/compose-micro.ts [digests=3000] [rounds=5]
 */
import { composeDigest, type ComposeContext } from '../src/digest/compose.ts';
import { parseConfig } from '../src/config.ts';
import { templatesWith } from '../src/digest/render.ts';
import { BatchBodies } from '../src/mail/batch-body.ts';
import type { RecipientDigest } from '../src/digest/plan.ts';

const N = Number(process.argv[2] ?? 3000);
const ROUNDS = Number(process.argv[3] ?? 5);
const config = parseConfig({
  PUBLIC_URL: 'https://quarantine.example.test',
  LINK_SECRET: 'x'.repeat(40),
  DIGEST_FROM: 'Quarantine <quarantine@example.test>',
  DATABASE_URL: 'mysql://u:p@127.0.0.1/db',
});
const ctx: ComposeContext = { config, templates: templatesWith(undefined), now: 1_780_000_000 };
const codes = ['S', 'S', 'S', 'V', 'B', 'S', 'M', 'S'];
function digestOf(i: number): RecipientDigest {
  const messages = Array.from({ length: 20 }, (_, j) => ({
    partitionTag: 48,
    mailId: `m${String(i).padStart(6, '0')}${String(j).padStart(5, '0')}`,
    timeNum: 1_779_990_000 - j * 600,
    contentCode: codes[j % codes.length]!,
    subject: `Rechnung ${i}-${j} – Zahlung überfällig ✓`,
    sender: `billing${j}@sender${i % 997}.example.net`,
    score: j % 3 ? 12.5 + j : null,
    reason: j % 8 === 3 ? 'INFECTED: Eicar-Signature' : '',
  }));
  return {
    recipient: `user${i}@domain${i % 200}.example.test`,
    total: 23,
    messages,
    timeZone: i % 2 ? 'Europe/Berlin' : null,
    language: i % 5 ? null : 'de',
    from: null,
    to: { time: messages[0]!.timeNum, mailId: messages[0]!.mailId },
  };
}
const ds = Array.from({ length: N }, (_, i) => digestOf(i));
const bodies = new BatchBodies();
let bytes = 0;
for (let r = 0; r < ROUNDS; r++) {
  const t0 = process.cpuUsage();
  const w0 = performance.now();
  bytes = 0;
  let bodyMs = 0;
  for (let b = 0; b < N; b += 100) {
    const emails = [];
    for (const d of ds.slice(b, b + 100)) emails.push(await composeDigest(ctx, d, `k/${d.recipient}`));
    const b0 = performance.now();
    const body = bodies.take(emails);
    bodyMs += performance.now() - b0;
    bytes += body.bytes.length;
    body.give();
  }
  const c = process.cpuUsage(t0);
  process.stdout.write(
    `round ${r}: ${((c.user + c.system) / 1000 / N).toFixed(3)} ms CPU a digest (of it the batch body ${(bodyMs / N).toFixed(3)} ms wall), ${((performance.now() - w0) / N).toFixed(3)} ms wall, ${(bytes / N / 1024).toFixed(1)} KiB a digest\n`,
  );
}
