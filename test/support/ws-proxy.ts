import { createConnection } from 'node:net';
import { WebSocketServer } from 'ws';

/**
 * The WebSocket-to-TCP proxy that lets the Neon driver reach a plain PostgreSQL (what Neon's own
 * edge does): `ws://127.0.0.1:PORT/v1?address=host:port`, bytes passed through both ways.
 */
export async function startWsProxy(): Promise<{ port: number; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss.on('connection', (ws, req) => {
    const address = new URL(req.url ?? '/', 'ws://x').searchParams.get('address') ?? '';
    const [host, port] = address.split(':');
    const tcp = createConnection({ host, port: Number(port) });
    tcp.on('data', (d) => ws.send(d));
    tcp.on('close', () => ws.close());
    tcp.on('error', () => ws.close());
    ws.on('message', (d) => tcp.write(d as Buffer));
    ws.on('close', () => tcp.destroy());
  });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const port = (wss.address() as { port: number }).port;
  return { port, close: () => new Promise<void>((r) => wss.close(() => r())) };
}
