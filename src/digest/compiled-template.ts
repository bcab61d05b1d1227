import Mustache from 'mustache';

/**
 * Mustache templates compiled once into closures. A digest run renders the same two templates
 * tens of thousands of times, and mustache.js walks its token tree through a Context with a lookup
 * cache for every one of them (10% of a run's CPU). The closures do what mustache.js's
 * Writer.renderTokens does for the tags the digest templates use — {{name}}, {{{name}}}/{{&name}},
 * {{#section}}, {{^inverted}} over objects, arrays and plain values — with the same lookup (the
 * innermost context that has the name as a property wins, `name in view`). Anything else
 * (partials, dotted names, `{{.}}`, a function in the view) renders through mustache.js itself, so
 * an admin's custom template behaves as mustache documents it.
 */
type Scope = { view: unknown; parent: Scope | null };
type Escape = (value: unknown) => string;
/** a part appends its output to `out`: one flat string is joined at the end (see renderCompiled) */
type Part = (scope: Scope, esc: Escape, out: string[]) => void;
export type CompiledTemplate = (view: unknown, esc: Escape) => string;

/** thrown at render time: this view needs mustache.js's own rendering (a function value) */
const NOT_HERE = Symbol('render with mustache.js');

function lookup(scope: Scope | null, name: string): unknown {
  for (let s = scope; s !== null; s = s.parent) {
    const v = s.view;
    if (v !== null && typeof v === 'object' && name in v) {
      const value = (v as Record<string, unknown>)[name];
      if (typeof value === 'function') throw NOT_HERE;
      return value;
    }
  }
  return undefined;
}

/** mustache.js token: [type, value, start, end, children?, closing position?] */
type Token = [string, string, number, number, Token[]?, number?];

function compileTokens(tokens: Token[]): Part | null {
  const parts: Part[] = [];
  for (const token of tokens) {
    const [type, value] = token;
    if (type === 'text') {
      parts.push((_s, _e, out) => void out.push(value));
      continue;
    }
    if (type === '!' || type === '=') continue; // comments and delimiter changes render nothing
    if (type !== 'name' && type !== '&' && type !== '#' && type !== '^') return null; // a partial
    if (value.includes('.')) return null;
    if (type === 'name') {
      parts.push((s, esc, out) => {
        const v = lookup(s, value);
        if (v !== null && v !== undefined) out.push(esc(v));
      });
    } else if (type === '&') {
      parts.push((s, _e, out) => {
        const v = lookup(s, value);
        if (v !== null && v !== undefined) out.push(String(v));
      });
    } else {
      const inner = compileTokens(token[4] ?? []);
      if (!inner) return null;
      if (type === '^') {
        parts.push((s, esc, out) => {
          const v = lookup(s, value);
          if (!v || (Array.isArray(v) && v.length === 0)) inner(s, esc, out);
        });
      } else {
        parts.push((s, esc, out) => {
          const v = lookup(s, value);
          if (!v) return;
          if (Array.isArray(v)) {
            for (const item of v) inner({ view: item, parent: s }, esc, out);
          } else if (typeof v === 'object' || typeof v === 'string' || typeof v === 'number') inner({ view: v, parent: s }, esc, out);
          else inner(s, esc, out); // true
        });
      }
    }
  }
  return (s, esc, out) => {
    for (const part of parts) part(s, esc, out);
  };
}

const compiled = new Map<string, Part | null>();

/** Render `template` with `view`, compiled on first use (the set of templates is small: defaults and overrides). */
export function renderCompiled(template: string, view: unknown, esc: Escape): string {
  let part = compiled.get(template);
  if (part === undefined) {
    part = compileTokens(Mustache.parse(template) as Token[]);
    if (compiled.size < 100) compiled.set(template, part);
  }
  if (part) {
    try {
      // Pieces joined once, not appended with +=: a digest's HTML is thousands of pieces, and a
      // string built by += is a rope that V8 flattens later, on the first JSON.stringify, at
      // several times the cost of one join (BENCHMARKS.md, "Digest CPU, third pass").
      const out: string[] = [];
      part({ view, parent: null }, esc, out);
      return out.join('');
    } catch (err) {
      if (err !== NOT_HERE) throw err;
    }
  }
  return Mustache.render(template, view, {}, { escape: esc });
}
