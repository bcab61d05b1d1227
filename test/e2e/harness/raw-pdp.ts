// The floor for AM.PDP: a hand-written request on a bare socket, read until amavisd's empty line.
// Deliberately independent of the product's client (src/amavis/pdp-client.node.ts), so tests and
// timings can hold the two against each other.
import net from 'node:net';

/** Send a raw request (name=value CRLF lines, then an empty line); resolve with the raw reply. */
export function rawPdpExchange(port: number, request: string, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    let buf = '';
    s.setTimeout(timeoutMs, () => s.destroy(new Error('AM.PDP timeout')));
    s.on('data', (c) => {
      buf += c.toString('latin1');
      if (buf.startsWith('\r\n') || buf.includes('\r\n\r\n')) {
        s.end();
        resolve(buf);
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(buf));
  });
}
