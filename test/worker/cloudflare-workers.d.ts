// The one piece of `cloudflare:workers` the Worker suite uses. The project does not load
// @cloudflare/workers-types globally (they clash with the DOM lib the rest of the code compiles
// against), so this declares just what the tests call.
declare module 'cloudflare:workers' {
  /** The main Worker's own exports, bound as loopback services: each call is a new request. */
  export const exports: {
    default: { fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> };
  };
  /** The main Worker's bindings (vars and secrets of the test config). */
  export const env: Record<string, unknown>;
}
