// /docs loads one pinned Swagger UI with Subresource Integrity, under a CSP, with nothing inline.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { SWAGGER_UI_ASSETS, SWAGGER_UI_VERSION } from '../../src/api/docs.ts';
import { parseConfig } from '../../src/config.ts';

const app = createApp({ config: parseConfig({}), database: { acquire: () => Promise.reject(new Error('no database here')) } });
const dist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

describe('GET /docs', () => {
  it('loads only pinned third-party assets, each with SRI, and no inline script', async () => {
    const res = await app.request('/docs');
    expect(res.status).toBe(200);
    const html = await res.text();
    const refs = [...html.matchAll(/<(script|link)\b([^>]*)>/g)].map((m) => m[2]!);
    const external = refs.filter((a) => /(src|href)="https?:\/\//.test(a));
    expect(external).toHaveLength(2);
    for (const a of external) {
      expect(a).toContain(`https://cdn.jsdelivr.net/npm/swagger-ui-dist@${SWAGGER_UI_VERSION}/`);
      expect(a).toMatch(/ integrity="sha384-[A-Za-z0-9+/]{64}" crossorigin="anonymous"/);
    }
    // every script has a src: nothing inline for the CSP to allow
    expect([...html.matchAll(/<script\b([^>]*)>/g)].every((m) => /\bsrc="/.test(m[1]!))).toBe(true);
    const init = await app.request('/docs/init.js');
    expect(init.status).toBe(200);
    expect(await init.text()).toContain("url: '/openapi.json'");
  });

  it('sends a CSP that allows scripts and styles only from this origin and the pinned CDN', async () => {
    const csp = (await app.request('/docs')).headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self' https://cdn.jsdelivr.net;");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("connect-src 'self'");
  });

  it('pins the swagger-ui-dist version installed, and the hashes are those of its files', () => {
    expect(JSON.parse(readFileSync(join(dist, 'package.json'), 'utf8')).version).toBe(SWAGGER_UI_VERSION);
    for (const [file, integrity] of Object.entries(SWAGGER_UI_ASSETS)) {
      const actual = `sha384-${createHash('sha384')
        .update(readFileSync(join(dist, file)))
        .digest('base64')}`;
      expect(actual, `${file}: put this in src/api/docs.ts`).toBe(integrity);
    }
  });
});
