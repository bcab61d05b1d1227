/**
 * amavisd's content codes (msgs.content / msgrcpt.content) and the API's names for them.
 * Lowercase 's' is what older amavisd wrote for spam; it lists as spam.
 */
export const CONTENT_TYPES = {
  virus: ['V'],
  banned: ['B'],
  unchecked: ['U'],
  spam: ['S', 's'],
  spammy: ['Y'],
  'bad-mime': ['M'],
  'bad-header': ['H'],
  oversized: ['O'],
  'mta-error': ['T'],
  clean: ['C'],
  other: ['?'],
} as const satisfies Record<string, readonly string[]>;

export type ContentType = keyof typeof CONTENT_TYPES;
export const CONTENT_TYPE_NAMES = Object.keys(CONTENT_TYPES) as [ContentType, ...ContentType[]];

const BY_CODE = new Map<string, ContentType>();
for (const [name, codes] of Object.entries(CONTENT_TYPES)) {
  for (const code of codes) BY_CODE.set(code, name as ContentType);
}

export function typeOfCode(code: string | null | undefined): ContentType {
  return (code && BY_CODE.get(code)) || 'other';
}

export function codesOfTypes(types: readonly ContentType[]): string[] {
  return [...new Set(types.flatMap((t) => CONTENT_TYPES[t]))];
}

/**
 * msgrcpt.rs: amavisd writes ' ' and never updates it; we manage it (README convention):
 * V viewed, p release requested, R released, D deleted.
 */
export const RECIPIENT_STATUS = {
  pending: [' ', '', 'V', 'p'],
  released: ['R'],
  deleted: ['D'],
  /** a release in progress, or one whose outcome is unknown (README): only these */
  releasing: ['p'],
} as const;
export type StatusFilterName = keyof typeof RECIPIENT_STATUS;

/**
 * 'releasing': a release is with amavisd right now, or its outcome is unknown (rs='p'); it lists
 * under the pending filter too, and alone under the releasing filter.
 */
export type RecipientStatus = StatusFilterName;

export function statusOfRs(rs: string | null | undefined): RecipientStatus {
  if (rs === 'R') return 'released';
  if (rs === 'D') return 'deleted';
  if (rs === 'p') return 'releasing';
  return 'pending';
}
