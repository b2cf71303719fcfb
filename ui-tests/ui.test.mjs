// Browser test of the hes web UI: Debian's Chromium, headless, driven by playwright-core.
// Run by scripts/ui-test, which starts `hes demo --http` and creates the users. Environment:
//   HES_URL             base URL of the running server (http://127.0.0.1:PORT)
//   HES_OPERATOR        user:password of an operator    HES_VIEWER   user:password of a viewer
//   HES_UI_ARTIFACTS    where screenshots go (created)  CHROMIUM     the browser (/usr/bin/chromium)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = (process.env.HES_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const [OP_USER, OP_PASS] = (process.env.HES_OPERATOR || 'operator:operator-password').split(/:(.*)/s);
const [VW_USER, VW_PASS] = (process.env.HES_VIEWER || 'viewer:viewer-password').split(/:(.*)/s);
const [AD_USER, AD_PASS] = (process.env.HES_ADMIN || `admin:${process.env.HES_ADMIN_PASSWORD || 'admin-password'}`).split(/:(.*)/s);
const OUT = process.env.HES_UI_ARTIFACTS || path.join(process.env.HOME || '.', '.cache/hes/artifacts/ui');
const WAIT = Number(process.env.HES_UI_WAIT_MS || 90000); // data may take a while to arrive in a fresh demo
fs.mkdirSync(OUT, { recursive: true });

const DESKTOP = { width: 1366, height: 800 };
const PHONE = { width: 390, height: 844 };
let browser;
let meterId = null;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
});
after(async () => { if (browser) await browser.close(); });

/** A page whose console errors, uncaught exceptions and failed requests are collected. */
async function openPage(viewport, phone = false) {
  const context = await browser.newContext({
    viewport, deviceScaleFactor: phone ? 2 : 1, isMobile: phone, hasTouch: phone,
    serviceWorkers: 'allow', locale: 'en-GB', timezoneId: 'UTC',
  });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()} @ ${JSON.stringify(m.location())}`); });
  page.on('pageerror', (e) => problems.push(`exception: ${e.message}`));
  page.on('requestfailed', (r) => { const f = r.failure(); if (!(f && /ERR_ABORTED/.test(f.errorText))) problems.push(`request failed: ${r.url()} ${f && f.errorText}`); });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`); });
  const live = { stats: 0, types: new Set() };
  page.on('websocket', (ws) => ws.on('framereceived', (f) => {
    try { const m = JSON.parse(f.payload); live.types.add(m.type); if (m.type === 'stats') live.stats++; } catch { /* binary */ }
  }));
  return { context, page, problems, live };
}

async function login(page, user, pass) {
  await page.goto(`${BASE}/#/login`);
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password').fill(pass);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForSelector('#topbar:not([hidden])', { timeout: 15000 });
}

async function shot(page, name) {
  await page.waitForTimeout(400); // let a resize/flash animation settle
  await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
}

async function dashboardFilled(page) {
  await page.waitForFunction(() => {
    const el = document.querySelector('[data-kpi="meters_online"]');
    return el && Number(el.dataset.value) > 0;
  }, null, { timeout: WAIT, polling: 500 });
  return Number(await page.getAttribute('[data-kpi="meters_online"]', 'data-value'));
}

async function chartPoints(page, selector) {
  await page.waitForFunction((sel) => {
    const c = document.querySelector(`${sel} canvas[data-points]`);
    return c && Number(c.dataset.points) > 0;
  }, selector, { timeout: WAIT, polling: 500 });
  return Number(await page.getAttribute(`${selector} canvas[data-points]`, 'data-points'));
}

async function noHorizontalOverflow(page, width = PHONE.width) {
  // With isMobile the layout viewport grows to fit wide content, so compare with the device width.
  const { sw, wide } = await page.evaluate(() => ({
    sw: document.documentElement.scrollWidth,
    wide: [...document.querySelectorAll('main *')].filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).slice(0, 5).map((e) => `${e.tagName.toLowerCase()}.${e.className}`),
  }));
  assert.ok(sw <= width + 1, `page is ${sw}px wide on a ${width}px screen; too wide: ${wide.join(', ')}`);
}

/** An online meter with readings: the first online one of the list. */
async function pickMeter(page) {
  await page.goto(`${BASE}/#/meters?online=true`);
  const link = page.locator('table tbody tr td a[href^="#/meters/"]').first();
  await link.waitFor({ timeout: WAIT });
  const href = await link.getAttribute('href');
  return decodeURIComponent(href.replace('#/meters/', ''));
}

test('operator: dashboard fills, meter chart draws, zoom, a disconnect and a firmware upgrade succeed (desktop)', async () => {
  const { context, page, problems, live } = await openPage(DESKTOP);
  try {
    await login(page, OP_USER, OP_PASS);
    const online = await dashboardFilled(page);
    assert.ok(online > 0, 'meters online > 0');
    await page.waitForSelector('#live[data-state="open"]', { timeout: 15000 }); // the WebSocket is up
    for (let i = 0; i < 60 && live.stats === 0; i++) await page.waitForTimeout(500);
    assert.ok(live.stats > 0, `fleet statistics arrive over the WebSocket (got ${[...live.types].join(', ') || 'nothing'})`);
    await chartPoints(page, '#completeness-chart').catch(() => 0); // drawn when the store has days
    await shot(page, 'desktop-dashboard');

    meterId = await pickMeter(page);
    await shot(page, 'desktop-meters');

    await page.locator('table tbody tr td a[href^="#/meters/"]').first().click();
    await page.waitForURL(/#\/meters\/.+/);
    const points = await chartPoints(page, '#profile-chart');
    assert.ok(points > 0, 'load profile chart has plotted points');

    // zoom by drag-select, reset on double-click
    const box = await page.locator('#profile-chart canvas[data-points]').boundingBox();
    await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2, { steps: 8 });
    await page.mouse.up();
    assert.equal(await page.getAttribute('#profile-chart canvas[data-points]', 'data-zoomed'), 'true', 'zoomed after a drag');
    await page.mouse.move(box.x + box.width * 0.55, box.y + box.height / 2);
    await page.waitForSelector('#profile-chart .tip:not([hidden])', { timeout: 5000 });
    await page.mouse.dblclick(box.x + box.width * 0.5, box.y + box.height / 2);
    assert.equal(await page.getAttribute('#profile-chart canvas[data-points]', 'data-zoomed'), 'false', 'reset on double-click');
    // hourly totals as bars, then back to raw
    await page.click('.seg[aria-label="Resolution"] button[data-key="hour"]');
    await page.waitForFunction(() => document.querySelector('#profile-chart canvas[data-points]').dataset.points !== '0' && !document.querySelector('main').textContent.includes('Loading…'), null, { timeout: 20000 });
    assert.ok(Number(await page.getAttribute('#profile-chart canvas[data-points]', 'data-points')) > 0, 'hourly totals drawn');
    await page.click('.seg[aria-label="Resolution"] button[data-key="raw"]');
    await chartPoints(page, '#profile-chart');
    await page.waitForFunction(() => !document.querySelector('main').textContent.includes('Loading…'), null, { timeout: 20000 });
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.4);
    await shot(page, 'desktop-meter');

    // disconnect with confirmation
    await page.click('button[data-command="disconnect"]');
    const dialog = page.locator('dialog[open]');
    await dialog.waitFor({ timeout: 5000 });
    assert.match(await dialog.innerText(), /Disconnect/);
    await dialog.locator('button[data-confirm]').click();
    const result = page.locator('[data-testid="command-result"] [data-job]');
    await result.waitFor({ timeout: 20000 });
    const job = await result.getAttribute('data-job');
    assert.ok(job && job !== 'undefined', `a job id (${job})`);
    assert.match(await result.innerText(), /accepted/);
    console.log(`# disconnect accepted as job ${job} for meter ${meterId}; ${online} meters online; ${points} points plotted`);
    await page.waitForSelector(`[data-testid="command-result"] [data-job="${job}"][data-state="succeeded"]`, { timeout: 60000 });

    // a firmware upgrade: the dialog asks for the image (the demo ships one); the meter takes it
    await page.click('button[data-command="firmware_upgrade"]');
    await dialog.waitFor({ timeout: 5000 });
    assert.equal(await dialog.locator('input[name="image"]').inputValue(), 'hes-demo-fw-2.0');
    await dialog.locator('button[data-confirm]').click();
    const fw = page.locator('[data-testid="command-result"] [data-job]');
    await page.waitForFunction((prev) => {
      const el = document.querySelector('[data-testid="command-result"] [data-job]');
      return el && el.dataset.job !== prev;
    }, job, { timeout: 20000 });
    const fwJob = await fw.getAttribute('data-job');
    await page.waitForSelector(`[data-testid="command-result"] [data-job="${fwJob}"][data-state="succeeded"]`, { timeout: 120000 });
    console.log(`# firmware upgrade job ${fwJob} succeeded`);

    // the pages that remain: alarms, jobs, admin is hidden for operators
    await page.goto(`${BASE}/#/jobs`);
    await page.waitForSelector('main table, main .empty', { timeout: 15000 });
    // a schedule run now: its jobs are queued (the list of schedules comes from the API)
    const runNow = page.locator('section[aria-labelledby="h-schedules"] button:has-text("Run now")').first();
    await runNow.waitFor({ timeout: 15000 });
    await runNow.click();
    await page.waitForSelector('.toast:has-text("queued for")', { timeout: 15000 });
    console.log(`# ${await page.locator('.toast:has-text("queued for")').first().innerText()}`);
    await page.goto(`${BASE}/#/alarms`);
    await page.waitForSelector('main table, main .empty', { timeout: 15000 });
    const ack = page.locator('main table button:has-text("Acknowledge")').first();
    if (await ack.count()) { // acknowledge one open alarm
      const before = await page.locator('main table tbody tr').count();
      await ack.click();
      await page.waitForSelector('.toast:has-text("Acknowledged")', { timeout: 10000 });
      console.log(`# acknowledged one of ${before} open alarms`);
    }
    assert.equal(await page.isVisible('#nav a[data-nav="admin"]'), false, 'no admin link for an operator');
    assert.deepEqual(problems, [], 'no console errors or failed requests');
  } finally { await context.close(); }
});

test('phone (390×844): dashboard, meter list and meter detail fit, the menu collapses', async () => {
  const { context, page, problems } = await openPage(PHONE, true);
  try {
    await login(page, OP_USER, OP_PASS);
    await dashboardFilled(page);
    assert.equal(await page.isVisible('#nav'), false, 'navigation collapsed');
    await page.click('#nav-toggle');
    assert.equal(await page.isVisible('#nav a[data-nav="meters"]'), true, 'menu opens');
    await page.click('#nav-toggle');
    await noHorizontalOverflow(page);
    await shot(page, 'phone-dashboard');
    await page.goto(`${BASE}/#/meters`);
    await page.waitForSelector('table.cards tbody tr', { timeout: WAIT });
    await noHorizontalOverflow(page);
    await shot(page, 'phone-meters');
    await page.goto(`${BASE}/#/meters/${encodeURIComponent(meterId || await pickMeter(page))}`);
    await chartPoints(page, '#profile-chart');
    await noHorizontalOverflow(page);
    // a tap shows the tooltip
    const box = await page.locator('#profile-chart canvas[data-points]').boundingBox();
    await page.touchscreen.tap(box.x + box.width * 0.6, box.y + box.height / 2);
    await shot(page, 'phone-meter');
    assert.deepEqual(problems, [], 'no console errors or failed requests');
  } finally { await context.close(); }
});

test('viewer: commands refused', async () => {
  const { context, page, problems } = await openPage(DESKTOP);
  try {
    await login(page, VW_USER, VW_PASS);
    await dashboardFilled(page);
    // refresh before expiry: pretend the access token expires in 30 s and reload
    const before = await page.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem('hes.session'));
      s.expires_at = Date.now() + 30000;
      sessionStorage.setItem('hes.session', JSON.stringify(s));
      return s.refresh_token;
    });
    await page.reload();
    await page.waitForSelector('#topbar:not([hidden])', { timeout: 15000 });
    const after = await page.evaluate(() => JSON.parse(sessionStorage.getItem('hes.session')));
    // (the JWT itself may be byte-identical within the same second; the refresh token rotates)
    assert.notEqual(after.refresh_token, before, 'refreshed through /api/v1/auth/refresh');
    assert.ok(after.expires_at - Date.now() > 5 * 60e3, 'the new token lasts');
    await dashboardFilled(page);
    await page.goto(`${BASE}/#/meters/${encodeURIComponent(meterId || await pickMeter(page))}`);
    await page.waitForSelector('button[data-command="disconnect"]');
    assert.equal(await page.isDisabled('button[data-command="disconnect"]'), true, 'disconnect disabled for a viewer');
    assert.match(await page.innerText('[data-testid="commands-refused"]'), /not available to your role \(viewer\)/);
    // and the server refuses too, whatever the UI shows
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('hes.session')).access_token);
    const res = await fetch(`${BASE}/api/v1/meters/${encodeURIComponent(meterId)}/commands`, {
      method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ command: 'disconnect', params: {} }),
    });
    assert.equal(res.status, 403, 'the API answers 403 to a viewer');
    await shot(page, 'desktop-meter-viewer');
    assert.deepEqual(problems, [], 'no console errors or failed requests');
  } finally { await context.close(); }
});

test('admin: users, tokens (shown once, revoked) and the audit log', async () => {
  const { context, page, problems } = await openPage(DESKTOP);
  try {
    await login(page, AD_USER, AD_PASS);
    assert.equal(await page.isVisible('#nav a[data-nav="admin"]'), true, 'admin link for an admin');
    await page.click('#nav a[data-nav="admin"]');
    await page.waitForSelector('section[aria-labelledby="h-users"] table', { timeout: 15000 });
    assert.match(await page.innerText('section[aria-labelledby="h-users"]'), new RegExp(OP_USER));
    const tokens = page.locator('section[aria-labelledby="h-tokens"]');
    await tokens.getByLabel('Name').fill(`ui-test-${Date.now()}`);
    await tokens.getByRole('button', { name: 'Create token' }).click();
    const secret = tokens.locator('.secret');
    await secret.waitFor({ timeout: 10000 });
    assert.ok((await secret.innerText()).length >= 16, 'the secret is shown');
    await tokens.locator('button:has-text("Revoke")').first().click();
    await page.locator('dialog[open] button[data-confirm]').click();
    await page.waitForSelector('.toast:has-text("revoked")', { timeout: 10000 });
    await page.waitForSelector('section[aria-labelledby="h-audit"] table', { timeout: 15000 });
    await shot(page, 'desktop-admin');
    assert.deepEqual(problems, [], 'no console errors or failed requests');
  } finally { await context.close(); }
});

test('PWA: manifest, icons and service worker are served', async () => {
  const man = await (await fetch(`${BASE}/manifest.webmanifest`)).json();
  assert.equal(man.display, 'standalone');
  for (const icon of man.icons) {
    const r = await fetch(new URL(icon.src, BASE));
    assert.equal(r.status, 200, icon.src);
    assert.equal(r.headers.get('content-type').split(';')[0], icon.type, icon.src);
  }
  const sw = await fetch(`${BASE}/sw.js`);
  assert.equal(sw.status, 200);
  assert.match(sw.headers.get('content-type'), /javascript/);
  const { context, page, problems } = await openPage(DESKTOP);
  try {
    await page.goto(`${BASE}/`);
    const ok = await page.evaluate(async () => { const r = await navigator.serviceWorker.ready; return !!r.active; });
    assert.ok(ok, 'service worker active');
    // Chromium's own installability check (a test context is incognito, which alone is allowed)
    await page.reload();
    const cdp = await context.newCDPSession(page);
    const { errors } = await cdp.send('Page.getAppManifest');
    assert.deepEqual(errors, [], 'manifest parses without errors');
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    assert.deepEqual(installabilityErrors.map((e) => e.errorId).filter((id) => id !== 'in-incognito'), [], 'installable');
    assert.deepEqual(problems, []);
  } finally { await context.close(); }
});
