// A registered gateway's own templates (README "Gateways (registry)"): on Node,
// templates/gateways/<gateway id>/<name>.custom.<ext> overrides the deployment's for that gateway's
// mail only; a folder not named like a gateway id is not read; a template the folder lacks is the
// deployment's (its own .custom one, else the default).
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { detectSchema } from '../../src/amavis/schema.ts';
import type { Identity } from '../../src/auth/identity.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { loadGatewayTemplates } from '../../src/digest/templates.node.ts';
import { CreateGatewayInput } from '../../src/gateways/input.ts';
import { createGateway } from '../../src/gateways/registry.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';

const KEY = Buffer.alloc(32, 4).toString('base64');
const admin: Identity = { role: 'admin', actor: 'test', keyId: null };

describe("a registered gateway's own templates", () => {
  const tag = crypto.randomUUID().slice(0, 6);
  const gw = `tpl-${tag}`;
  const other = `tpl2-${tag}`;
  const domain = `tpl-${tag}.example`;
  let t: TestApp;
  let owner: DbHandle;
  let gwMail: Fixtures;
  let homeMail: Fixtures;

  it('reads templates/gateways/<id>/ folders named like gateway ids only', () => {
    const dir = mkdtempSync(`${tmpdir()}/qe-gw-templates-`);
    mkdirSync(`${dir}/${gw}`);
    writeFileSync(`${dir}/${gw}/digest.custom.html`, 'OWN');
    writeFileSync(`${dir}/${gw}/digest.de.custom.txt`, 'EIGEN');
    mkdirSync(`${dir}/Not_A_Gateway`);
    writeFileSync(`${dir}/Not_A_Gateway/digest.custom.html`, 'NO');
    writeFileSync(`${dir}/stray.custom.html`, 'NO');
    mkdirSync(`${dir}/empty-gw`);
    const map = loadGatewayTemplates(dir);
    expect([...map.keys()]).toEqual([gw]);
    expect(map.get(gw)).toEqual({ 'digest.html': 'OWN', byLanguage: { de: { 'digest.txt': 'EIGEN' } } });
    expect(loadGatewayTemplates(`${dir}/missing/`).size).toBe(0);
  });

  describe('in a digest (home on MariaDB, the gateways on PostgreSQL)', () => {
    beforeAll(async () => {
      t = await testApp('mysql-upstream', {
        templates: { 'digest.html': '<p>DEPLOYMENT {{heading}}</p>' },
        gatewayTemplates: new Map([[gw, { 'digest.html': '<p>GATEWAY-OWN {{heading}}</p>' }]]),
        env: {
          GATEWAY_SECRETS_KEY: KEY,
          RESEND_API_KEY: 're_test_key',
          PUBLIC_URL: 'https://q.example.test',
          LINK_SECRET: 'test-link-secret-0123456789abcdef0123',
          DIGEST_FROM: 'Quarantine <q@example.test>',
        },
      });
      const url = inject('variantUrls')['pg-upstream']!;
      owner = await openDatabase({ url, runtime: 'node', poolSize: 2 });
      gwMail = new Fixtures({ handle: owner, variant: await detectSchema(owner.db, owner.dialect) } as TestApp);
      homeMail = new Fixtures(t);
      for (const [id, d] of [
        [gw, domain],
        [other, `other-${domain}`],
      ] as const)
        await createGateway(t.deps, admin, CreateGatewayInput.parse({ id, name: id, domains: [d], database: { url } }));
      const message = (to: string) => ({
        timeNum: Math.floor(Date.now() / 1000) - 60,
        content: 'S',
        sender: 'spammer@bulk.example',
        subject: `templates ${tag}`,
        spamLevel: 9,
        recipients: [{ address: to }],
      });
      await gwMail.add(message(`owner@${domain}`));
      await homeMail.add(message(`owner@${domain}`));
    });
    afterAll(async () => {
      for (const id of [gw, other]) await t?.get(`/v1/gateways/${id}`, undefined, { method: 'DELETE' });
      await owner?.close();
      await t?.close();
    });

    it("the gateway's digest is its own template; the deployment's and another gateway's are the deployment's", async () => {
      const preview = async (gateway: string | null) => {
        const res = await t.get(`/v1/digests/preview?recipient=owner@${domain}&all_time=true${gateway ? `&gateway=${gateway}` : ''}`);
        expect(res.status, await res.clone().text()).toBe(200);
        return res.text();
      };
      const own = await preview(gw);
      expect(own).toContain('GATEWAY-OWN');
      expect(own).not.toContain('DEPLOYMENT');
      expect(await preview(null)).toContain('DEPLOYMENT');
      const second = await preview(other);
      expect(second).toContain('DEPLOYMENT');
      expect(second).not.toContain('GATEWAY-OWN');
    });
  });
});
