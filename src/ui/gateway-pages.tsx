/** @jsxImportSource hono/jsx */
import type { Identity } from '../auth/identity.ts';
import type { GatewayView } from '../gateways/registry.ts';
import { Layout, Notice } from './layout.tsx';

/** What the add form sends back on a refusal (never the secrets: those are typed again). */
export interface GatewayFormValues {
  id: string;
  name: string;
  domains: string;
  hyperdrive: string;
  pdp: string;
  relay_url: string;
  mail_from: string;
}

export const EMPTY_GATEWAY_FORM: GatewayFormValues = {
  id: '',
  name: '',
  domains: '',
  hyperdrive: '',
  pdp: '',
  relay_url: '',
  mail_from: '',
};

function database(g: GatewayView): string {
  return g.database.kind === 'hyperdrive'
    ? `Hyperdrive binding ${g.database.binding}`
    : `URL (sealed${g.database.key_id ? ` with key ${g.database.key_id}` : ''})`;
}

function release(g: GatewayView): string {
  if (!g.release) return 'none';
  return g.release.kind === 'pdp' ? `AM.PDP ${g.release.address}` : `relay ${g.release.url} (secret sealed)`;
}

/**
 * The gateway registry for admins (the same verbs as /v1/gateways): what is registered, an add form
 * and a remove button each. Secrets are typed into password fields and never shown again.
 */
export function GatewaysPage(props: {
  who: Identity;
  csrf: string;
  items: GatewayView[];
  values: GatewayFormValues;
  notice: string | null;
  error: string | null;
}) {
  const v = props.values;
  return (
    <Layout title="Gateways" who={props.who} csrf={props.csrf} wide>
      <h1>Gateways</h1>
      <p class="muted">
        The mail gateways this service serves. Each one's quarantine, lists, digests and audit are kept apart from the others' (README
        "Gateways: who sees what"); /readyz checks that each is reachable.
      </p>
      <Notice text={props.notice} />
      <Notice text={props.error} error />
      {props.items.length === 0 ? (
        <p>No gateways are registered.</p>
      ) : (
        <div class="table-wrap">
          <table class="list">
            <thead>
              <tr>
                <th>Id</th>
                <th>Name</th>
                <th>Domains</th>
                <th>Database</th>
                <th>Release</th>
                <th>From</th>
                <th>
                  <span class="visually-hidden">Remove</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {props.items.map((g) => (
                <tr>
                  <td data-label="Id">{g.id}</td>
                  <td data-label="Name">{g.name}</td>
                  <td data-label="Domains" class="addr">
                    {g.domains.join(', ')}
                  </td>
                  <td data-label="Database">{database(g)}</td>
                  <td data-label="Release">{release(g)}</td>
                  <td data-label="From" class="addr">
                    {g.mail_from ?? ''}
                  </td>
                  <td data-label="Remove">
                    <form method="post" action={`/ui/gateways/${g.id}/remove`}>
                      <input type="hidden" name="csrf" value={props.csrf} />
                      <button type="submit" class="danger" aria-label={`Remove gateway ${g.id}`}>
                        Remove
                      </button>
                    </form>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h2 id="h-add">Register a gateway</h2>
      <form method="post" action="/ui/gateways/add" class="stacked" aria-labelledby="h-add">
        <input type="hidden" name="csrf" value={props.csrf} />
        <p>
          <label for="g-id">Id</label>
          <input id="g-id" name="id" value={v.id} required maxlength={32} autocomplete="off" placeholder="mx-eu-1" />
        </p>
        <p>
          <label for="g-name">Name</label>
          <input id="g-name" name="name" value={v.name} required maxlength={200} autocomplete="off" />
        </p>
        <p>
          <label for="g-domains">Domains (one per line or comma-separated)</label>
          <textarea id="g-domains" name="domains" required rows={3}>
            {v.domains}
          </textarea>
        </p>
        <fieldset>
          <legend>amavisd's database: a Hyperdrive binding or a URL</legend>
          <p>
            <label for="g-hyperdrive">Hyperdrive binding</label>
            <input id="g-hyperdrive" name="hyperdrive" value={v.hyperdrive} maxlength={64} autocomplete="off" />
          </p>
          <p>
            <label for="g-url">Database URL (sealed; never shown again)</label>
            <input id="g-url" name="database_url" type="password" maxlength={2048} autocomplete="off" />
          </p>
        </fieldset>
        <fieldset>
          <legend>Release: AM.PDP, or a relay with its secret; neither: none</legend>
          <p>
            <label for="g-pdp">AM.PDP host:port</label>
            <input id="g-pdp" name="pdp" value={v.pdp} maxlength={300} autocomplete="off" placeholder="127.0.0.1:9998" />
          </p>
          <p>
            <label for="g-relay">Relay URL</label>
            <input id="g-relay" name="relay_url" value={v.relay_url} maxlength={2048} autocomplete="off" />
          </p>
          <p>
            <label for="g-secret">Relay secret (sealed; never shown again)</label>
            <input id="g-secret" name="relay_secret" type="password" maxlength={1024} autocomplete="off" />
          </p>
        </fieldset>
        <p>
          <label for="g-from">From address (optional)</label>
          <input id="g-from" name="mail_from" value={v.mail_from} maxlength={320} autocomplete="off" />
        </p>
        <button type="submit">Register</button>
      </form>
    </Layout>
  );
}
