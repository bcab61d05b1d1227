/**
 * DIGEST_FROM's two parts: `Display Name <address>` or a bare address. The one reading of that
 * value: the release's Resent-From (src/quarantine/release.ts) takes its address, a registered
 * gateway's own From (src/gateways/context.ts) keeps its display name.
 */
export function parseFromValue(value: string): { name: string; address: string } {
  const lt = value.lastIndexOf('<');
  const angle = lt >= 0 ? /^<([^<>\s]+@[^<>\s]+)>\s*$/.exec(value.slice(lt)) : null;
  if (!angle) return { name: '', address: value.trim() };
  return { name: value.slice(0, lt).trim(), address: angle[1]! };
}
