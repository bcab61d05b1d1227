import net from 'node:net';
import { startAmavisd, gtube, blacklisted } from './amavisd.ts';
async function ampdp(port: number, req: string) {
  const t0 = performance.now();
  const raw = await new Promise<string>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(req));
    let buf = '';
    s.on('data', (c) => { buf += c; if (buf.includes('\r\n\r\n')) { s.end(); resolve(buf); } });
    s.on('error', reject);
  });
  return { ms: performance.now() - t0, raw };
}
const sa = process.argv[2] !== 'nosa';
const db = (process.argv[3] ?? 'mariadb') as 'mariadb' | 'pg';
const t0 = Date.now();
const h = await startAmavisd({ db, spamAssassin: sa, schema: (process.argv[4] ?? 'upstream') as 'upstream' });
console.log(`start total ${Date.now() - t0} ms, amavisd ready ${h.startupMs} ms, SA=${sa}`);
try {
  const m = sa ? gtube('bob@example.org', 'alice@e2e.test') : blacklisted('alice@e2e.test');
  let t = performance.now();
  const r = await h.submit(m);
  console.log(`submit ${(performance.now() - t).toFixed(0)} ms ${r.text}`);
  const row = await h.waitForMsg(m.messageId);
  const req = `request=release\r\nmail_id=${row.mailId}\r\nsecret_id=${row.secretId}\r\npartition_tag=0\r\nquar_type=Q\r\nrecipient=alice@e2e.test\r\n\r\n`;
  const times: number[] = [];
  for (let i = 0; i < 12; i++) { const x = await ampdp(h.pdpPort, req); times.push(Math.round(x.ms)); }
  console.log('release ms:', times.join(' '));
  console.log(JSON.stringify(row));
  const polls: number[] = [];
  for (let i = 0; i < 30; i++) {
    const x = i % 2 ? blacklisted('alice@e2e.test') : gtube('bob@example.org', ['alice@e2e.test', 'carol@e2e.test']);
    await h.submit(x);
    polls.push((await h.waitForMsg(x.messageId)).polls);
  }
  console.log('polls:', polls.join(''));
} finally {
  await h.stop();
}
