// Jobs: filter by state and meter, live updates, cancel (operator and admin); the schedules,
// each with "Run now" (operator and admin).
import { get, post, seg, canOperate, describeError } from '../api.js';
import { onLive } from '../ws.js';
import { h, field, select, table, pager, timeEl, pill, errorBox, toast, debounce, hashQuery, setHashQuery, fmtInt, jobKind, jobId } from '../ui.js';

const LIMIT = 25;

export function render(root) {
  const q0 = hashQuery();
  const st = { state: q0.get('state') || '', meter: q0.get('meter') || '', offset: Number(q0.get('offset')) || 0 };
  const state = select('state', [['', 'Any state'], ['queued', 'Queued'], ['running', 'Running'], ['succeeded', 'Succeeded'], ['failed', 'Failed'], ['cancelled', 'Cancelled']], st.state);
  const meter = h('input', { type: 'search', name: 'meter', value: st.meter, placeholder: 'Meter id', autocomplete: 'off' });
  const count = h('span', { class: 'muted num' });
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const mayCancel = canOperate();
  const schedulesBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));

  root.append(
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Jobs'), count)),
    h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() }, field('State', state), field('Meter', meter, 'grow')),
    h('section', { class: 'panel' }, body),
    h('section', { class: 'panel', 'aria-labelledby': 'h-schedules' }, h('h2', { id: 'h-schedules' }, 'Schedules'), schedulesBox));

  const when = (s) => (s.cron ? `cron ${s.cron}` : s.every_s ? `every ${fmtInt(s.every_s)} s` : '–');
  async function loadSchedules() {
    try {
      const r = await get('/api/v1/schedules', { limit: 1000 });
      schedulesBox.replaceChildren(table([
        { label: 'Schedule', cell: (s) => h('b', {}, s.name) },
        { label: 'Read', cell: (s) => String(s.read || '').replace(/_/g, ' ') },
        { label: 'Meters', cell: (s) => (s.group ? s.group : h('span', { class: 'muted' }, 'all')) },
        { label: 'When', cell: (s) => when(s) },
        { label: 'Window', num: true, cell: (s) => `${fmtInt(s.window_s || 0)} s` },
        { label: '', cell: (s) => h('div', { class: 'row-actions' }, h('button', {
          class: 'btn btn-sm', type: 'button', disabled: !mayCancel, 'aria-label': `Run schedule ${s.name} now`,
          onclick: (ev) => runNow(s, ev.currentTarget),
        }, 'Run now')) },
      ], r.items || [], { empty: 'No schedules: an admin creates them through the API (POST /api/v1/schedules).', caption: 'Schedules' }));
    } catch (e) { schedulesBox.replaceChildren(errorBox(e)); }
  }
  async function runNow(s, btn) {
    btn.disabled = true;
    try {
      const r = await post(`/api/v1/schedules/${seg(s.name)}/run`);
      toast(`${s.name}: ${fmtInt(r.jobs)} job${r.jobs === 1 ? '' : 's'} queued for ${fmtInt(r.meters)} meter${r.meters === 1 ? '' : 's'}`);
      load();
    } catch (err) { toast(describeError(err), 'error'); }
    btn.disabled = false;
  }

  let seq = 0;
  async function load() {
    const my = ++seq;
    setHashQuery({ state: st.state, meter: st.meter, offset: st.offset || '' });
    try {
      const r = await get('/api/v1/jobs', { state: st.state, meter: st.meter, limit: LIMIT, offset: st.offset });
      if (my !== seq) return;
      count.textContent = `${fmtInt(r.total)} job${r.total === 1 ? '' : 's'}`;
      body.replaceChildren(table([
        { label: 'Job', cell: (j) => h('span', { class: 'mono' }, String(jobId(j))) },
        { label: 'Meter', cell: (j) => h('a', { href: `#/meters/${encodeURIComponent(j.meter)}` }, j.meter) },
        { label: 'Kind', cell: (j) => jobKind(j.kind, j.params) },
        { label: 'State', cell: (j) => pill(j.state) },
        { label: 'Priority', cell: (j) => (j.priority === undefined ? '–' : String(j.priority).replace(/_/g, ' ')) },
        { label: 'Attempts', num: true, cell: (j) => fmtInt(j.attempts) },
        { label: 'Created', cell: (j) => timeEl(j.created_at) },
        { label: 'Finished', cell: (j) => (j.error ? h('span', { title: j.error }, timeEl(j.finished_at), ' ', h('span', { class: 'muted' }, j.error)) : timeEl(j.finished_at)) },
        { label: '', cell: (j) => (['queued', 'running', 'retrying'].includes(j.state) ? h('div', { class: 'row-actions' }, h('button', {
          class: 'btn btn-sm', type: 'button', disabled: !mayCancel, 'aria-label': `Cancel job ${jobId(j)}`, onclick: (ev) => cancel(j, ev.currentTarget),
        }, 'Cancel')) : '') },
      ], r.items || [], { empty: 'No jobs match these filters.', caption: 'Jobs' }),
      pager({ total: r.total, limit: r.limit || LIMIT, offset: r.offset || 0 }, (o) => { st.offset = o; load(); }));
    } catch (e) { if (my === seq) body.replaceChildren(errorBox(e)); }
  }
  async function cancel(j, btn) {
    btn.disabled = true;
    try { await post(`/api/v1/jobs/${seg(jobId(j))}/cancel`); toast(`Job ${jobId(j)} cancelled`); load(); }
    catch (err) { btn.disabled = false; toast(describeError(err), 'error'); }
  }
  state.addEventListener('change', () => { st.state = state.value; st.offset = 0; load(); });
  meter.addEventListener('input', debounce(() => { st.meter = meter.value.trim(); st.offset = 0; load(); }, 300));
  load();
  loadSchedules();
  let due = false;
  const off = onLive('job', () => { due = true; });
  const timer = setInterval(() => { if (due && st.offset === 0) { due = false; load(); } }, 2000);
  const fallback = setInterval(() => { if (st.offset === 0) load(); }, 20000);
  return () => { off(); clearInterval(timer); clearInterval(fallback); };
}
