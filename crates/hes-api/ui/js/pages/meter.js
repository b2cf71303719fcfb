// Meter detail: facts, commands (with confirmation), the load profile chart (zoom, resolution,
// channel, CSV), latest values, events and jobs, live for this meter.
import { get, post, seg, canOperate, currentUser, describeError, accessToken } from '../api.js';
import { onLive, subscribe } from '../ws.js';
import { Chart } from '../chart.js';
import { h, field, table, timeEl, pill, onlinePill, groupsText, errorBox, fmtQty, fmtInt, confirmDialog, toast, jobKind, jobId, toTime } from '../ui.js';

const DAY = 86400e3;
const RANGES = [['1d', '24 h', DAY], ['7d', '7 days', 7 * DAY], ['30d', '30 days', 30 * DAY], ['365d', '1 year', 365 * DAY]];
const RESOLUTIONS = [['raw', 'Raw'], ['hour', 'Hour'], ['day', 'Day'], ['month', 'Month']];
const PAGE = 1000;
const MAX_PAGES = 40;

const COMMANDS = [
  { command: 'read', label: 'Read now', title: 'Read the meter now?', body: 'Reads registers and instantaneous values from the meter now.', confirm: 'Read now' },
  { command: 'disconnect', label: 'Disconnect', danger: true, title: 'Disconnect the supply?', body: 'Opens the meter\'s relay: the customer loses power until it is reconnected.', confirm: 'Disconnect' },
  { command: 'reconnect', label: 'Reconnect', title: 'Reconnect the supply?', body: 'Closes the meter\'s relay and restores the supply.', confirm: 'Reconnect' },
  { command: 'clock_sync', label: 'Clock sync', title: 'Synchronise the clock?', body: 'Sets the meter\'s clock to the head-end\'s time and reports the drift.', confirm: 'Sync clock' },
  { command: 'key_rotation', label: 'Rotate keys', title: 'Rotate the meter\'s keys?', body: 'Replaces the meter\'s encryption and authentication keys by key transfer; the new keys are sealed in the head-end\'s registry. Sessions after it use the new keys.', confirm: 'Rotate keys' },
  { command: 'firmware_upgrade', label: 'Firmware upgrade', danger: true, title: 'Upgrade the meter\'s firmware?', body: 'Transfers the image block by block, has the meter verify it, and activates it (the meter restarts).', confirm: 'Upgrade', input: { name: 'image', label: 'Image identifier', placeholder: 'hes-demo-fw-2.0' } },
];

/** Consumption per interval from a cumulative register: the difference to the previous reading,
 *  none after a gap (more than two intervals) or across a reset (negative step). */
function deltas(points) {
  const out = [];
  let step = Infinity;
  for (let i = 1; i < Math.min(points.length, 50); i++) step = Math.min(step, points[i].x - points[i - 1].x || Infinity);
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1], b = points[i];
    const d = b.y - a.y;
    if (b.x - a.x > 2 * step || d < 0 || !Number.isFinite(d)) continue;
    out.push({ x: b.x, y: d, note: b.note, unit: b.unit });
  }
  return out;
}

/** A resolution that gives a readable number of points for a range. */
function defaultResolution(span) { return span <= 7 * DAY ? 'raw' : span <= 60 * DAY ? 'hour' : 'day'; }
function preferChannel(chs) {
  const score = (c) => (/import|\+a|active.*(in|plus)/i.test(c) ? 4 : 0) + (/energy|wh/i.test(c) ? 2 : 0) + (/active/i.test(c) ? 1 : 0) - (/export|reactive/i.test(c) ? 3 : 0);
  return [...chs].sort((a, b) => score(b) - score(a) || a.localeCompare(b))[0];
}

export function render(root, { params }) {
  const id = params[0];
  const base = `/api/v1/meters/${seg(id)}`;
  const st = { range: '7d', resolution: 'raw', channel: '', channels: [], anchor: Date.now(), meter: null, unit: '', pendingJob: null, zoom: null, view: 'interval' };
  let stopped = false;

  const title = h('h1', {}, id);
  const badges = h('div', { class: 'btn-row' });
  const facts = h('dl', { class: 'facts' });
  const err = h('div');
  const cmdBox = h('div', { class: 'stack' });
  const cmdResult = h('div', { 'aria-live': 'polite', dataset: { testid: 'command-result' } });
  const chartEl = h('div', { class: 'chart', id: 'profile-chart' });
  const chartMsg = h('div', { 'aria-live': 'polite' });
  const summary = h('p', { class: 'muted num', style: 'margin:8px 0 0' });
  const latestBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const eventsBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const jobsBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const channelSel = h('select', { name: 'channel' });
  const rangeSeg = h('div', { class: 'seg', role: 'group', 'aria-label': 'Time range' });
  const resSeg = h('div', { class: 'seg', role: 'group', 'aria-label': 'Resolution' });
  // Energy registers are cumulative: raw readings show as consumption per interval (the
  // difference to the previous reading) or as the register itself.
  const viewSeg = h('div', { class: 'seg', role: 'group', 'aria-label': 'Show' },
    h('button', { type: 'button', 'aria-pressed': 'true', dataset: { key: 'interval' }, onclick: () => setView('interval') }, 'Per interval'),
    h('button', { type: 'button', 'aria-pressed': 'false', dataset: { key: 'register' }, onclick: () => setView('register') }, 'Register'));
  const viewField = h('div', { class: 'field fixed', hidden: true }, h('span', { class: 'sr-only' }, 'Show'), viewSeg);
  const resetBtn = h('button', { class: 'btn btn-sm', type: 'button', hidden: true, onclick: () => chart.reset() }, 'Reset zoom');
  const csvBtn = h('button', { class: 'btn btn-sm', type: 'button', onclick: downloadCsv }, 'CSV');

  for (const [key, label] of RANGES) rangeSeg.append(h('button', { type: 'button', 'aria-pressed': String(key === st.range), dataset: { key }, onclick: () => setRange(key) }, label));
  for (const [key, label] of RESOLUTIONS) resSeg.append(h('button', { type: 'button', 'aria-pressed': String(key === st.resolution), dataset: { key }, onclick: () => setResolution(key) }, label));

  // Commands: operators and admins; a viewer sees them disabled with the reason.
  const allowed = canOperate();
  const user = currentUser();
  cmdBox.append(h('div', { class: 'btn-row' }, COMMANDS.map((c) =>
    h('button', { class: `btn ${c.danger ? 'btn-danger' : ''}`, type: 'button', disabled: !allowed, dataset: { command: c.command }, onclick: () => runCommand(c) }, c.label))));
  if (!allowed) cmdBox.append(h('p', { class: 'alert warn', dataset: { testid: 'commands-refused' } }, `Commands are not available to your role (${user ? user.role : 'unknown'}): you can view this meter but not change it.`));
  cmdBox.append(cmdResult);

  root.append(
    h('p', { style: 'margin:0 0 8px' }, h('a', { href: '#/meters' }, '← Meters')),
    h('div', { class: 'page-head' }, h('div', {}, title, badges)),
    err,
    h('div', { class: 'grid grid-3' },
      h('section', { class: 'panel', 'aria-labelledby': 'h-profile' },
        h('div', { class: 'chart-bar' }, h('h2', { id: 'h-profile', style: 'margin:0' }, 'Load profile'), h('div', { class: 'btn-row' }, resetBtn, csvBtn)),
        h('div', { class: 'filters', style: 'margin-bottom:8px' },
          h('div', { class: 'field fixed' }, h('span', { class: 'sr-only' }, 'Range'), rangeSeg),
          h('div', { class: 'field fixed' }, h('span', { class: 'sr-only' }, 'Resolution'), resSeg),
          viewField,
          field('Channel', channelSel)),
        chartMsg, chartEl, summary,
        h('p', { class: 'chart-hint' }, 'Drag across the chart to zoom (a horizontal swipe on a phone), double-click or double-tap to reset. Keys: + − ← → 0.')),
      h('div', {},
        h('section', { class: 'panel', 'aria-labelledby': 'h-meter' }, h('h2', { id: 'h-meter' }, 'Meter'), facts),
        h('section', { class: 'panel', 'aria-labelledby': 'h-cmd' }, h('h2', { id: 'h-cmd' }, 'Commands'), cmdBox))),
    h('div', { class: 'grid grid-2', style: 'margin-top:16px' },
      h('section', { class: 'panel', 'aria-labelledby': 'h-latest' }, h('h2', { id: 'h-latest' }, 'Registers and latest values'), latestBox),
      h('section', { class: 'panel', 'aria-labelledby': 'h-jobs' }, h('h2', { id: 'h-jobs' }, 'Jobs'), jobsBox)),
    h('section', { class: 'panel', style: 'margin-top:16px', 'aria-labelledby': 'h-events' }, h('h2', { id: 'h-events' }, 'Events'), eventsBox));

  const chart = new Chart(chartEl, {
    type: 'line', label: 'Load profile', formatY: (v, unit, axis) => fmtQty(v, axis ? shortUnit(unit) : unit),
    onZoom: (d) => { st.zoom = d; resetBtn.hidden = !d; },
  });
  function shortUnit(u) { return u; }

  // ---- meter facts and latest values ----
  async function loadMeter() {
    try {
      const m = await get(base);
      if (stopped) return;
      st.meter = m;
      title.textContent = m.serial || m.id;
      document.title = `${m.serial || m.id} · HES`;
      badges.replaceChildren(onlinePill(m.online), pill(m.status));
      facts.replaceChildren(
        h('dt', {}, 'Id'), h('dd', { class: 'mono' }, m.id),
        h('dt', {}, 'Serial'), h('dd', { class: 'mono' }, m.serial || '–'),
        h('dt', {}, 'Address'), h('dd', { class: 'mono' }, m.host ? `${m.host}:${m.port}` : '–'),
        h('dt', {}, 'Groups'), h('dd', {}, groupsText(m.groups) || '–'),
        h('dt', {}, 'Last seen'), h('dd', {}, timeEl(m.last_seen), m.last_seen ? [' (', timeEl(m.last_seen, true), ')'] : null));
      const latest = m.latest || [];
      latestBox.replaceChildren(table([
        { label: 'Channel', cell: (r) => r.channel || '–' },
        { label: 'OBIS', cell: (r) => h('span', { class: 'mono' }, r.obis) },
        { label: 'Value', num: true, cell: (r) => h('span', { class: 'num' }, fmtQty(r.value, r.unit)) },
        { label: 'Time', cell: (r) => timeEl(r.time) },
      ], latest, { empty: 'No values read yet.', caption: 'Latest values' }));
      // The data's "now": simulated fleets may run on their own clock.
      let anchor = 0;
      for (const r of latest) { const t = Date.parse(toTime(r.time)); if (t > anchor) anchor = t; }
      const seen = Date.parse(toTime(m.last_seen) || '');
      if (seen > anchor) anchor = seen;
      return anchor || Date.now();
    } catch (e) {
      err.replaceChildren(errorBox(e));
      return Date.now();
    }
  }

  // ---- the load profile ----
  function window_() {
    const span = RANGES.find((r) => r[0] === st.range)[2];
    const to = st.anchor + 60e3;
    return { from: new Date(to - span).toISOString().replace(/\.\d{3}Z$/, 'Z'), to: new Date(to).toISOString().replace(/\.\d{3}Z$/, 'Z') };
  }

  async function fetchAll(query) {
    const items = [];
    for (let page = 0; page < MAX_PAGES; page++) {
      const r = await get(`${base}/readings`, { ...query, limit: PAGE, offset: page * PAGE });
      const got = r.items || [];
      items.push(...got);
      if (got.length < PAGE || items.length >= (r.total ?? 0)) break;
    }
    return items;
  }

  async function discoverChannels() {
    // Daily totals over a year name every channel cheaply.
    const to = new Date(st.anchor + DAY).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const from = new Date(st.anchor - 360 * DAY).toISOString().replace(/\.\d{3}Z$/, 'Z');
    let chs = new Set();
    try {
      const r = await get(`${base}/readings`, { from, to, resolution: 'day', limit: PAGE });
      for (const it of r.items || []) if (it.channel) chs.add(it.channel);
      if (!chs.size) {
        const w = window_();
        const raw = await get(`${base}/readings`, { ...w, resolution: 'raw', limit: PAGE });
        for (const it of raw.items || []) if (it.channel) chs.add(it.channel);
      }
    } catch { /* loadProfile shows the error */ }
    st.channels = [...chs].sort();
    if (!st.channel || !chs.has(st.channel)) st.channel = st.channels.length ? preferChannel(st.channels) : '';
    channelSel.replaceChildren(...(st.channels.length ? st.channels : ['']).map((c) => h('option', { value: c, selected: c === st.channel }, c || 'All channels')));
  }

  const units = new Map(); // channel -> unit (aggregates carry none)
  async function unitOf(channel, w) {
    if (!channel || units.has(channel)) return units.get(channel) || '';
    try {
      const r = await get(`${base}/readings`, { from: new Date(st.anchor - 360 * DAY).toISOString().replace(/\.\d{3}Z$/, 'Z'), to: w.to, resolution: 'raw', channel, limit: 1 });
      const it = (r.items || [])[0];
      units.set(channel, (it && it.unit) || '');
    } catch { units.set(channel, ''); }
    return units.get(channel);
  }

  let seq = 0;
  async function loadProfile() {
    const my = ++seq;
    chartMsg.replaceChildren(h('p', { class: 'muted', style: 'margin:0 0 4px' }, 'Loading…'));
    const w = window_();
    try {
      const items = await fetchAll({ ...w, resolution: st.resolution, channel: st.channel || undefined });
      if (my !== seq || stopped) return;
      const raw = st.resolution === 'raw';
      st.unit = raw ? '' : await unitOf(st.channel, w);
      if (my !== seq || stopped) return;
      const byChannel = new Map();
      for (const it of items) {
        const ch = it.channel || 'value';
        if (st.channel && ch !== st.channel) continue;
        if (!byChannel.has(ch)) byChannel.set(ch, []);
        const t = Date.parse(toTime(raw ? it.time : it.period_start));
        const y = raw ? it.value : it.total;
        const flags = it.flags && it.flags.length ? `(${it.flags.join(', ')})` : (!raw && it.complete === false ? '(incomplete)' : '');
        byChannel.get(ch).push({ x: t, y: typeof y === 'number' ? y : Number(y), note: flags, unit: it.unit });
        if (it.unit) { st.unit = it.unit; units.set(ch, it.unit); }
      }
      const cumulative = raw && /h$/.test(st.unit || '');
      viewField.hidden = !cumulative;
      const perInterval = cumulative && st.view === 'interval';
      const series = [...byChannel.entries()].map(([name, points]) => {
        points.sort((a, b) => a.x - b.x);
        return { name: perInterval ? `${name} per interval` : name, unit: st.unit, points: perInterval ? deltas(points) : points };
      });
      const many = series.reduce((a, x) => a + x.points.length, 0) > 200;
      // The chart starts at the first data when the meter has less history than the range.
      const firstX = series.reduce((a, x) => (x.points.length ? Math.min(a, x.points[0].x) : a), Infinity);
      chart.setData(series, { type: !raw || (perInterval && !many) ? 'bar' : 'line', unit: st.unit, bucket: st.resolution, domain: null, extent: [Math.max(Date.parse(w.from), firstX), Date.parse(w.to)] });
      resetBtn.hidden = true;
      const n = series.reduce((a, s) => a + s.points.length, 0);
      chartMsg.replaceChildren();
      if (!n) summary.textContent = `No readings between ${new Date(w.from).toLocaleString()} and ${new Date(w.to).toLocaleString()}.`;
      else {
        const sum = series[0].points.reduce((a, p) => a + (Number.isFinite(p.y) ? p.y : 0), 0);
        const max = series[0].points.reduce((a, p) => Math.max(a, Number.isFinite(p.y) ? p.y : -Infinity), -Infinity);
        const additive = /h$/.test(st.unit || '') && (!raw || perInterval);
        const what = raw ? (perInterval ? 'intervals' : 'readings') : `${st.resolution}ly periods`;
        const since = firstX > Date.parse(w.from) + 2 * DAY / 96 ? ` since ${new Date(firstX).toLocaleString()}` : '';
        summary.textContent = raw && !perInterval
          ? `${fmtInt(n)} ${what}${since} · from ${fmtQty(series[0].points[0].y, st.unit)} to ${fmtQty(series[0].points[series[0].points.length - 1].y, st.unit)}`
          : `${fmtInt(n)} ${what}${since} · ${additive ? `total ${fmtQty(sum, st.unit)} · ` : ''}max ${fmtQty(max, st.unit)}${raw ? ' per interval' : ''}`;
      }
    } catch (e) {
      if (my !== seq) return;
      chartMsg.replaceChildren(errorBox(e));
      chart.setData([], {});
    }
  }

  function pressed(segEl, key) { for (const b of segEl.children) b.setAttribute('aria-pressed', String(b.dataset.key === key)); }
  function setRange(key) {
    st.range = key;
    st.resolution = defaultResolution(RANGES.find((r) => r[0] === key)[2]);
    pressed(rangeSeg, key); pressed(resSeg, st.resolution);
    loadProfile();
  }
  function setView(key) { st.view = key; pressed(viewSeg, key); loadProfile(); }
  function setResolution(key) { st.resolution = key; pressed(resSeg, key); loadProfile(); }
  channelSel.addEventListener('change', () => { st.channel = channelSel.value; loadProfile(); });

  async function downloadCsv() {
    const w = window_();
    const q = new URLSearchParams({ ...w, resolution: st.resolution, format: 'csv', limit: String(PAGE) });
    if (st.channel) q.set('channel', st.channel);
    try {
      const res = await fetch(`${base}/readings?${q}`, { headers: { Authorization: `Bearer ${accessToken()}`, Accept: 'text/csv' } });
      if (!res.ok) throw new Error(`CSV export failed (${res.status})`);
      const url = URL.createObjectURL(await res.blob());
      const a = h('a', { href: url, download: `${id}-${st.resolution}-${st.range}.csv` });
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 5000);
    } catch (e) { toast(e.message, 'error'); }
  }

  // ---- events and jobs ----
  async function loadEvents() {
    try {
      const r = await get(`${base}/events`, { limit: 20 });
      eventsBox.replaceChildren(table([
        { label: 'Time', cell: (e) => timeEl(e.time) },
        { label: 'Severity', cell: (e) => pill(e.severity || 'info') },
        { label: 'Event', cell: (e) => e.description || `code ${e.code}` },
        { label: 'Log', cell: (e) => h('span', { class: 'mono' }, `${e.log ?? ''}${e.code !== undefined ? ` #${e.code}` : ''}`) },
        { label: 'Acknowledged', cell: (e) => (e.acknowledged ? `by ${e.acknowledged_by || '?'}` : (e.severity === 'alarm' ? pill('open', 'bad') : '–')) },
      ], r.items || [], { empty: 'No events.', caption: 'Events' }));
    } catch (e) { eventsBox.replaceChildren(errorBox(e)); }
  }
  async function loadJobs() {
    try {
      const r = await get(`${base}/jobs`, { limit: 20 });
      jobsBox.replaceChildren(table([
        { label: 'Job', cell: (j) => h('span', { class: 'mono' }, String(jobId(j))) },
        { label: 'Kind', cell: (j) => jobKind(j.kind, j.params) },
        { label: 'State', cell: (j) => pill(j.state) },
        { label: 'Created', cell: (j) => timeEl(j.created_at, true) },
        { label: 'Result', cell: (j) => (j.error ? h('span', { class: 'muted' }, j.error) : j.finished_at ? timeEl(j.finished_at, true) : '–') },
      ], r.items || [], { empty: 'No jobs for this meter.', caption: 'Jobs' }));
      if (st.pendingJob) { const j = (r.items || []).find((x) => String(jobId(x)) === String(st.pendingJob.id)); if (j) showJobState(j.state, j.error); }
    } catch (e) { jobsBox.replaceChildren(errorBox(e)); }
  }

  // ---- commands ----
  async function runCommand(c) {
    const input = c.input ? h('input', { type: 'text', name: c.input.name, required: true, value: c.input.placeholder || '', 'aria-label': c.input.label, maxlength: '128' }) : null;
    const ok = await confirmDialog({ title: c.title, body: h('div', {}, h('p', {}, c.body),
      input ? h('label', { class: 'field' }, h('span', {}, c.input.label), input) : null,
      h('p', {}, 'Meter: ', h('b', {}, st.meter ? (st.meter.serial || id) : id))), confirm: c.confirm, danger: c.danger });
    if (!ok) return;
    const params = {};
    if (input) {
      const v = input.value.trim();
      if (!v) { cmdResult.replaceChildren(h('div', { class: 'alert error', role: 'alert' }, `${c.input.label} is required.`)); return; }
      params[c.input.name] = v;
    }
    const btns = cmdBox.querySelectorAll('button[data-command]');
    btns.forEach((b) => { b.disabled = true; });
    cmdResult.replaceChildren(h('p', { class: 'muted' }, `Sending ${c.label.toLowerCase()}…`));
    try {
      const r = await post(`${base}/commands`, { command: c.command, params });
      const jid = r.job_id ?? jobId(r);
      st.pendingJob = { id: jid, label: c.label };
      showJobState('queued');
      toast(`${c.label}: job ${jid} accepted`);
      loadJobs();
      pollJob(jid);
    } catch (e) {
      cmdResult.replaceChildren(h('div', { class: 'alert error', role: 'alert', dataset: { status: String(e.status ?? '') } },
        e.status === 403 ? `Refused (403): ${e.detail || e.title || 'your role may not send commands to this meter.'}` : describeError(e)));
    } finally { btns.forEach((b) => { b.disabled = !allowed; }); }
  }
  function showJobState(state, error) {
    if (!st.pendingJob) return;
    const { id: jid, label } = st.pendingJob;
    const final = ['succeeded', 'failed', 'cancelled'].includes(state);
    cmdResult.replaceChildren(h('div', { class: `alert ${state === 'failed' ? 'error' : 'info'}`, dataset: { job: String(jid), state } },
      `${label}: job `, h('b', { class: 'mono' }, String(jid)), ' accepted · ', pill(state), error ? ` ${error}` : '',
      ' ', h('a', { href: '#/jobs' }, 'Jobs')));
    if (final) st.pendingJob.done = true;
  }
  async function pollJob(jid) {
    for (let i = 0; i < 60 && !stopped && st.pendingJob && String(st.pendingJob.id) === String(jid) && !st.pendingJob.done; i++) {
      await new Promise((r) => setTimeout(r, i < 10 ? 1500 : 5000));
      try { const j = await get(`/api/v1/jobs/${seg(jid)}`); if (!stopped) showJobState(j.state, j.error); } catch { /* keep the last state */ }
    }
  }

  // ---- live ----
  subscribe({ meters: [id], fleet: true });
  let readingsDue = false, jobsDue = false, eventsDue = false;
  const offs = [
    onLive('reading', (m) => { if (m.meter === id) readingsDue = true; }),
    onLive('event', (m) => { if (m.meter === id) eventsDue = true; }),
    onLive('job', (m) => {
      if (m.meter !== id) return;
      jobsDue = true;
      const d = m.data || {};
      if (st.pendingJob && String(jobId(d)) === String(st.pendingJob.id) && d.state) showJobState(d.state, d.error);
    }),
  ];
  const timer = setInterval(() => {
    if (jobsDue) { jobsDue = false; loadJobs(); }
    if (eventsDue) { eventsDue = false; loadEvents(); }
    if (readingsDue) { readingsDue = false; loadMeter(); }
  }, 3000);

  (async () => {
    st.anchor = await loadMeter();
    await discoverChannels();
    loadProfile();
  })();
  loadEvents(); loadJobs();

  return () => { stopped = true; clearInterval(timer); offs.forEach((f) => f()); chart.destroy(); subscribe({ fleet: true }); };
}
