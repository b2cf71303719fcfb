// Alarms and events: filter by severity, state and meter; acknowledge (operator and admin).
import { get, post, seg, canOperate, describeError } from '../api.js';
import { onLive } from '../ws.js';
import { h, field, select, table, pager, timeEl, pill, errorBox, toast, debounce, hashQuery, setHashQuery, fmtInt } from '../ui.js';

const LIMIT = 25;

export function render(root) {
  const q0 = hashQuery();
  const st = { severity: q0.get('severity') ?? 'alarm', acknowledged: q0.get('acknowledged') ?? 'false', meter: q0.get('meter') || '', offset: Number(q0.get('offset')) || 0 };
  const severity = select('severity', [['', 'Any severity'], ['alarm', 'Alarm'], ['warning', 'Warning'], ['info', 'Info']], st.severity);
  const acked = select('acknowledged', [['', 'Any state'], ['false', 'Open'], ['true', 'Acknowledged']], st.acknowledged);
  const meter = h('input', { type: 'search', name: 'meter', value: st.meter, placeholder: 'Meter id', autocomplete: 'off' });
  const count = h('span', { class: 'muted num' });
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const mayAck = canOperate();

  root.append(
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Alarms and events'), count)),
    h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() }, field('Severity', severity), field('State', acked), field('Meter', meter, 'grow')),
    h('section', { class: 'panel' }, body));

  let seq = 0;
  async function load() {
    const my = ++seq;
    setHashQuery({ severity: st.severity || 'any', acknowledged: st.acknowledged || 'any', meter: st.meter, offset: st.offset || '' });
    try {
      const r = await get('/api/v1/events', { severity: st.severity, acknowledged: st.acknowledged, meter: st.meter, limit: LIMIT, offset: st.offset });
      if (my !== seq) return;
      count.textContent = `${fmtInt(r.total)} event${r.total === 1 ? '' : 's'}`;
      body.replaceChildren(table([
        { label: 'Time', cell: (e) => timeEl(e.time) },
        { label: 'Meter', cell: (e) => h('a', { href: `#/meters/${encodeURIComponent(e.meter)}` }, e.meter) },
        { label: 'Severity', cell: (e) => pill(e.severity || 'info') },
        { label: 'Event', cell: (e) => e.description || `code ${e.code}` },
        { label: 'State', cell: (e) => (e.acknowledged ? h('span', {}, pill('acknowledged', 'ok'), ' ', h('span', { class: 'muted' }, `${e.acknowledged_by || ''}`)) : pill('open', e.severity === 'alarm' ? 'bad' : '')) },
        { label: '', cell: (e) => (e.acknowledged ? '' : h('div', { class: 'row-actions' }, h('button', {
          class: 'btn btn-sm', type: 'button', disabled: !mayAck, title: mayAck ? 'Acknowledge' : 'Your role may not acknowledge alarms',
          'aria-label': `Acknowledge ${e.description || 'event'} on ${e.meter}`, onclick: (ev) => ack(e, ev.currentTarget),
        }, 'Acknowledge'))) },
      ], r.items || [], { empty: 'No events match these filters.', caption: 'Events' }),
      pager({ total: r.total, limit: r.limit || LIMIT, offset: r.offset || 0 }, (o) => { st.offset = o; load(); }));
    } catch (e) { if (my === seq) body.replaceChildren(errorBox(e)); }
  }
  async function ack(e, btn) {
    btn.disabled = true;
    try { await post(`/api/v1/events/${seg(e.id)}/ack`); toast(`Acknowledged: ${e.description || e.id}`); load(); }
    catch (err) { btn.disabled = false; toast(describeError(err), 'error'); }
  }
  const q = hashQuery();
  if (q.get('severity') === 'any') st.severity = '';
  if (q.get('acknowledged') === 'any') st.acknowledged = '';
  severity.value = st.severity; acked.value = st.acknowledged;
  severity.addEventListener('change', () => { st.severity = severity.value; st.offset = 0; load(); });
  acked.addEventListener('change', () => { st.acknowledged = acked.value; st.offset = 0; load(); });
  meter.addEventListener('input', debounce(() => { st.meter = meter.value.trim(); st.offset = 0; load(); }, 300));
  load();
  let due = false;
  const off = onLive('event', () => { due = true; });
  const timer = setInterval(() => { if (due && st.offset === 0) { due = false; load(); } }, 3000);
  const fallback = setInterval(() => { if (st.offset === 0) load(); }, 30000);
  return () => { off(); clearInterval(timer); clearInterval(fallback); };
}
