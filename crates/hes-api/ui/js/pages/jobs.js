// Jobs: filter by state and meter, live updates, cancel (operator and admin).
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

  root.append(
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Jobs'), count)),
    h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() }, field('State', state), field('Meter', meter, 'grow')),
    h('section', { class: 'panel' }, body));

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
  let due = false;
  const off = onLive('job', () => { due = true; });
  const timer = setInterval(() => { if (due && st.offset === 0) { due = false; load(); } }, 2000);
  const fallback = setInterval(() => { if (st.offset === 0) load(); }, 20000);
  return () => { off(); clearInterval(timer); clearInterval(fallback); };
}
