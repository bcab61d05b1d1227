// Worker bundle only (wrangler.toml [alias]): mysql2 reaches iconv-lite just for character sets
// that Buffer cannot decode. We connect with utf8mb4; the one other set MariaDB still uses is
// utf8mb3 (CESU-8 in mysql2's names) for some metadata. That one is decoded here; the 480 KB of
// other code tables stay out of the bundle.

/** CESU-8: UTF-8 where astral characters are two 3-byte surrogates; JS strings are UTF-16, so
 * each 3-byte unit maps straight to one code unit. 4-byte UTF-8 is accepted too. */
function decodeCesu8(bytes) {
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    if (b < 0x80) {
      out += String.fromCharCode(b);
      i += 1;
    } else if (b >> 5 === 0x6 && i + 1 < bytes.length) {
      out += String.fromCharCode(((b & 0x1f) << 6) | (bytes[i + 1] & 0x3f));
      i += 2;
    } else if (b >> 4 === 0xe && i + 2 < bytes.length) {
      out += String.fromCharCode(((b & 0x0f) << 12) | ((bytes[i + 1] & 0x3f) << 6) | (bytes[i + 2] & 0x3f));
      i += 3;
    } else if (b >> 3 === 0x1e && i + 3 < bytes.length) {
      const cp = ((b & 0x07) << 18) | ((bytes[i + 1] & 0x3f) << 12) | ((bytes[i + 2] & 0x3f) << 6) | (bytes[i + 3] & 0x3f);
      out += String.fromCodePoint(cp);
      i += 4;
    } else {
      out += '\ufffd';
      i += 1;
    }
  }
  return out;
}

const CESU8 = ['cesu8', 'cesu-8', 'utf8mb3'];
const isCesu8 = (encoding) => CESU8.includes(String(encoding).toLowerCase());

function unsupported(encoding) {
  throw new Error(`character set ${encoding} is not supported in the Worker build; use utf8mb4`);
}

function getDecoder(encoding) {
  if (!isCesu8(encoding)) return unsupported(encoding);
  return { write: (buf) => decodeCesu8(buf), end: () => undefined };
}

function getEncoder(encoding) {
  if (!isCesu8(encoding)) return unsupported(encoding);
  // Only metadata travels in utf8mb3: plain UTF-8 is identical for every BMP character.
  return { write: (str) => Buffer.from(str, 'utf8'), end: () => undefined };
}

function encodingExists(encoding) {
  return isCesu8(encoding) || Buffer.isEncoding(String(encoding));
}

module.exports = { getDecoder, getEncoder, encodingExists };
