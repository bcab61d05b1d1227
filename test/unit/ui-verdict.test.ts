import { describe, expect, it } from 'vitest';
import { alertFinding, spamRules } from '../../src/ui/verdict.ts';

describe('the verdict explained', () => {
  it("reads amavisd's tests=[NAME=score, ...], highest first, and SpamAssassin's bare list", () => {
    expect(
      spamRules(
        'Yes, score=1003.2 tag=2 tag2=6.31 kill=6.9 tests=[BAYES_00=-1.9, GTUBE=1000,\n\tHTML_MESSAGE=0.001, URIBL_BLOCKED=0.001] autolearn=no',
      ),
    ).toEqual([
      { name: 'GTUBE', score: 1000 },
      { name: 'HTML_MESSAGE', score: 0.001 },
      { name: 'URIBL_BLOCKED', score: 0.001 },
      { name: 'BAYES_00', score: -1.9 },
    ]);
    expect(spamRules('Yes, score=6.1 required=5.0 tests=BAYES_99,URIBL_BLACK autolearn=no')).toEqual([
      { name: 'BAYES_99', score: null },
      { name: 'URIBL_BLACK', score: null },
    ]);
    expect(spamRules('No, score=0.1')).toEqual([]);
    expect(spamRules(undefined)).toEqual([]);
    // not rules: dropped, never shown as given
    expect(spamRules('tests=[<script>=1, OK_RULE=2, A=B]')).toEqual([{ name: 'OK_RULE', score: 2 }]);
  });

  it('bounded: a huge header is read only so far, at most 200 rules', () => {
    const many = `tests=[${Array.from({ length: 5000 }, (_, i) => `R${i}=1`).join(', ')}]`;
    const rules = spamRules(many);
    expect(rules.length).toBeLessThanOrEqual(200);
    expect(rules.length).toBeGreaterThan(100);
    expect(spamRules(`tests=${'A'.repeat(1_000_000)}`)).toEqual([]);
  });

  it('names the virus or the banned part from X-Amavis-Alert', () => {
    expect(alertFinding(['INFECTED, message contains virus: Eicar-Test-Signature'])).toEqual({
      kind: 'virus',
      text: 'Eicar-Test-Signature',
    });
    expect(alertFinding(['BAD HEADER SECTION, x', 'BANNED, message contains text/plain,.exe,invoice.exe'])).toEqual({
      kind: 'banned',
      text: 'text/plain,.exe,invoice.exe',
    });
    expect(alertFinding(['BANNED, message contains r\\x{E9}sum\\x{E9}.exe'])).toEqual({ kind: 'banned', text: 'résumé.exe' });
    expect(alertFinding(['BAD HEADER SECTION, Non-encoded 8-bit data'])).toBeNull();
  });
});
