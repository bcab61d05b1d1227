// The compiled digest templates (src/digest/compiled-template.ts) render exactly what mustache.js
// renders, for the default templates and for the tags an admin's custom template may use.
import Mustache from 'mustache';
import { describe, expect, it } from 'vitest';
import { renderCompiled } from '../../src/digest/compiled-template.ts';
import { escapeHtml } from '../../src/digest/render.ts';
import { DEFAULT_TEMPLATES } from '../../src/digest/templates.generated.ts';

const plain = (s: unknown) => String(s);
const both = (template: string, view: unknown) => {
  for (const esc of [escapeHtml, plain]) {
    expect(renderCompiled(template, view, esc)).toBe(Mustache.render(template, view, {}, { escape: esc }));
  }
};

describe('compiled templates', () => {
  it('escape as mustache.js does', () => {
    const s = `<a href="https://x/a/b=c">'\`&amp;</a> é 𝄞 plain`;
    expect(escapeHtml(s)).toBe(Mustache.escape(s));
    expect(escapeHtml('nothing to escape')).toBe('nothing to escape');
    expect(escapeHtml(42)).toBe('42');
  });

  it('render the default digest templates as mustache.js', () => {
    const message = (i: number) => ({
      subject: `<b>offer ${i}</b> {{total}}`,
      sender: `s${i}@x.example`,
      show_recipient: i % 2 === 0,
      recipient: 'owner@x.example',
      score: i,
      score_text: i ? `score ${i}` : '',
      received: '2026-12-04 10:00 UTC',
      reason: "it's spam",
      actions: [
        { action: 'release', label: 'Release', danger: false, url: 'https://q.example/a/x.y' },
        { action: 'delete', label: 'Delete', danger: true, url: 'https://q.example/a/z.w' },
      ],
    });
    const view = {
      subject: 'S',
      language: 'en',
      total: 3,
      heading: 'H & "h"',
      messages: [0, 1, 2].map(message),
      more: 2,
      more_text: '2 more',
      portal_url: 'https://q.example/a/p',
      unsubscribe_url: 'https://q.example/a/u',
      label_from: 'From',
      label_to: 'To',
    };
    for (const name of ['digest.html', 'digest.txt'] as const) both(DEFAULT_TEMPLATES[name], view);
    both(DEFAULT_TEMPLATES['digest.html'], { ...view, messages: [], more: 0 });
  });

  it('sections, inverted sections and lookups up the context stack', () => {
    both('{{#list}}[{{name}}/{{outer}}]{{/list}}{{^list}}none{{/list}}', {
      list: [{ name: 'a' }, { name: 'b', outer: 'own' }],
      outer: 'o',
    });
    both('{{#list}}x{{/list}}{{^list}}none{{/list}}', { list: [] });
    both('{{#obj}}{{k}}{{/obj}}{{#t}}yes{{/t}}{{#f}}no{{/f}}{{#zero}}z{{/zero}}{{#n}}{{n}}{{/n}}', {
      obj: { k: 1 },
      t: true,
      f: false,
      zero: 0,
      n: 7,
    });
    both('{{#s}}{{length}}{{/s}}', { s: 'abc', length: 'outer' });
    both('{{missing}}|{{{raw}}}|{{&raw}}|{{! a comment }}|{{=<% %>=}}<% raw %>', { raw: '<i>' });
    both('{{#items}}{{.}},{{/items}}', { items: ['a', 'b'] });
    both('{{a.b}} {{#a}}{{b}}{{/a}}', { a: { b: '<x>' } });
    both('{{#lambda}}text{{/lambda}} {{fn}}', { lambda: () => (t: string) => `<${t}>`, fn: () => 'called' });
  });
});
