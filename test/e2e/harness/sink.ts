// The SMTP sink amavisd forwards clean mail and releases to: a real SMTP server (smtp-server)
// inside the test process. It can be told to refuse recipients (4xx / 5xx) for fault tests.
import { EventEmitter } from 'node:events';
import { SMTPServer } from 'smtp-server';

export interface SinkMessage {
  from: string;
  to: string[];
  /** The message as received, decoded as UTF-8 (lossy for raw 8-bit non-UTF-8 bytes: use `bytes`). */
  raw: string;
  bytes: Buffer;
  receivedAt: Date;
}

/** accept: 250 2.0.0 (end of DATA); tempfail: 451 4.3.0 at RCPT TO; reject: 550 5.7.1 at RCPT TO. */
export type SinkMode = 'accept' | 'tempfail' | 'reject';
export type SinkPolicy = SinkMode | ((recipient: string) => SinkMode);

export interface Sink {
  readonly port: number;
  messages(): SinkMessage[];
  clear(): void;
  setMode(policy: SinkPolicy): void;
  waitFor(match: (m: SinkMessage) => boolean, timeoutMs?: number): Promise<SinkMessage>;
  on(event: 'message', listener: (m: SinkMessage) => void): void;
  off(event: 'message', listener: (m: SinkMessage) => void): void;
  close(): Promise<void>;
}

function refusal(mode: SinkMode): Error | null {
  if (mode === 'accept') return null;
  const err = new Error(
    mode === 'tempfail' ? '4.3.0 qe-e2e sink: temporary failure (test)' : '5.7.1 qe-e2e sink: rejected (test)',
  ) as Error & { responseCode: number };
  err.responseCode = mode === 'tempfail' ? 451 : 550;
  return err;
}

export async function startSink(port: number, host = '127.0.0.1'): Promise<Sink> {
  const received: SinkMessage[] = [];
  const events = new EventEmitter();
  let policy: SinkPolicy = 'accept';

  const server = new SMTPServer({
    name: 'sink.e2e.test',
    banner: 'qe-e2e sink',
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    closeTimeout: 2000,
    onRcptTo(address, _session, callback) {
      const mode = typeof policy === 'function' ? policy(address.address) : policy;
      callback(refusal(mode));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', (e) => callback(e));
      stream.on('end', () => {
        const bytes = Buffer.concat(chunks);
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const msg: SinkMessage = {
          from,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: bytes.toString('utf8'),
          bytes,
          receivedAt: new Date(),
        };
        received.push(msg);
        events.emit('message', msg);
        // Postfix-like reply text; amavisd passes it on inside its AM.PDP setreply
        callback(null, `2.0.0 Ok: queued as QE${String(received.length).padStart(6, '0')}`);
      });
    },
  });
  server.on('error', () => {
    // connection-level errors (a client hanging up) must not crash the test process
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(new Error(`sink cannot listen on ${host}:${port}: ${e.message}`));
    server.server.once('error', onError);
    server.listen(port, host, () => {
      server.server.off('error', onError);
      resolve();
    });
  });

  return {
    port,
    messages: () => received.slice(),
    clear: () => {
      received.length = 0;
    },
    setMode: (p) => {
      policy = p;
    },
    waitFor(match, timeoutMs = 15_000) {
      const found = received.find(match);
      if (found) return Promise.resolve(found);
      return new Promise<SinkMessage>((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('message', listener);
          reject(new Error(`sink: no matching message within ${timeoutMs} ms (${received.length} received)`));
        }, timeoutMs);
        const listener = (m: SinkMessage) => {
          if (!match(m)) return;
          clearTimeout(timer);
          events.off('message', listener);
          resolve(m);
        };
        events.on('message', listener);
      });
    },
    on: (e, l) => void events.on(e, l),
    off: (e, l) => void events.off(e, l),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
