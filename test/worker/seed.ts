/**
 * Node side of the Worker suite: the data the tests in workerd read. Written the way amavisd writes
 * it (src/demo/writer.ts), plus two API keys made by the product's own createKey. Everything the
 * tests assert on (ids, counts, keys) is handed to them through vitest's provide/inject.
 */
import { mailIdOfSecret, randomSecretId } from '../../src/amavis/mail-id.ts';
import { detectSchema, type VariantName } from '../../src/amavis/schema.ts';
import { createKey } from '../../src/auth/keys.ts';
import { parseConfig } from '../../src/config.ts';
import { consoleLogger, systemClock, type Deps } from '../../src/deps.ts';
import { writeMessages, type AmavisMessage } from '../../src/demo/writer.ts';
import { createVariantDatabase, openVariant, runSuffix } from '../support/databases.ts';

/** What one database of the suite holds, as the tests see it. */
export interface WorkerSeed {
  variant: VariantName;
  url: string;
  adminKey: string;
  /** a domain_admin key for example.com only */
  domainAdminKey: string;
  ids: {
    /** spam, alice@example.com, multipart/alternative (text + html) */
    spam: string;
    /** virus, bob@example.com, multipart/mixed with one attachment (eicar.com) */
    virus: string;
    /** banned, partition 1, carol@example.com and dave@example.net */
    banned: string;
    /** spam for erin@example.net only: outside the domain admin's scope */
    otherDomain: string;
    /** released already (rs = 'R'): listed only with status=released|all */
    released: string;
    /** content NULL (amavisd still working on it): never listed */
    inFlight: string;
    /** quar_type '' (logged, not quarantined): never listed */
    logOnly: string;
  };
}

/** The suite's databases carry this suffix, so the integration suite may run at the same time. */
export const SUFFIX = runSuffix('wk');
export const NOW = 1_767_225_600; // 2026-01-01T00:00:00Z

export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

const alternative = (subject: string, to: string) =>
  `From: "Deals" <promo@deals.example>\nTo: ${to}\nSubject: ${subject}\nDate: Wed, 31 Dec 2025 23:59:50 +0000\n` +
  `Message-ID: <spam-1@deals.example>\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="alt"\n\n` +
  `--alt\nContent-Type: text/plain; charset=utf-8\n\nHello Alice, plain part.\n\n` +
  `--alt\nContent-Type: text/html; charset=utf-8\n\n<p>Hello <b>Alice</b>, html part.</p>\n--alt--\n`;

const withAttachment = (to: string) =>
  `From: <billing@invoices.example>\nTo: ${to}\nSubject: Invoice attached\nMessage-ID: <virus-1@invoices.example>\n` +
  `MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="mix"\n\n` +
  `--mix\nContent-Type: text/plain; charset=utf-8\n\nSee the attachment.\n\n` +
  `--mix\nContent-Type: application/octet-stream; name="eicar.com"\nContent-Disposition: attachment; filename="eicar.com"\n` +
  `Content-Transfer-Encoding: base64\n\n${btoa(EICAR)}\n--mix--\n`;

function messages(): AmavisMessage[] {
  return [
    {
      timeNum: NOW - 10,
      content: 'S',
      sender: 'promo@deals.example',
      spamLevel: 12.5,
      subject: 'Congratulations, you won',
      recipients: [{ address: 'alice@example.com' }],
      raw: alternative('Congratulations, you won', 'alice@example.com'),
    },
    {
      timeNum: NOW - 20,
      content: 'V',
      sender: 'billing@invoices.example',
      spamLevel: 0,
      subject: 'Invoice attached',
      recipients: [{ address: 'bob@example.com' }],
      raw: withAttachment('bob@example.com'),
    },
    {
      partitionTag: 1,
      timeNum: NOW - 30,
      content: 'B',
      sender: 'hr@partner.example',
      spamLevel: 1.5,
      subject: 'Payroll update',
      recipients: [{ address: 'carol@example.com' }, { address: 'dave@example.net' }],
    },
    {
      timeNum: NOW - 40,
      content: 'S',
      sender: 'promo@deals.example',
      spamLevel: 20,
      subject: 'Other domain spam',
      recipients: [{ address: 'erin@example.net' }],
    },
    {
      timeNum: NOW - 50,
      content: 'S',
      sender: 'promo@deals.example',
      spamLevel: 9,
      subject: 'Released earlier',
      recipients: [{ address: 'alice@example.com', rs: 'R' }],
    },
    {
      timeNum: NOW - 5,
      content: null,
      sender: 'promo@deals.example',
      spamLevel: null,
      subject: 'Still being scanned',
      recipients: [{ address: 'alice@example.com' }],
    },
    {
      timeNum: NOW - 15,
      content: 'C',
      quarType: '',
      sender: 'friend@partner.example',
      spamLevel: 0,
      subject: 'Clean, only logged',
      recipients: [{ address: 'alice@example.com', ds: 'P' }],
    },
  ];
}

export async function seedWorkerDatabase(variant: VariantName): Promise<WorkerSeed> {
  const url = await createVariantDatabase(variant, { suffix: SUFFIX });
  const handle = await openVariant(variant, 1, { suffix: SUFFIX });
  try {
    const schema = await detectSchema(handle.db, handle.dialect);
    // writeMessages groups by partition, so its answer is not in input order: ids are fixed up front.
    const input = messages().map((m) => ({ ...m, secretId: randomSecretId() }));
    await writeMessages(handle.db, schema, input);
    const id = (i: number) => `${input[i]!.partitionTag ?? 0}.${mailIdOfSecret(input[i]!.secretId)}`;
    const deps: Deps = {
      db: handle.db,
      state: handle.db,
      stateDialect: handle.dialect,
      stateApart: false,
      variant: schema,
      gateway: '',
      config: parseConfig({}),
      clock: systemClock,
      log: consoleLogger,
      release: null,
    };
    const setup = { role: 'admin', actor: 'worker-test-setup', keyId: null } as const;
    const admin = await createKey(deps, setup, { name: 'worker admin', role: 'admin' });
    const domainAdmin = await createKey(deps, setup, { name: 'worker example.com', role: 'domain_admin', domains: ['example.com'] });
    return {
      variant,
      url,
      adminKey: admin.key,
      domainAdminKey: domainAdmin.key,
      ids: { spam: id(0), virus: id(1), banned: id(2), otherDomain: id(3), released: id(4), inFlight: id(5), logOnly: id(6) },
    };
  } finally {
    await handle.close();
  }
}
