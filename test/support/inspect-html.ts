import { Tokenizer } from 'htmlparser2';

export interface Token {
  tag: string;
  attrs: Record<string, string>;
  text?: string;
}

/**
 * The start tags of a served document as a browser's tokenizer reads them, with their attributes
 * (first of equal names wins) and, for <style>, its text. Flat, so a million nested tags stay linear.
 */
export function tagsOf(html: string): Token[] {
  const tags: Token[] = [];
  let current: Token | null = null;
  let name = '';
  let value = '';
  let inStyle: Token | null = null;
  const t = new Tokenizer(
    { decodeEntities: true },
    {
      onopentagname: (s, e) => {
        current = { tag: html.slice(s, e).toLowerCase(), attrs: {} };
      },
      onattribname: (s, e) => {
        name = html.slice(s, e).toLowerCase();
        value = '';
      },
      onattribdata: (s, e) => {
        value += html.slice(s, e);
      },
      onattribentity: (cp) => {
        value += String.fromCodePoint(cp);
      },
      onattribend: () => {
        if (current && !(name in current.attrs)) current.attrs[name] = value;
      },
      onopentagend: () => {
        if (current) tags.push(current);
        if (current?.tag === 'style') inStyle = current;
        current = null;
      },
      onselfclosingtag: () => {
        if (current) tags.push(current);
        current = null;
      },
      onclosetag: () => {
        inStyle = null;
      },
      ontext: (s, e) => {
        if (inStyle) inStyle.text = (inStyle.text ?? '') + html.slice(s, e);
      },
      ontextentity() {},
      oncomment() {},
      oncdata() {},
      ondeclaration() {},
      onprocessinginstruction() {},
      onend() {},
    },
  );
  t.write(html);
  t.end();
  return tags;
}

/** Attributes that navigate, submit, refresh, run script or load something. */
const LIVE = /^(href|xlink:href|action|formaction|http-equiv|srcset|srcdoc|src|data|poster|background|ping|on.*)$/i;
const LOADS = /(?<!qe-blocked-)(url\(|image-set\()|@import|expression\(/i;
const TAGS = [
  'script',
  'iframe',
  'frame',
  'object',
  'embed',
  'meta',
  'base',
  'link',
  'form',
  'svg',
  'math',
  'area',
  'video',
  'audio',
  'source',
  'input',
  'button',
];

/**
 * What in `html` is live: attributes from LIVE (an img src only when `allowSrc` accepts it), CSS
 * that loads, tags that load or run (our own `<meta charset>` aside). Empty for an inert document.
 */
export function liveParts(html: string, allowSrc: (url: string) => boolean = (u) => u.startsWith('data:')): string[] {
  const found: string[] = [];
  for (const { tag, attrs, text } of tagsOf(html)) {
    if (TAGS.includes(tag) && !(tag === 'meta' && Object.keys(attrs).join() === 'charset')) found.push(`<${tag}>`);
    for (const [name, value] of Object.entries(attrs)) {
      if (tag === 'img' && name === 'src' && allowSrc(value)) continue;
      if (LIVE.test(name)) found.push(`${tag}[${name}=${value.slice(0, 60)}]`);
      if (name === 'style' && LOADS.test(value)) found.push(`${tag}[style=${value.slice(0, 60)}]`);
    }
    if (tag === 'style' && text && LOADS.test(text)) found.push(`<style>${text.slice(0, 60)}`);
  }
  return found;
}
