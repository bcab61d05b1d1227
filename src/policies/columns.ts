import { hasColumn, type SchemaVariant } from '../amavis/schema.ts';
import { AppError } from '../errors.ts';

/**
 * amavisd's policy columns, the friendly switches over them, and the checks on raw values. Only
 * columns the database really has (schema detection) can be read or written.
 */
export const QUARANTINE_SWITCHES = {
  spam: ['spam_lover', 'bypass_spam_checks'],
  virus: ['virus_lover', 'bypass_virus_checks'],
  banned: ['banned_files_lover', 'bypass_banned_checks'],
  bad_header: ['bad_header_lover', 'bypass_header_checks'],
} as const;
export type SwitchName = keyof typeof QUARANTINE_SWITCHES;

export const LEVELS = ['spam_tag_level', 'spam_tag2_level', 'spam_kill_level', 'spam_quarantine_cutoff_level'] as const;
export type LevelName = (typeof LEVELS)[number];

export type RawValue = string | number | null;

const yn = (v: unknown) => (typeof v === 'string' ? v.trim().toUpperCase() : null);

/**
 * true = quarantined: the recipient is no "lover" of it and its checks are not bypassed (both 'N');
 * false when either says so ('Y'); null when it is left to a more general row or the static config.
 */
export function switchOf(row: Record<string, unknown>, s: SwitchName): boolean | null {
  const [lover, bypass] = QUARANTINE_SWITCHES[s].map((c) => yn(row[c]));
  if (lover === 'Y' || bypass === 'Y') return false;
  if (lover === 'N' && bypass === 'N') return true;
  return null;
}

/** The columns a switch writes: on = both 'N'; off = lover 'Y' (amavisd still scans, then passes it on). */
export function switchColumns(s: SwitchName, on: boolean): Record<string, string> {
  const [lover, bypass] = QUARANTINE_SWITCHES[s];
  return on ? { [lover]: 'N', [bypass]: 'N' } : { [lover]: 'Y' };
}

/**
 * Names amavisd's %banned_rules commonly defines (iRedMail's amavisd.conf, and the examples in
 * amavisd.conf-default). A domain admin picks from these; an admin may write any name, as it is the
 * admin who configures %banned_rules.
 */
export const BANNED_RULENAMES = [
  'DEFAULT',
  'ALLOW_MS_OFFICE',
  'ALLOW_MS_WORD',
  'ALLOW_MS_EXCEL',
  'ALLOW_MS_PPT',
  'NO-MS-EXEC',
  'PASSALL',
  'ALLOW_EXE',
  'ALLOW_VBS',
] as const;

/**
 * The columns a domain admin may change: only what decides the verdict for its own mailboxes
 * (quarantine switches, lovers and bypasses, score levels, subject tags, banned rule names) and
 * the policy's label. Everything else amavisd reads from a policy row sends mail or connections
 * somewhere: *_quarantine_to and archive_quarantine_to (copies of the mail), *_admin (notification
 * addresses), forward_method (the next hop, host:port), addr_extension_* (delivery addresses),
 * sa_userconf / sa_username (SpamAssassin's per-user config), warn*recip, message_size_limit and
 * disclaimer_options: admins only. An allow-list, so a column this list does not know is an
 * admin's too.
 */
export function domainAdminMayChange(column: string): boolean {
  return (
    column === 'policy_name' ||
    column === 'banned_rulenames' ||
    /^[a-z_]+_lover$/.test(column) ||
    /^bypass_[a-z]+_checks$/.test(column) ||
    /^spam_(tag|tag2|tag3|kill|dsn_cutoff|quarantine_cutoff)_level$/.test(column) ||
    /^spam_subject_tag[23]?$/.test(column)
  );
}

/** banned_rulenames as a domain admin may write it: names from BANNED_RULENAMES, comma-separated. */
export function checkBannedRulenames(value: string | null, field: string): void {
  if (value === null) return;
  const names = value.split(',').map((n) => n.trim());
  const unknown = names.find((n) => !(BANNED_RULENAMES as readonly string[]).includes(n));
  if (unknown !== undefined) {
    throw new AppError(
      'invalid_field',
      `${field}: ${JSON.stringify(unknown)} is not one of ${BANNED_RULENAMES.join(', ')} (comma-separated); nothing was changed`,
      { field },
    );
  }
}

export function policyColumns(v: SchemaVariant): string[] {
  return [...(v.columns.get('policy') ?? [])].filter((c) => c !== 'id').sort();
}

/** Validate one raw value for `column`; throws a 400 naming `field`. */
export function checkRaw(v: SchemaVariant, column: string, value: unknown, field: string): RawValue {
  const bad = (why: string): never => {
    throw new AppError('invalid_field', `${field}: ${why}; nothing was changed`, { field });
  };
  if (column === 'id' || !hasColumn(v, 'policy', column)) bad("not a column of this database's policy table");
  if (value === null) return null;
  if (/_lover$|^bypass_|^warn/.test(column)) {
    if (value !== 'Y' && value !== 'N') bad("expected 'Y', 'N' or null");
    return value as string;
  }
  if (/_level$/.test(column)) {
    if (typeof value !== 'number' || !Number.isFinite(value)) bad('expected a number or null');
    if ((value as number) < 0) bad('a level cannot be negative');
    if ((value as number) > 1e6) bad('too large');
    return value as number;
  }
  if (column === 'message_size_limit') {
    if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 2 ** 31 - 1)
      bad('expected a byte count (integer >= 0) or null');
    return value as number;
  }
  const max = column === 'policy_name' ? 32 : 64;
  if (typeof value !== 'string') bad('expected a string or null');
  if ((value as string).length > max) bad(`at most ${max} characters`);
  if (/[\x00-\x1f\x7f]/.test(value as string)) bad('control characters are not allowed');
  return value as string;
}
