/**
 * The one check of an AM.PDP address (AMAVISD_PDP, RELEASE_ROUTES, a gateway's `pdp`): host:port or
 * [v6]:port, port 1..65535, what src/amavis/pdp-client.node.ts parseHostPort can open. Checked where
 * the value comes in, so a bad one is named there, not by the first release.
 */
const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

export function isHostPort(v: string): boolean {
  const port = Number(HOST_PORT.exec(v)?.[1] ?? 0);
  return port >= 1 && port <= 65535;
}
