/**
 * MySQL's `ssl-mode` URL parameter, which mysql2 does not know (it warns on every new connection
 * that a future version will throw). workerd appends it to a Hyperdrive binding's MySQL connection
 * string, and managed MySQL/MariaDB services print it in theirs. It is taken out of the URL here and,
 * where it asks for TLS, turned into mysql2's own `ssl` option.
 */
export type SslMode = 'DISABLED' | 'PREFERRED' | 'REQUIRED' | 'VERIFY_CA' | 'VERIFY_IDENTITY';
export const SSL_MODES: readonly SslMode[] = ['DISABLED', 'PREFERRED', 'REQUIRED', 'VERIFY_CA', 'VERIFY_IDENTITY'];

/** null: the URL's ssl-mode (if any) is one of SSL_MODES; else what is wrong (src/config.ts checks it at start) */
export function sslModeProblem(url: string): string | null {
  let raw: string | null;
  try {
    raw = new URL(url).searchParams.get('ssl-mode');
  } catch {
    return null; // not a URL: the driver says so
  }
  return raw === null || SSL_MODES.includes(raw.toUpperCase() as SslMode) ? null : `ssl-mode must be one of ${SSL_MODES.join(', ')}`;
}

export interface MysqlTarget {
  /** the URL without `ssl-mode` */
  uri: string;
  /** mysql2's ssl option; absent: plain TCP */
  ssl?: { rejectUnauthorized: boolean };
}

/**
 * `hyperdrive`: the URL is a Hyperdrive binding's. Hyperdrive itself speaks TLS to the origin
 * database (as configured with `wrangler hyperdrive create`), and the Worker reaches Hyperdrive
 * inside Cloudflare, so the parameter is dropped whatever it says.
 * Otherwise DISABLED and PREFERRED are plain TCP (mysql2 cannot fall back from TLS, and PREFERRED
 * promises none), REQUIRED is TLS without certificate checks (as MySQL's client does),
 * VERIFY_CA and VERIFY_IDENTITY are TLS with the certificate and host name checked.
 */
export function mysqlTarget(url: string, opts: { hyperdrive?: boolean } = {}): MysqlTarget {
  const u = new URL(url);
  const raw = u.searchParams.get('ssl-mode');
  if (raw === null) return { uri: url };
  u.searchParams.delete('ssl-mode');
  const uri = u.toString();
  if (opts.hyperdrive) return { uri };
  const mode = raw.toUpperCase() as SslMode;
  if (!SSL_MODES.includes(mode)) {
    throw new Error(`DATABASE_URL: ssl-mode must be one of ${SSL_MODES.join(', ')}`);
  }
  if (mode === 'DISABLED' || mode === 'PREFERRED') return { uri };
  return { uri, ssl: { rejectUnauthorized: mode !== 'REQUIRED' } };
}
