import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: Record<string, string>;
  body: string;
}

/**
 * A local webhook receiver: records every request and answers with the next planned status
 * (200 when the plan is empty), or never answers ('hang').
 */
export class WebhookReceiver {
  received: Received[] = [];
  plan: Array<number | 'hang'> = [];
  /** decides before the plan when it returns something */
  respond: ((r: Received) => number | 'hang' | undefined) | null = null;
  private server: Server | null = null;
  private hanging: ServerResponse[] = [];
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
        const got = { headers, body: Buffer.concat(chunks).toString('utf8') };
        this.received.push(got);
        const next = this.respond?.(got) ?? this.plan.shift() ?? 200;
        if (next === 'hang') {
          this.hanging.push(res);
          return;
        }
        res.writeHead(next, { 'content-type': 'text/plain' }).end(next < 300 ? 'ok' : 'no');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/hook`;
    return this;
  }

  reset() {
    this.received = [];
    this.plan = [];
    this.respond = null;
  }

  async close() {
    for (const res of this.hanging) res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
