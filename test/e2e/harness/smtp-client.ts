// A small SMTP client for submitting to amavisd: sends the bytes exactly as given (raw 8-bit
// headers included, which higher-level clients tend to re-encode) and returns the final reply.
import net from 'node:net';

export interface SmtpReply {
  code: number;
  text: string;
}

export class SmtpError extends Error {
  constructor(
    readonly stage: string,
    readonly reply: SmtpReply,
  ) {
    super(`SMTP ${stage} refused: ${reply.code} ${reply.text}`);
  }
}

/** CRLF line endings, dot-stuffing, terminated by CRLF.CRLF. */
export function dataBlock(raw: string | Uint8Array): Buffer {
  const text = Buffer.from(typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw).toString('latin1');
  let body = text.replace(/\r?\n/g, '\r\n');
  if (!body.endsWith('\r\n')) body += '\r\n';
  body = body.replace(/^\./gm, '..');
  return Buffer.from(`${body}.\r\n`, 'latin1');
}

export async function smtpSend(opts: {
  host: string;
  port: number;
  from: string;
  to: string[];
  raw: string | Uint8Array;
  helo?: string;
  timeoutMs?: number;
}): Promise<SmtpReply> {
  const socket = net.connect(opts.port, opts.host);
  socket.setTimeout(opts.timeoutMs ?? 120_000);
  let buffer = '';
  let waiting: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void } | null = null;
  let failure: Error | null = null;
  const replies: SmtpReply[] = [];

  const fail = (e: Error) => {
    failure = e;
    if (waiting) waiting.reject(e);
    waiting = null;
  };
  socket.on('error', fail);
  socket.on('timeout', () => {
    fail(new Error(`SMTP timeout talking to ${opts.host}:${opts.port}`));
    socket.destroy();
  });
  socket.on('close', () => fail(new Error(`SMTP connection to ${opts.host}:${opts.port} closed`)));
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    let lines: string[] = [];
    for (;;) {
      const nl = buffer.indexOf('\r\n');
      if (nl < 0) break;
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 2);
      lines.push(line);
      if (/^\d{3}(?: |$)/.test(line)) {
        replies.push({ code: Number(line.slice(0, 3)), text: lines.map((l) => l.slice(4)).join('\n') });
        lines = [];
      }
    }
    if (lines.length) buffer = lines.map((l) => `${l}\r\n`).join('') + buffer;
    if (waiting && replies.length) {
      const w = waiting;
      waiting = null;
      w.resolve(replies.shift()!);
    }
  });

  const next = (): Promise<SmtpReply> => {
    if (replies.length) return Promise.resolve(replies.shift()!);
    if (failure) return Promise.reject(failure);
    return new Promise((resolve, reject) => {
      waiting = { resolve, reject };
    });
  };
  const command = async (line: string, stage: string, ok: (c: number) => boolean) => {
    socket.write(`${line}\r\n`);
    const r = await next();
    if (!ok(r.code)) throw new SmtpError(stage, r);
    return r;
  };
  const is2xx = (c: number) => c >= 200 && c < 300;

  try {
    const greeting = await next();
    if (greeting.code !== 220) throw new SmtpError('greeting', greeting);
    await command(`EHLO ${opts.helo ?? 'client.e2e.test'}`, 'EHLO', is2xx);
    await command(`MAIL FROM:<${opts.from}>`, 'MAIL FROM', is2xx);
    for (const rcpt of opts.to) await command(`RCPT TO:<${rcpt}>`, `RCPT TO <${rcpt}>`, is2xx);
    await command('DATA', 'DATA', (c) => c === 354);
    socket.write(dataBlock(opts.raw));
    const final = await next();
    if (!is2xx(final.code)) throw new SmtpError('end of DATA', final);
    socket.write('QUIT\r\n');
    return final;
  } finally {
    socket.removeAllListeners('close');
    socket.on('close', () => undefined);
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}
