/** The one-shot commands over amavisd's database: keys, release, delete, purge, notify. */
import { parseArgs } from 'node:util';
import { createKey, listKeys, revokeKey } from '../src/auth/keys.ts';
import { validateKeyInput } from '../src/auth/key-input.ts';
import { parseItemId } from '../src/amavis/mail-id.ts';
import { normalizeAddress } from '../src/amavis/address.ts';
import { AppError } from '../src/errors.ts';
import { releaseMessage } from '../src/quarantine/release.ts';
import { deleteMessage } from '../src/quarantine/delete.ts';
import { purge, purgeSummary } from '../src/retention/purge.ts';
import { runDigest, systemIdentity, type RunReport } from '../src/digest/run.ts';
import { summarize } from '../src/digest/job.ts';
import { startRuntime, type NodeRuntime } from './node.ts';
import { GatewayId } from '../src/gateways/gateway-id.ts';
import { cliAdmin, databaseConfig, fail } from './cli-shared.ts';

/** `notify`'s exit code when digests were held by another run's claim (sysexits EX_TEMPFAIL) */
const NOTIFY_HELD = 75;

/** `release <id> [--recipient A ...] [--confirm-dangerous]` and `delete <id> [--recipient A ...]`: the API's verbs, as admin "cli". */
export async function actionCommand(action: 'release' | 'delete', args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { recipient: { type: 'string', multiple: true }, 'confirm-dangerous': { type: 'boolean', default: false } },
  });
  const key = positionals[0] ? parseItemId(positionals[0]) : null;
  if (!key) fail(`usage: quarantine-edge ${action} <partition_tag>.<mail_id> [--recipient ADDRESS ...]`, 2);
  const recipients = values.recipient?.map((r) => normalizeAddress(r) ?? fail(`not an address: ${JSON.stringify(r)}`, 2));
  const runtime = await startRuntime(databaseConfig(action));
  const deps = runtime.deps;
  try {
    const result =
      action === 'release'
        ? await releaseMessage(deps, cliAdmin, { key, recipients, confirmDangerous: values['confirm-dangerous'] })
        : await deleteMessage(deps, cliAdmin, { key, recipients });
    console.log(JSON.stringify(result, null, 2));
    if ('status' in result && result.status !== 'released') process.exitCode = 1;
  } catch (err) {
    if (err instanceof AppError) fail(`${action}: ${err.message}`, 1);
    throw err;
  } finally {
    await runtime.close();
  }
}

/** `purge [--dry-run]`: the purge job, once, now. */
export async function purgeCommand(args: string[]) {
  const { values } = parseArgs({ args, options: { 'dry-run': { type: 'boolean', default: false } } });
  const runtime = await startRuntime(databaseConfig('purge'), { bounds: 'jobs' });
  try {
    const report = await purge(runtime.deps, { dryRun: values['dry-run'] });
    console.log(purgeSummary(report));
    console.log(JSON.stringify(report));
  } finally {
    await runtime.close();
  }
}

/** `notify`: one digest run, a progress line on a terminal, a summary line at the end. */
export async function notifyCommand(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      'force-all': { type: 'boolean', default: false },
      'force-all-time': { type: 'boolean', default: false },
      'notify-backupmx': { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      recipient: { type: 'string', multiple: true },
      // a registered gateway's digests (its mail, its subscribers and send records); absent: the deployment's own
      gateway: { type: 'string' },
    },
  });
  const recipients = values.recipient?.map((r) => normalizeAddress(r) ?? fail(`not an address: ${JSON.stringify(r)}`, 2));
  if (values.gateway !== undefined && !GatewayId.safeParse(values.gateway).success)
    fail(`--gateway: not a gateway id: ${JSON.stringify(values.gateway)}`, 2);
  const runtime = await startRuntime(databaseConfig('notify'), { bounds: 'jobs' });
  const tty = process.stderr.isTTY;
  let entered: Awaited<ReturnType<NodeRuntime['gateways']['enter']>> | null = null;
  try {
    if (values.gateway) entered = await runtime.gateways.enter(runtime.deps, values.gateway);
    const report = await runDigest(entered?.deps ?? runtime.deps, systemIdentity, {
      forceAll: values['force-all'],
      allTime: values['force-all-time'],
      includeBackupMx: values['notify-backupmx'],
      dryRun: values['dry-run'],
      recipients,
      // a CLI run has job bounds (startRuntime above): force_all + all_time reads in one stream; not
      // on the embedded database, whose one connection the stream would hold while each page waits for it
      // (a gateway's pool has the API's statement bounds: its pages are read one by one)
      streamed: !entered && runtime.handle.driver !== 'pglite',
      onProgress: (r: RunReport) => {
        if (tty)
          process.stderr.write(
            `\r${r.dry_run ? 'planned' : 'sent'} ${r.dry_run ? r.recipients : r.sent}, skipped ${r.skipped}, failed ${r.failed} (page ${r.pages})   `,
          );
      },
    });
    if (tty) process.stderr.write('\n');
    if (report.dry_run) for (const p of report.planned) console.log(`${p.recipient}\t${p.messages}`);
    for (const e of report.errors) console.error(`failed: ${e.recipient}: ${e.error}`);
    for (const r of report.held_recipients) console.error(`held: ${r}: claimed by another run, not settled`);
    console.log(summarize(report));
    // 1: a digest failed; 75 (EX_TEMPFAIL): none failed, but some were in another run's hands (a
    // dead run's claim lapses after 10 minutes): run again later. Never 0 while someone got nothing.
    if (report.failed) process.exitCode = 1;
    else if (report.held) process.exitCode = NOTIFY_HELD;
  } catch (err) {
    if (err instanceof AppError) fail(`notify: ${err.message}`, 2);
    throw err;
  } finally {
    await runtime.close();
  }
}

export async function keysCommand(args: string[], usage: string) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      role: { type: 'string' },
      domain: { type: 'string', multiple: true },
      mailbox: { type: 'string' },
      'notify-email': { type: 'string' },
    },
  });
  const [sub, id] = positionals;
  if (!(sub === 'list' || sub === 'create' || (sub === 'revoke' && id))) fail(usage, 2);
  // Checked before the database is opened, with the API's own schema (src/auth/key-input.ts).
  let input: ReturnType<typeof validateKeyInput> | undefined;
  if (sub === 'create') {
    try {
      input = validateKeyInput({
        name: values.name,
        role: values.role,
        domains: values.domain,
        mailbox: values.mailbox,
        notify_email: values['notify-email'],
      });
    } catch (err) {
      if (err instanceof AppError)
        fail(`keys create: ${err.message} (--name N --role admin|domain_admin|user [--domain D ...] [--mailbox M] [--notify-email E])`, 2);
      throw err;
    }
  }
  const runtime = await startRuntime(databaseConfig(`keys ${sub}`));
  const deps = runtime.deps;
  try {
    if (sub === 'list') {
      for (const k of await listKeys(deps, cliAdmin)) {
        const scope = k.domains?.join(',') ?? k.mailbox ?? '';
        const state = k.revoked_at ? 'revoked' : k.expires_at && Date.parse(k.expires_at) <= Date.now() ? 'expired' : 'active';
        console.log([k.id, k.role, k.name, scope, state, k.notify_email ?? ''].join('\t'));
      }
    } else if (sub === 'revoke') {
      await revokeKey(deps, cliAdmin, id!);
      console.log(`revoked ${id}`);
    } else {
      const k = await createKey(deps, cliAdmin, input!);
      console.log(`${k.id}\t${k.key}\n(the key is shown only now)`);
    }
  } catch (err) {
    if (err instanceof AppError) fail(`keys ${sub}: ${err.message}`, err.code === 'invalid_field' ? 2 : 1);
    throw err;
  } finally {
    await runtime.close();
  }
}
