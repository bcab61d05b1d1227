import { startAmavisd } from './amavisd.ts';
const h = await startAmavisd({ db: 'mariadb', spamAssassin: false });
try {
  await startAmavisd({ db: 'mariadb', spamAssassin: false }).then(() => console.log('UNEXPECTED second start'), (e) => console.log('second start refused:', (e as Error).message.split('\n')[0]));
} finally { await h.stop(); await h.stop(); }
console.log('stopped twice ok');
