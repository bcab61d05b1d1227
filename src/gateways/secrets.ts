/**
 * The gateway registry's secrets (a database URL with its password, a relay secret), sealed with
 * AES-256-GCM through Web Crypto, which workerd and Node both have. The key is GATEWAY_SECRETS_KEY;
 * keys it replaced are listed in GATEWAY_SECRETS_PREVIOUS_KEYS until `gateways rekey` has sealed
 * everything again with the current one (README "Gateways (registry)").
 *
 * Sealed form: `qe1.<key id>.<iv>.<ciphertext>` (base64url). The key id is the first 8 hex digits
 * of the key's SHA-256: it tells which key opens a value without trying each, and it is safe to
 * show. The additional data binds a value to its gateway and column, so a sealed value copied
 * into another row or column does not open there.
 */
import { base64url, base64urlDecode } from '../crypto/hmac.ts';
import { sha256Hex } from '../crypto/sha256.ts';
import { AppError } from '../errors.ts';

const PREFIX = 'qe1';
const enc = new TextEncoder();
const dec = new TextDecoder();

export interface Keyring {
  /** seals new values; null: GATEWAY_SECRETS_KEY is not set */
  current: { id: string; key: CryptoKey } | null;
  /** every configured key by id, the current one included */
  byId: Map<string, CryptoKey>;
}

/** Why a sealed value could not be opened: the key is not configured, or the value is not ours. */
export class SecretUnavailable extends Error {
  constructor(
    readonly reason: 'no_key' | 'unknown_key' | 'corrupt',
    message: string,
  ) {
    super(message);
    this.name = 'SecretUnavailable';
  }
}

function keyBytes(b64: string): Uint8Array {
  // parseConfig (isKey32) has checked it: base64 or base64url of 32 bytes
  const bytes = Uint8Array.from(atob(b64.trim().replace(/-/g, '+').replace(/_/g, '/')), (ch) => ch.charCodeAt(0));
  if (bytes.length !== 32) throw new Error('a gateway secrets key is not base64 of 32 bytes');
  return bytes;
}

export function keyId(raw: Uint8Array): string {
  return sha256Hex(raw).slice(0, 8);
}

// importKey is async; a Worker isolate or a Node process asks for the same keys on every request
let cached: { source: string; ring: Promise<Keyring> } | null = null;

/** The keys of this configuration, imported once per process or isolate. */
export function keyringFromConfig(config: { GATEWAY_SECRETS_KEY?: string; GATEWAY_SECRETS_PREVIOUS_KEYS?: string }): Promise<Keyring> {
  const source = `${config.GATEWAY_SECRETS_KEY ?? ''}|${config.GATEWAY_SECRETS_PREVIOUS_KEYS ?? ''}`;
  if (cached?.source === source) return cached.ring;
  const ring = buildKeyring(
    config.GATEWAY_SECRETS_KEY,
    (config.GATEWAY_SECRETS_PREVIOUS_KEYS ?? '').split(',').filter((k) => k.trim()),
  );
  cached = { source, ring };
  return ring;
}

async function buildKeyring(current: string | undefined, previous: string[]): Promise<Keyring> {
  const byId = new Map<string, CryptoKey>();
  const load = async (b64: string) => {
    const raw = keyBytes(b64);
    const id = keyId(raw);
    const key = await crypto.subtle.importKey('raw', raw as BufferSource, 'AES-GCM', false, ['encrypt', 'decrypt']);
    byId.set(id, key);
    return { id, key };
  };
  const cur = current ? await load(current) : null;
  for (const p of previous) {
    const raw = keyBytes(p);
    if (!byId.has(keyId(raw))) await load(p);
  }
  return { current: cur, byId };
}

/** What a sealed value is bound to: its gateway and column. */
const aad = (gatewayId: string, column: string) => enc.encode(`qe-gateway\n${gatewayId}\n${column}`);

/**
 * Seal `plain` for `column` of gateway `gatewayId`. Without GATEWAY_SECRETS_KEY: 503 misconfigured
 * naming the setting and the field that needed it (the API and the CLI say the same).
 */
export async function seal(ring: Keyring, gatewayId: string, column: string, plain: string, field: string): Promise<string> {
  if (!ring.current) {
    throw new AppError(
      'misconfigured',
      `${field}: storing it needs GATEWAY_SECRETS_KEY (base64 of 32 random bytes, e.g. from \`openssl rand -base64 32\`), which is not set`,
      { field, setting: 'GATEWAY_SECRETS_KEY' },
    );
  }
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: aad(gatewayId, column) },
      ring.current.key,
      enc.encode(plain) as BufferSource,
    ),
  );
  return `${PREFIX}.${ring.current.id}.${base64url(iv)}.${base64url(ct)}`;
}

/** The key id a sealed value names (shown in the API: which values a rotation has not reached yet). */
export function sealedKeyId(sealed: string): string | null {
  const parts = sealed.split('.');
  return parts.length === 4 && parts[0] === PREFIX ? parts[1]! : null;
}

export async function open(ring: Keyring, gatewayId: string, column: string, sealed: string): Promise<string> {
  const parts = sealed.split('.');
  const iv = parts.length === 4 && parts[0] === PREFIX ? base64urlDecode(parts[2]!) : null;
  const ct = iv ? base64urlDecode(parts[3]!) : null;
  if (!iv || !ct || iv.length !== 12) throw new SecretUnavailable('corrupt', 'the stored value is not a sealed secret');
  const key = ring.byId.get(parts[1]!);
  if (!key) {
    throw ring.byId.size === 0
      ? new SecretUnavailable('no_key', 'GATEWAY_SECRETS_KEY is not set')
      : new SecretUnavailable(
          'unknown_key',
          `sealed with key ${parts[1]}, which is neither GATEWAY_SECRETS_KEY nor in GATEWAY_SECRETS_PREVIOUS_KEYS`,
        );
  }
  try {
    const plain = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: iv as BufferSource, additionalData: aad(gatewayId, column) },
      key,
      ct as BufferSource,
    );
    return dec.decode(plain);
  } catch {
    throw new SecretUnavailable('corrupt', 'the stored value does not open with its key (altered, or moved from another gateway)');
  }
}

/** Sealed again under the current key, or null when it already is (rekey). */
export async function reseal(ring: Keyring, gatewayId: string, column: string, sealed: string): Promise<string | null> {
  if (ring.current && sealedKeyId(sealed) === ring.current.id) return null;
  return seal(ring, gatewayId, column, await open(ring, gatewayId, column, sealed), column);
}
