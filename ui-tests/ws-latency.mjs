// How long from a meter's push to the browser: a real Chromium page holds the API's WebSocket
// subscribed to one meter; this script opens and closes the meter's terminal cover through the
// simulated fleet's control API (the meter then pushes the alarm, ciphered, to the push
// listener) and the page notes when the alarm arrives. Both clocks are this machine's.
// Run by scripts/bench-ws. Environment: HES_URL, HES_CONTROL (the fleet's control API),
// HES_ADMIN (user:password), HES_METER (a meter id), HES_SAMPLES (default 30), CHROMIUM.
import { chromium } from 'playwright-core';

const BASE = process.env.HES_URL.replace(/\/$/, '');
const CONTROL = process.env.HES_CONTROL.replace(/\/$/, '');
const [USER, PASS] = process.env.HES_ADMIN.split(/:(.*)/s);
const METER = process.env.HES_METER;
const SAMPLES = Number(process.env.HES_SAMPLES || 30);

const login = await fetch(`${BASE}/api/v1/auth/token`, {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ username: USER, password: PASS }),
});
if (!login.ok) throw new Error(`login: ${login.status}`);
const { access_token: token } = await login.json();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
try {
  const page = await browser.newPage();
  await page.goto(`${BASE}/`);
  await page.evaluate(({ token, meter }) => new Promise((resolve, reject) => {
    const url = location.origin.replace(/^http/, 'ws') + `/api/v1/ws?access_token=${encodeURIComponent(token)}`;
    const ws = new WebSocket(url);
    window.__alarms = [];
    ws.onmessage = (m) => {
      const at = Date.now();
      const msg = JSON.parse(m.data);
      if (msg.type === 'subscribed') resolve();
      if (msg.type === 'event' && msg.meter === meter) window.__alarms.push(at);
    };
    ws.onopen = () => ws.send(JSON.stringify({ subscribe: { meters: [meter] } }));
    ws.onerror = () => reject(new Error('websocket error'));
    setTimeout(() => reject(new Error('no subscription ack')), 10000);
  }), { token, meter: METER });

  const latencies = [];
  for (let i = 0; i < SAMPLES; i++) {
    const seen = await page.evaluate(() => window.__alarms.length);
    const t0 = Date.now();
    const r = await fetch(`${CONTROL}/meters/${encodeURIComponent(METER)}/tamper`, { method: 'POST' });
    if (!r.ok) throw new Error(`tamper: ${r.status}`);
    const arrived = await page.waitForFunction((n) => window.__alarms.length > n ? window.__alarms[n] : null,
      seen, { timeout: 15000, polling: 5 });
    latencies.push((await arrived.jsonValue()) - t0);
    // Let the second alarm (cover closed) arrive too before the next sample.
    await page.waitForFunction((n) => window.__alarms.length >= n + 2, seen, { timeout: 15000, polling: 20 });
    await new Promise((ok) => setTimeout(ok, 300));
  }
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  console.log(JSON.stringify({ samples: latencies.length, p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99), max_ms: latencies[latencies.length - 1], min_ms: latencies[0] }));
} finally {
  await browser.close();
}
