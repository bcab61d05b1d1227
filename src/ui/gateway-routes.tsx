/** @jsxImportSource hono/jsx */
import type { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { AppError } from '../errors.ts';
import { CreateGatewayInput, validateGatewayInput } from '../gateways/input.ts';
import { createGateway, deleteGateway, listGateways } from '../gateways/registry.ts';
import { csrf, ctx, field, form, one, requireSession, type C, type UiEnv } from './context.ts';
import { EMPTY_GATEWAY_FORM, GatewaysPage, type GatewayFormValues } from './gateway-pages.tsx';
import { checkCsrf, type Session } from './session.ts';

const NOTICES: Record<string, string> = { added: 'The gateway is registered.', removed: 'The gateway is removed; its domains are free.' };

function adminOnly(c: C): Session {
  const s = requireSession(c);
  // as in the API: to anyone but an admin the registry does not exist
  if (s.identity.role !== 'admin') throw new AppError('not_found', 'not found');
  return s;
}

async function render(
  c: C,
  s: Session,
  o: { values?: GatewayFormValues; notice?: string | null; error?: string | null; status?: ContentfulStatusCode },
) {
  const items = await listGateways(c.get('deps'), s.identity);
  return c.html(
    <GatewaysPage
      who={s.identity}
      csrf={await csrf(c)}
      items={items}
      values={o.values ?? EMPTY_GATEWAY_FORM}
      notice={o.notice ?? null}
      error={o.error ?? null}
    />,
    o.status ?? 200,
  );
}

const blank = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim());

/** The registry's page (the config form for small setups): the same schema and verbs as /v1/gateways. */
export function gatewayRoutes(ui: Hono<UiEnv>) {
  ui.get('/gateways', async (c) => {
    const s = adminOnly(c);
    return render(c, s, { notice: NOTICES[c.req.query('done') ?? ''] ?? null });
  });

  ui.post('/gateways/add', async (c) => {
    const s = adminOnly(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    const text = (name: string, max: number) => (field(body[name]) ?? '').slice(0, max);
    const values: GatewayFormValues = {
      id: text('id', 100),
      name: text('name', 300),
      domains: text('domains', 300_000),
      hyperdrive: text('hyperdrive', 100),
      pdp: text('pdp', 400),
      relay_url: text('relay_url', 2100),
      mail_from: text('mail_from', 400),
    };
    const url = blank(field(body.database_url));
    const secret = blank(field(body.relay_secret));
    const relay = blank(values.relay_url);
    const pdp = blank(values.pdp);
    try {
      const input = validateGatewayInput(CreateGatewayInput, {
        id: values.id.trim(),
        name: values.name,
        domains: values.domains.split(/[\s,]+/).filter(Boolean),
        database: { hyperdrive: blank(values.hyperdrive), url },
        release: pdp || relay || secret ? { pdp, relay_url: relay, relay_secret: secret } : null,
        mail_from: blank(values.mail_from) ?? null,
      });
      await createGateway(c.get('deps'), s.identity, input);
      return c.redirect('/ui/gateways?done=added', 303);
    } catch (err) {
      // refused: the form again with what was typed (secrets excepted) and why, with the API's status
      if (err instanceof AppError && ['invalid_field', 'conflict', 'misconfigured'].includes(err.code)) {
        return render(c, s, { values, error: err.message, status: err.status as ContentfulStatusCode });
      }
      throw err;
    }
  });

  ui.post('/gateways/:id/remove', async (c) => {
    const s = adminOnly(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    await deleteGateway(c.get('deps'), s.identity, c.req.param('id').slice(0, 40));
    return c.redirect('/ui/gateways?done=removed', 303);
  });
}
