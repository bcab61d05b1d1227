import { describe, expect, it } from 'vitest';
import {
  codesOfPolicyTypes,
  DEFAULT_RULES,
  effectiveRules,
  ownerActions,
  policyTypeOf,
  type PolicyTable,
} from '../../src/quarantine/release-policy.ts';

describe('release policy rules', () => {
  it('maps amavisd content codes to policy types; the codes not named are other', () => {
    expect(['V', 'B', 'S', 's', 'Y', 'H', 'M', 'O'].map(policyTypeOf)).toEqual([
      'virus',
      'banned',
      'spam',
      'spam',
      'spammy',
      'bad-header',
      'bad-mime',
      'oversized',
    ]);
    expect(['U', 'T', 'C', '?', '', null, 'Z'].map(policyTypeOf)).toEqual(Array(7).fill('other'));
  });

  it('defaults: owners release spam and the like, request virus and banned', () => {
    expect(DEFAULT_RULES).toEqual({
      spam: 'release',
      spammy: 'release',
      virus: 'request',
      banned: 'request',
      'bad-header': 'release',
      'bad-mime': 'release',
      oversized: 'release',
      other: 'release',
    });
  });

  it('a domain override wins over the global rule, which wins over the defaults, per type', () => {
    const table: PolicyTable = { global: { spam: 'none', virus: 'none' }, domains: new Map([['a.example', { virus: 'release' }]]) };
    expect(effectiveRules(table, 'a.example')).toMatchObject({ spam: 'none', virus: 'release', banned: 'request' });
    expect(effectiveRules(table, 'b.example')).toMatchObject({ spam: 'none', virus: 'none', banned: 'request' });
    expect(effectiveRules(table, null)).toMatchObject({ spam: 'none', virus: 'none', spammy: 'release' });
  });

  it('the digest links an owner gets per rule', () => {
    const rules = { ...DEFAULT_RULES, spam: 'none', oversized: 'hidden' } as const;
    expect(ownerActions(rules, 'spammy')).toEqual(['release', 'release_allow', 'delete']);
    expect(ownerActions(rules, 'virus')).toEqual(['request', 'delete']);
    expect(ownerActions(rules, 'spam')).toEqual(['delete']);
    expect(ownerActions(rules, 'oversized')).toEqual([]);
  });

  it('codes of hidden types: other is open-ended, so it is said as the codes that stay', () => {
    expect(codesOfPolicyTypes(['virus', 'spam'])).toEqual({ codes: ['V', 'S', 's'], negate: false });
    const other = codesOfPolicyTypes(['other', 'virus']);
    expect(other.negate).toBe(true);
    expect(other.codes.sort()).toEqual(['B', 'H', 'M', 'O', 'S', 'Y', 's'].sort());
  });
});
