// Fleet dashboard: the fleet statistics live over the WebSocket (refetched as a fallback), the
// completeness per day, collection progress, recent jobs and open alarms.
import { get } from '../api.js';
import { onLive, liveState } from '../ws.js';
import { Chart } from '../chart.js';
import { h, fmtInt, fmtPct, timeEl, pill, table, errorBox, setAlarmBadge, jobKind } from '../ui.js';

// Meters online over this browser session (from the live statistics), kept across pages.
const onlineHistory = [];

const KPIS = [
  { key: 'meters_online', label: 'Meters online', value: (s) => fmtInt(s.meters_online), sub: (s) => `of ${fmtInt(s.meters_total)} · ${fmtPct(s.meters_total ? s.meters_online / s.meters_total : null)}`, tone: (s) => ratioTone(s.meters_total ? s.meters_online / s.meters_total : null, 0.95, 0.8) },
  { key: 'read_success_rate_today', label: "Today's read success", value: (s) => fmtPct(s.read_success_rate_today), sub: (s) => `${fmtInt(s.jobs_succeeded_today)} ok · ${fmtInt(s.jobs_failed_today)} failed`, tone: (s) => ratioTone(s.read_success_rate_today, 0.98, 0.9) },
  { key: 'completeness_today', label: 'Completeness today', value: (s) => fmtPct(s.completeness_today), sub: () => 'intervals received / expected', tone: (s) => ratioTone(s.completeness_today, 0.98, 0.9) },
  { key: 'alarms_open', label: 'Open alarms', value: (s) => fmtInt(s.alarms_open), sub: () => h('a', { href: '#/alarms' }, 'Review alarms'), tone: (s) => (s.alarms_open > 0 ? 'bad' : 'good') },
  { key: 'jobs_running', label: 'Jobs running', value: (s) => fmtInt(s.jobs_running), sub: (s) => `${fmtInt(s.jobs_queued)} queued`, tone: () => '' },
  { key: 'readings_stored', label: 'Readings stored', value: (s) => fmtInt(s.readings_stored), sub: () => 'all time', tone: () => '' },
];

function ratioTone(r, good, warn) {
  if (r === null || r === undefined) return '';
  return r >= good ? 'good' : r >= warn ? 'warn' : 'bad';
}

export function render(root) {
  const updated = h('span', { class: 'muted', 'aria-live': 'off' });
  const kpiEls = new Map();
  const kpis = h('section', { class: 'kpis', 'aria-label': 'Fleet figures' }, KPIS.map((k) => {
    const el = h('div', { class: 'kpi', dataset: { kpi: k.key } },
      h('div', { class: 'label' }, k.label), h('div', { class: 'value num' }, '–'), h('div', { class: 'sub' }, ' '));
    kpiEls.set(k.key, el);
    return el;
  }));
  const err = h('div');
  const progress = h('div');
  const complEl = h('div', { class: 'chart', id: 'completeness-chart' });
  const onlineEl = h('div', { class: 'chart small', id: 'online-chart' });
  const jobsBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const alarmsBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const days = h('select', { 'aria-label': 'Days shown' }, [7, 14, 30, 90].map((d) => h('option', { value: d, selected: d === 14 }, `${d} days`)));

  root.append(
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Fleet dashboard'), updated)),
    err, kpis,
    h('div', { class: 'grid grid-3' },
      h('section', { class: 'panel', 'aria-labelledby': 'h-compl' },
        h('div', { class: 'chart-bar' }, h('h2', { id: 'h-compl' }, 'Data completeness per day'), days),
        complEl,
        h('p', { class: 'chart-hint' }, 'Share of expected 15-minute intervals stored. Drag to zoom, double-click to reset.')),
      h('div', {},
        h('section', { class: 'panel', 'aria-labelledby': 'h-prog' }, h('h2', { id: 'h-prog' }, 'Collection today'), progress),
        h('section', { class: 'panel', 'aria-labelledby': 'h-online' }, h('h2', { id: 'h-online' }, 'Meters online (live)'), onlineEl))),
    h('div', { class: 'grid grid-2', style: 'margin-top:16px' },
      h('section', { class: 'panel', 'aria-labelledby': 'h-jobs' }, h('div', { class: 'chart-bar' }, h('h2', { id: 'h-jobs' }, 'Recent jobs'), h('a', { href: '#/jobs' }, 'All jobs')), jobsBox),
      h('section', { class: 'panel', 'aria-labelledby': 'h-alarms' }, h('div', { class: 'chart-bar' }, h('h2', { id: 'h-alarms' }, 'Open alarms'), h('a', { href: '#/alarms' }, 'All alarms')), alarmsBox)));

  const pctFmt = (v, _u, axis) => fmtPct(v, axis ? 0 : 1);
  const compl = new Chart(complEl, { type: 'bar', label: 'Data completeness per day', formatY: pctFmt, yMax: 1, bucket: 'day' });
  const online = new Chart(onlineEl, { type: 'line', label: 'Meters online', formatY: (v) => fmtInt(v), emptyText: 'Waiting for live figures…' });

  let stopped = false;
  let lastStats = null;

  function showStats(s) {
    if (!s || stopped) return;
    for (const k of KPIS) {
      const el = kpiEls.get(k.key);
      const value = k.value(s);
      const vEl = el.querySelector('.value');
      const changed = vEl.textContent !== value && lastStats;
      el.className = `kpi ${k.tone(s)}`;
      if (changed) { void el.offsetWidth; el.classList.add('flash'); } // a brief highlight
      vEl.textContent = value;
      el.dataset.value = String(s[k.key] ?? '');
      el.querySelector('.sub').replaceChildren(k.sub(s));
    }
    setAlarmBadge(s.alarms_open);
    const ok = s.jobs_succeeded_today || 0, bad = s.jobs_failed_today || 0, run = s.jobs_running || 0, q = s.jobs_queued || 0;
    const total = ok + bad + run + q;
    const pct = (n) => (total ? (100 * n) / total : 0);
    progress.replaceChildren(
      h('p', { class: 'num', style: 'margin:0 0 8px' }, h('b', {}, fmtPct(total ? (ok + bad) / total : null, 0)), ` of today's ${fmtInt(total)} jobs finished`),
      h('div', { class: 'progress', role: 'img', 'aria-label': `${ok} succeeded, ${bad} failed, ${run} running, ${q} queued` },
        h('span', { class: 'ok', style: `width:${pct(ok)}%` }), h('span', { class: 'bad', style: `width:${pct(bad)}%` }),
        h('span', { class: 'run', style: `width:${pct(run)}%` }), h('span', { class: 'queue', style: `width:${pct(q)}%` })),
      h('div', { class: 'legend' },
        h('span', {}, h('i', { style: 'background:#1e9e4a' }), `Succeeded ${fmtInt(ok)}`),
        h('span', {}, h('i', { style: 'background:var(--bad)' }), `Failed ${fmtInt(bad)}`),
        h('span', {}, h('i', { style: 'background:var(--series-1)' }), `Running ${fmtInt(run)}`),
        h('span', {}, h('i', { style: 'background:#9aa7b5' }), `Queued ${fmtInt(q)}`)));
    const now = Date.now();
    const last = onlineHistory[onlineHistory.length - 1];
    if (!last || now - last.x > 1000) { onlineHistory.push({ x: now, y: s.meters_online }); if (onlineHistory.length > 720) onlineHistory.shift(); }
    online.setData([{ name: 'Meters online', points: onlineHistory.slice() }]);
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}${liveState() === 'open' ? ' · live' : ''}`;
    lastStats = s;
  }

  async function loadStats() {
    try { showStats(await get('/api/v1/stats/fleet')); err.replaceChildren(); } catch (e) { err.replaceChildren(errorBox(e)); }
  }
  async function loadCompleteness() {
    try {
      const r = await get('/api/v1/stats/completeness', { days: days.value });
      const items = (r.items || []).map((d) => ({ x: new Date(`${d.day}T00:00:00`).getTime(), y: d.completeness })).sort((a, b) => a.x - b.x);
      compl.setData([{ name: 'Completeness', points: items }], { domain: null });
    } catch (e) { complEl.replaceChildren(errorBox(e)); }
  }
  async function loadJobs() {
    try {
      const r = await get('/api/v1/jobs', { limit: 8 });
      jobsBox.replaceChildren(table([
        { label: 'Meter', cell: (j) => h('a', { href: `#/meters/${encodeURIComponent(j.meter)}` }, j.meter) },
        { label: 'Kind', cell: (j) => jobKind(j.kind, j.params) },
        { label: 'State', cell: (j) => pill(j.state) },
        { label: 'Created', cell: (j) => timeEl(j.created_at, true) },
      ], r.items || [], { empty: 'No jobs yet.', caption: 'Recent jobs' }));
    } catch (e) { jobsBox.replaceChildren(errorBox(e)); }
  }
  async function loadAlarms() {
    try {
      const r = await get('/api/v1/events', { severity: 'alarm', acknowledged: false, limit: 6 });
      alarmsBox.replaceChildren(table([
        { label: 'Meter', cell: (e) => h('a', { href: `#/meters/${encodeURIComponent(e.meter)}` }, e.meter) },
        { label: 'Alarm', cell: (e) => e.description || `${e.log} ${e.code}` },
        { label: 'Time', cell: (e) => timeEl(e.time, true) },
      ], r.items || [], { empty: 'No open alarms.', caption: 'Open alarms' }));
    } catch (e) { alarmsBox.replaceChildren(errorBox(e)); }
  }

  days.addEventListener('change', loadCompleteness);
  loadStats(); loadCompleteness(); loadJobs(); loadAlarms();

  // Live: statistics arrive every few seconds; jobs and events trigger a (throttled) refetch.
  let jobsDue = 0, alarmsDue = 0;
  const offs = [
    onLive('stats', (m) => showStats(m.data)),
    onLive('job', () => { jobsDue = jobsDue || Date.now(); }),
    onLive('event', () => { alarmsDue = alarmsDue || Date.now(); }),
    // the server dropped messages for this (slow) client: catch up by refetching
    onLive('dropped', () => { loadStats(); jobsDue = jobsDue || Date.now(); alarmsDue = alarmsDue || Date.now(); }),
  ];
  let tick = 0;
  const timer = setInterval(() => {
    tick++;
    const isLive = liveState() === 'open';
    if (!isLive ? tick % 2 === 0 : tick % 10 === 0) loadStats(); // fallback: every 10 s, else every 50 s
    if (jobsDue && Date.now() - jobsDue > 2000) { jobsDue = 0; loadJobs(); } else if (tick % 6 === 0) loadJobs();
    if (alarmsDue && Date.now() - alarmsDue > 2000) { alarmsDue = 0; loadAlarms(); } else if (tick % 6 === 0) loadAlarms();
    if (tick % 60 === 0) loadCompleteness();
  }, 5000);

  return () => { stopped = true; clearInterval(timer); offs.forEach((f) => f()); compl.destroy(); online.destroy(); };
}

