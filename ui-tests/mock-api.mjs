// A stand-in for the hes API (the contract in docs/ui.md), for developing the UI and for
// `scripts/ui-test --mock` when `hes` is not at hand. Node only, no dependencies; in-memory
// data; a minimal WebSocket (RFC 6455, text frames) at /api/v1/ws. Not a test of the API.
//   node mock-api.mjs --port 8080 [--ui ../crates/hes-api/ui]
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith('--') ? [...a, [v.slice(2), all[i + 1]]] : a), []));
const PORT = Number(args.port || 8080);
const UI = path.resolve(args.ui || path.join(path.dirname(fileURLToPath(import.meta.url)), '../crates/hes-api/ui'));
const ADMIN_PW = process.env.HES_ADMIN_PASSWORD || 'admin-password';

const users = new Map([['admin', { username: 'admin', password: ADMIN_PW, role: 'admin', groups: [], created_at: new Date().toISOString() }]]);
const access = new Map(); // token -> username
const refreshTokens = new Map();
const tokens = [];
const audit = [];
const schedules = [{ name: 'daily-profile', read: 'load_profile', every_s: 86400, window_s: 3600, jitter_s: 30 }];
const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const NOW = () => Date.now();

const meters = Array.from({ length: 50 }, (_, i) => ({
  id: `m${String(i + 1).padStart(4, '0')}`, serial: `SIM${String(10000001 + i)}`, host: `127.0.0.${i + 2}`, port: 4059,
  status: i === 49 ? 'inactive' : 'active', groups: { cell: `cell-${(i % 5) + 1}` }, online: i % 11 !== 3, last_seen: iso(NOW() - (i % 7) * 60e3),
}));
let jobSeq = 1000;
const jobs = [];
for (let i = 0; i < 40; i++) jobs.push({ id: ++jobSeq, meter: meters[i % 50].id, kind: 'read_load_profile', state: i % 9 === 0 ? 'failed' : 'succeeded', priority: 'scheduled', attempts: 1, created_at: iso(NOW() - (40 - i) * 90e3), finished_at: iso(NOW() - (40 - i) * 90e3 + 4000), error: i % 9 === 0 ? 'timeout' : null });
const events = [];
for (let i = 0; i < 30; i++) events.push({ id: String(5000 + i), meter: meters[(i * 7) % 50].id, time: iso(NOW() - i * 3600e3), log: '0.0.99.98.1.255', code: [40, 41, 47, 68][i % 4], description: ['Terminal cover opened', 'Strong magnetic field', 'Power failure', 'Disconnector opened'][i % 4], severity: ['alarm', 'alarm', 'warning', 'info'][i % 4], acknowledged: i % 3 === 0, acknowledged_by: i % 3 === 0 ? 'admin' : null, acknowledged_at: null });

function profile(meter, t) { // Wh per 15 minutes, a daily shape with noise
  const h = new Date(t).getUTCHours() + new Date(t).getUTCMinutes() / 60;
  const seed = meter.charCodeAt(meter.length - 1);
  return Math.round(120 + 180 * Math.max(0, Math.sin(((h - 6) / 24) * 2 * Math.PI)) + 60 * Math.sin(t / 5e6 + seed) + (seed % 13) * 4);
}
function readings(meter, from, to, resolution) {
  const step = 900e3;
  const start = Math.ceil(from / step) * step;
  const raw = [];
  // cumulative registers, as hes-api answers raw readings (the day's consumption so far + a base)
  const reg = (t, div) => { let acc = 1e6 / div; for (let u = Math.floor(t / 86400e3) * 86400e3; u <= t; u += step) acc += profile(meter, u) / div; return Math.round(acc + Math.floor(t / 86400e3) * 5000 / div); };
  for (let t = start; t <= Math.min(to, NOW()); t += step) {
    raw.push({ time: iso(t), channel: 'energy.active.import', obis: '1.0.1.8.0.255', value: reg(t, 1), unit: 'Wh', quality: 0, flags: [] });
    raw.push({ time: iso(t), channel: 'energy.active.export', obis: '1.0.2.8.0.255', value: reg(t, 7), unit: 'Wh', quality: 0, flags: [] });
  }
  if (resolution === 'raw' || !resolution) return raw;
  const key = (t) => { const d = new Date(t); if (resolution === 'hour') d.setUTCMinutes(0, 0, 0); else if (resolution === 'day') d.setUTCHours(0, 0, 0, 0); else { d.setUTCDate(1); d.setUTCHours(0, 0, 0, 0); } return d.getTime(); };
  const agg = new Map();
  for (const r of raw) {
    const k = `${r.channel}|${key(Date.parse(r.time))}`;
    const a = agg.get(k) || { period_start: iso(key(Date.parse(r.time))), period_end: null, channel: r.channel, total: 0, count: 0, complete: true, quality: 0, unit: 'Wh' };
    a.total += r.value; a.count++; agg.set(k, a);
  }
  return [...agg.values()];
}
function stats() {
  const today = jobs.filter((j) => Date.parse(j.created_at) > NOW() - 86400e3);
  const ok = today.filter((j) => j.state === 'succeeded').length, bad = today.filter((j) => j.state === 'failed').length;
  return { meters_total: meters.length, meters_online: meters.filter((m) => m.online).length, read_success_rate_today: ok / Math.max(1, ok + bad), completeness_today: 0.962 + Math.random() * 0.01, alarms_open: events.filter((e) => e.severity === 'alarm' && !e.acknowledged).length, jobs_queued: jobs.filter((j) => j.state === 'queued').length, jobs_running: jobs.filter((j) => j.state === 'running').length, jobs_succeeded_today: ok, jobs_failed_today: bad, readings_stored: 1234567 + Math.floor((NOW() % 1e6) / 100) };
}

function problem(res, status, title, detail) {
  res.writeHead(status, { 'content-type': 'application/problem+json' });
  res.end(JSON.stringify({ type: 'about:blank', title, status, detail }));
}
function json(res, status, body) { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); }
function list(res, items, q) {
  const limit = Math.min(1000, Number(q.get('limit')) || 50), offset = Number(q.get('offset')) || 0;
  json(res, 200, { items: items.slice(offset, offset + limit), total: items.length, limit, offset });
}
function issue(username) {
  const a = crypto.randomBytes(16).toString('hex'), r = crypto.randomBytes(16).toString('hex');
  access.set(a, username); refreshTokens.set(r, username);
  return { access_token: a, refresh_token: r, expires_in: 900, token_type: 'Bearer' };
}
const body = (req) => new Promise((ok) => { let b = ''; req.on('data', (c) => { b += c; }); req.on('end', () => { try { ok(b ? JSON.parse(b) : {}); } catch { ok(null); } }); });
const time = (v) => (v === null ? null : /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v));

const TYPES = { '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.webmanifest': 'application/manifest+json' };
function serveStatic(req, res, p) {
  let file = path.join(UI, p === '/' ? 'index.html' : p);
  if (!file.startsWith(UI) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) file = path.join(UI, 'index.html');
  res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-cache' });
  res.end(fs.readFileSync(file));
}

const server = http.createServer(async (req, res) => {
  // the headers hes-api sets on every response (crates/hes-api/src/http.rs)
  res.setHeader('content-security-policy', "default-src 'self'; frame-ancestors 'none'; base-uri 'self'");
  res.setHeader('x-content-type-options', 'nosniff');
  const url = new URL(req.url, 'http://x');
  const p = url.pathname, q = url.searchParams, m = req.method;
  if (p === '/healthz') return json(res, 200, { status: 'ok' });
  if (!p.startsWith('/api/')) return serveStatic(req, res, p);
  if (p === '/api/v1/auth/token' && m === 'POST') {
    const b = await body(req); const u = b && users.get(b.username);
    if (!u || u.password !== b.password) return problem(res, 401, 'Unauthorized', 'bad credentials');
    return json(res, 200, issue(u.username));
  }
  if (p === '/api/v1/auth/refresh' && m === 'POST') {
    const b = await body(req); const u = b && refreshTokens.get(b.refresh_token);
    if (!u) return problem(res, 401, 'Unauthorized', 'unknown refresh token');
    refreshTokens.delete(b.refresh_token); return json(res, 200, issue(u));
  }
  const who = access.get((req.headers.authorization || '').replace(/^Bearer /, ''));
  const user = who && users.get(who);
  if (!user) return problem(res, 401, 'Unauthorized', 'missing or invalid token');
  const op = ['admin', 'operator'].includes(user.role);
  const admin = user.role === 'admin';
  let mm;
  if (p === '/api/v1/me') return json(res, 200, { username: user.username, role: user.role, groups: user.groups });
  if (p === '/api/v1/stats/fleet') return json(res, 200, stats());
  if (p === '/api/v1/stats/completeness') {
    const days = Number(q.get('days')) || 7;
    return json(res, 200, { items: Array.from({ length: days }, (_, i) => ({ day: iso(NOW() - (days - 1 - i) * 86400e3).slice(0, 10), completeness: 0.9 + 0.1 * Math.abs(Math.sin(i)) })) });
  }
  if (p === '/api/v1/groups') return list(res, [1, 2, 3, 4, 5].map((i) => ({ key: 'cell', value: `cell-${i}`, meters: 10 })), q);
  if (p === '/api/v1/meters') {
    let items = meters;
    if (q.get('q')) items = items.filter((x) => (x.id + x.serial + x.host).toLowerCase().includes(q.get('q').toLowerCase()));
    if (q.get('group')) { const [k, v] = q.get('group').split('='); items = items.filter((x) => x.groups[k] === v); }
    if (q.get('status')) items = items.filter((x) => x.status === q.get('status'));
    if (q.get('online')) items = items.filter((x) => String(x.online) === q.get('online'));
    return list(res, items, q);
  }
  if ((mm = p.match(/^\/api\/v1\/meters\/([^/]+)(\/.*)?$/))) {
    const meter = meters.find((x) => x.id === decodeURIComponent(mm[1]));
    if (!meter) return problem(res, 404, 'Not Found', 'no such meter');
    const sub = mm[2] || '';
    if (!sub) return json(res, 200, { ...meter, latest: [{ channel: 'active_energy_import_total', obis: '1.0.1.8.0.255', value: 1234567, unit: 'Wh', time: iso(NOW()) }, { channel: 'voltage_l1', obis: '1.0.32.7.0.255', value: 230.4, unit: 'V', time: iso(NOW()) }] });
    if (sub === '/readings') {
      const to = time(q.get('to')) || NOW(), from = time(q.get('from')) || to - 86400e3;
      let items = readings(meter.id, from, to, q.get('resolution'));
      if (q.get('channel')) items = items.filter((r) => r.channel === q.get('channel'));
      return list(res, items, q);
    }
    if (sub === '/events') return list(res, events.filter((e) => e.meter === meter.id), q);
    if (sub === '/jobs') return list(res, jobs.filter((j) => j.meter === meter.id).reverse(), q);
    if (sub === '/commands' && m === 'POST') {
      if (!op) return problem(res, 403, 'Forbidden', `role ${user.role} may not send commands`);
      const b = await body(req);
      const job = { id: ++jobSeq, meter: meter.id, kind: b.command, state: 'queued', priority: 'on_demand', attempts: 0, created_at: iso(NOW()), finished_at: null, error: null };
      jobs.push(job); audit.push({ time: iso(NOW()), actor: user.username, action: `command.${b.command}`, target: meter.id, detail: null });
      setTimeout(() => { job.state = 'running'; job.attempts = 1; broadcast({ type: 'job', meter: job.meter, data: { job: job.id, meter: job.meter, state: 'running' } }); }, 800);
      setTimeout(() => { job.state = 'succeeded'; job.finished_at = iso(NOW()); broadcast({ type: 'job', meter: job.meter, data: { job: job.id, meter: job.meter, state: 'succeeded' } }); }, 2500);
      return json(res, 202, { job_id: job.id });
    }
  }
  if (p === '/api/v1/events') {
    let items = events;
    for (const k of ['meter', 'severity']) if (q.get(k)) items = items.filter((e) => e[k] === q.get(k));
    if (q.get('acknowledged')) items = items.filter((e) => String(e.acknowledged) === q.get('acknowledged'));
    return list(res, items, q);
  }
  if ((mm = p.match(/^\/api\/v1\/events\/([^/]+)\/ack$/)) && m === 'POST') {
    if (!op) return problem(res, 403, 'Forbidden', 'operators only');
    const e = events.find((x) => x.id === mm[1]); if (!e) return problem(res, 404, 'Not Found', 'no such event');
    Object.assign(e, { acknowledged: true, acknowledged_by: user.username, acknowledged_at: iso(NOW()) }); return json(res, 200, e);
  }
  if (p === '/api/v1/schedules' && m === 'GET') return list(res, schedules, q);
  { const run = p.match(/^\/api\/v1\/schedules\/([^/]+)\/run$/); if (run && m === 'POST') {
    if (!op) return problem(res, 403, 'Forbidden', 'operators only');
    const s = schedules.find((x) => x.name === decodeURIComponent(run[1]));
    if (!s) return problem(res, 404, 'Not Found', 'no such schedule');
    return json(res, 202, { schedule: s.name, jobs: meters.length, meters: meters.length });
  } }
  if (p === '/api/v1/jobs') {
    let items = [...jobs].reverse();
    for (const k of ['meter', 'state']) if (q.get(k)) items = items.filter((j) => j[k] === q.get(k));
    return list(res, items, q);
  }
  if ((mm = p.match(/^\/api\/v1\/jobs\/(\d+)$/))) { const j = jobs.find((x) => x.id === Number(mm[1])); return j ? json(res, 200, j) : problem(res, 404, 'Not Found', 'no such job'); }
  if (!admin && /^\/api\/v1\/(users|tokens|audit)/.test(p)) return problem(res, 403, 'Forbidden', 'admins only');
  if (p === '/api/v1/users' && m === 'GET') return list(res, [...users.values()].map(({ password, ...u }) => u), q);
  if (p === '/api/v1/users' && m === 'POST') { const b = await body(req); users.set(b.username, { ...b, created_at: iso(NOW()) }); return json(res, 201, { username: b.username, role: b.role, groups: b.groups }); }
  if ((mm = p.match(/^\/api\/v1\/users\/([^/]+)$/))) {
    const u = users.get(decodeURIComponent(mm[1])); if (!u) return problem(res, 404, 'Not Found', 'no such user');
    if (m === 'PATCH') { Object.assign(u, await body(req)); return json(res, 200, { username: u.username, role: u.role, groups: u.groups }); }
    if (m === 'DELETE') { users.delete(u.username); res.writeHead(204); return res.end(); }
  }
  if (p === '/api/v1/tokens' && m === 'GET') return list(res, tokens, q);
  if (p === '/api/v1/tokens' && m === 'POST') { const b = await body(req); const t = { id: String(tokens.length + 1), name: b.name, role: b.role, scopes: b.scopes, expires_at: iso(NOW() + (b.expires_in_days || 90) * 86400e3), revoked: false }; tokens.push(t); return json(res, 201, { ...t, secret: `hes_${crypto.randomBytes(18).toString('hex')}` }); }
  if ((mm = p.match(/^\/api\/v1\/tokens\/([^/]+)$/)) && m === 'DELETE') { const t = tokens.find((x) => x.id === mm[1]); if (t) t.revoked = true; res.writeHead(204); return res.end(); }
  if (p === '/api/v1/audit') return list(res, [...audit].reverse(), q);
  return problem(res, 404, 'Not Found', `no route ${m} ${p}`);
});

// ---- WebSocket ----
const sockets = new Set();
function frame(text) {
  const data = Buffer.from(text);
  const head = data.length < 126 ? Buffer.from([0x81, data.length]) : data.length < 65536 ? Buffer.from([0x81, 126, data.length >> 8, data.length & 255]) : null;
  return Buffer.concat([head, data]);
}
function broadcast(msg) { for (const s of sockets) if (s.sub && (s.sub.fleet || (s.sub.meters || []).includes(msg.meter))) s.write(frame(JSON.stringify(msg))); }
server.on('upgrade', (req, socket) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname !== '/api/v1/ws' || !access.has(url.searchParams.get('access_token'))) { socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n'); return; }
  const accept = crypto.createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  sockets.add(socket);
  let buf = Buffer.alloc(0);
  socket.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 2) {
      const op = buf[0] & 15; let len = buf[1] & 127; let off = 2;
      if (len === 126) { len = buf.readUInt16BE(2); off = 4; }
      if (buf.length < off + 4 + len) return;
      const mask = buf.subarray(off, off + 4);
      const payload = Buffer.from(buf.subarray(off + 4, off + 4 + len).map((b, i) => b ^ mask[i % 4]));
      buf = buf.subarray(off + 4 + len);
      if (op === 8) { sockets.delete(socket); socket.end(); return; }
      if (op === 1) { try { const msg = JSON.parse(payload.toString()); if (msg.subscribe) { socket.sub = msg.subscribe; if (socket.sub.fleet) socket.write(frame(JSON.stringify({ type: 'stats', data: stats() }))); } } catch { /* ignore */ } }
    }
  });
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => sockets.delete(socket));
});
setInterval(() => {
  const m = meters[Math.floor(Math.random() * 50)];
  m.online = Math.random() > 0.08;
  broadcast({ type: 'stats', data: stats() });
  broadcast({ type: 'reading', meter: m.id, data: { meter: m.id } });
}, 3000);

server.listen(PORT, '127.0.0.1', () => console.log(`mock hes API on http://127.0.0.1:${PORT} (ui from ${UI})`));
