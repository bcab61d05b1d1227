/**
 * The README's own SQL and unit files, read by the tests that run them (database users, systemd
 * units), so what an admin copies and what the tests prove are one text. A block is the fenced
 * code right after an HTML comment marker such as `<!-- grants:mysql:api -->`.
 */
import { readFileSync } from 'node:fs';

const README = new URL('../../README.md', import.meta.url);

export function readmeBlock(marker: string): string {
  const text = readFileSync(README, 'utf8');
  const at = text.indexOf(`<!-- ${marker} -->`);
  if (at < 0) throw new Error(`README.md has no <!-- ${marker} --> block`);
  const m = /```[a-z]*\n([\s\S]*?)```/.exec(text.slice(at));
  if (!m) throw new Error(`README.md: no code block after <!-- ${marker} -->`);
  return m[1]!;
}

/** Every qe_* table the migrations of a dialect create. */
export function qeTables(dialect: 'mysql' | 'postgres', files: Array<{ sql: string }>): string[] {
  const out = new Set<string>();
  for (const f of files) for (const m of f.sql.matchAll(/CREATE TABLE (?:IF NOT EXISTS )?(qe_[a-z0-9_]+)/gi)) out.add(m[1]!.toLowerCase());
  return [...out].sort();
}
