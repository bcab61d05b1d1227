/**
 * Hostile mail, as a sender would write it (amavisd's own lines are added by the fixtures' writer):
 * for the unit, integration and workerd tests and the benchmark (bench/hostile.ts).
 */

export const MB = 1024 * 1024;

/** Markup that a regex "sanitizer" let through: a `>` inside a quoted value, and the usual suspects. */
export const HTML_BYPASSES = [
  '<p>Hello from the HTML part</p>',
  '<a title=">" href="https://evil.example/quoted-gt">quoted gt</a>',
  '<meta content=">" http-equiv=refresh content="0;url=https://evil.example/refresh">',
  '<a href="javascript:alert(1)" onclick="alert(2)">js link</a>',
  '<form action="https://evil.example/form"><button formaction="https://evil.example/fa">go</button></form>',
  '<img srcset="https://tracker.example/srcset.gif 1x" src="https://tracker.example/pixel.gif" onerror="alert(3)" alt="pixel">',
  '<div style="background:url(https://tracker.example/bg.gif)">styled</div>',
  '<div style="background:u\\72l(https://tracker.example/escaped.gif)">escaped</div>',
  '<style>@import "https://evil.example/x.css"; body { background: URL(https://tracker.example/sheet.gif) }</style>',
  '<svg><a xlink:href="https://evil.example/svg"><text>svg</text></a></svg>',
  '<iframe srcdoc="<script>alert(4)</script>" src="https://evil.example/frame"></iframe>',
  '<base href="https://evil.example/"><link rel="stylesheet" href="https://evil.example/l.css">',
  '<object data="https://evil.example/o"></object><embed src="https://evil.example/e">',
  '<area href="https://evil.example/area"><video poster="https://tracker.example/poster.gif"></video>',
  '<table background="https://tracker.example/table.gif"><tr><td>cell</td></tr></table>',
  '<script>alert("script ran")</script><noscript><a href="https://evil.example/noscript">ns</a></noscript>',
].join('\n');

/** 5 MB of one hostile pattern: a tag that never closes, deep nesting, or one huge attribute. */
export function hostileHtml(kind: 'unclosed' | 'deep' | 'attribute', bytes = 5 * MB): string {
  if (kind === 'unclosed') return '<img '.repeat(Math.ceil(bytes / 5));
  if (kind === 'deep') return '<div>'.repeat(Math.ceil(bytes / 5));
  return `<p title="${'a'.repeat(bytes)}">after the attribute</p>`;
}

const head = (subject: string, type: string) =>
  `From: Bulk <spammer@bulk.example>\nTo: victim@example.test\nSubject: ${subject}\nMIME-Version: 1.0\nContent-Type: ${type}\n\n`;

export function htmlMessage(subject: string, html: string): string {
  return `${head(subject, 'text/html; charset=utf-8')}${html}\n`;
}

/** multipart/mixed nested `depth` levels deep (postal-mime 4.0.0 rejects more than 256 by default). */
export function deepMessage(depth: number): string {
  let s = head(`nested ${depth} deep`, 'multipart/mixed; boundary="d0"');
  for (let i = 1; i <= depth; i++) s += `--d${i - 1}\nContent-Type: multipart/mixed; boundary="d${i}"\n\n`;
  return `${s}--d${depth}\nContent-Type: text/plain\n\ninnermost\n`;
}

/** `bytes` of header fields in front of a plain body. */
export function bigHeadersMessage(bytes: number): string {
  const field = `X-Filler: ${'h'.repeat(1000)}\n`;
  return `${head('megabytes of headers', 'text/plain').slice(0, -1)}${field.repeat(Math.ceil(bytes / field.length))}\nthe body\n`;
}

/** `parts` tiny parts of 25 bytes each (100k parts: 2.5 MB). */
export function manyPartsMessage(parts: number): string {
  return `${head(`${parts} parts`, 'multipart/mixed; boundary="b"')}--b\nContent-Type: text/plain\n\nfirst part\n${'--b\nContent-Type: a/b\n\nx\n'.repeat(parts - 1)}--b--\n`;
}
