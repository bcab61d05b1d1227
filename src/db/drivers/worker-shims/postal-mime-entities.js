// Worker bundle only (wrangler.toml [alias]): postal-mime's dist/esm/html-entities.js, its own copy of
// the WHATWG named character references (45 KB, ~12 KiB of the bundle's gzip). The bundle already
// has the same list as a compact tree in `entities`, which htmlparser2's tokenizer decodes with
// (src/ui/mail-html.ts). postal-mime only looks names up (`htmlEntities[match]` in
// text-format.js, for the text of an HTML-only message), where `match` is "&name;" or "&name":
// this object answers those lookups from `entities`. test/unit/worker-shims.test.ts checks every
// name of postal-mime's table, and near misses of each, give the same answer.
import { decodeHTML, decodeHTMLStrict, DecodingMode } from 'entities/decode';

const NAME = /^&[A-Za-z][A-Za-z0-9]*;?$/;

/** The character(s) `ref` stands for when the whole of it is one named reference, else undefined. */
function lookup(ref) {
  if (!NAME.test(ref)) return undefined;
  // "&name;": only a complete name ending in ';' (strict mode decodes nothing else)
  const named = ref.endsWith(';') ? ref : `${ref};`;
  const strict = decodeHTMLStrict(named);
  if (strict === named) return undefined;
  if (ref.endsWith(';')) return strict;
  // "&name": a legacy name the spec lets go without ';' (&amp, &copy), the whole of it, not a
  // prefix of a longer one ("&notin" is not "&not" + "in")
  return decodeHTML(ref, DecodingMode.Legacy) === strict ? strict : undefined;
}

export const htmlEntities = new Proxy(
  {},
  {
    get: (_, key) => (typeof key === 'string' ? lookup(key) : undefined),
  },
);
