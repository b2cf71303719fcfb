// Meter list: search, filters (group, status, online), pagination; filters live in the URL.
import { get } from '../api.js';
import { onLive } from '../ws.js';
import { h, field, select, table, pager, timeEl, onlinePill, pill, groupsText, errorBox, debounce, hashQuery, setHashQuery, fmtInt } from '../ui.js';

const LIMIT = 25;

export function render(root) {
  const q0 = hashQuery();
  const state = {
    q: q0.get('q') || '', group: q0.get('group') || '', status: q0.get('status') || '',
    online: q0.get('online') || '', offset: Number(q0.get('offset')) || 0,
  };
  const search = h('input', { type: 'search', name: 'q', value: state.q, placeholder: 'Serial, id or host', autocomplete: 'off' });
  const group = select('group', [['', 'All groups']], state.group);
  const status = select('status', [['', 'Any status'], ['active', 'Active'], ['inactive', 'Inactive'], ['decommissioned', 'Decommissioned']], state.status);
  const online = select('online', [['', 'Online or not'], ['true', 'Online'], ['false', 'Offline']], state.online);
  const count = h('span', { class: 'muted num', 'aria-live': 'polite' });
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));

  root.append(
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Meters'), count)),
    h('form', { class: 'filters', role: 'search', onsubmit: (e) => { e.preventDefault(); update({ q: search.value, offset: 0 }); } },
      field('Search', search, 'grow'), field('Group', group), field('Status', status), field('Online', online)),
    h('section', { class: 'panel' }, body));

  let seq = 0;
  async function load() {
    const my = ++seq;
    setHashQuery({ q: state.q, group: state.group, status: state.status, online: state.online, offset: state.offset || '' });
    try {
      const r = await get('/api/v1/meters', { q: state.q, group: state.group, status: state.status, online: state.online, limit: LIMIT, offset: state.offset });
      if (my !== seq) return;
      count.textContent = `${fmtInt(r.total)} meter${r.total === 1 ? '' : 's'}`;
      body.replaceChildren(
        table([
          { label: 'Serial', cell: (m) => h('a', { href: `#/meters/${encodeURIComponent(m.id)}` }, m.serial || m.id) },
          { label: 'Id', cell: (m) => h('span', { class: 'mono' }, m.id) },
          { label: 'Online', cell: (m) => onlinePill(m.online) },
          { label: 'Status', cell: (m) => pill(m.status) },
          { label: 'Groups', cell: (m) => groupsText(m.groups) || '–' },
          { label: 'Address', cell: (m) => h('span', { class: 'mono' }, m.host ? `${m.host}:${m.port}` : '–') },
          { label: 'Last seen', cell: (m) => timeEl(m.last_seen, true) },
        ], r.items || [], { onRow: (m) => { location.hash = `#/meters/${encodeURIComponent(m.id)}`; }, empty: 'No meter matches these filters.', caption: 'Meters' }),
        pager({ total: r.total, limit: r.limit || LIMIT, offset: r.offset || 0 }, (o) => { state.offset = o; load(); window.scrollTo(0, 0); }));
    } catch (e) { if (my === seq) body.replaceChildren(errorBox(e)); }
  }
  function update(patch) { Object.assign(state, patch); load(); }

  search.addEventListener('input', debounce(() => update({ q: search.value.trim(), offset: 0 }), 300));
  group.addEventListener('change', () => update({ group: group.value, offset: 0 }));
  status.addEventListener('change', () => update({ status: status.value, offset: 0 }));
  online.addEventListener('change', () => update({ online: online.value, offset: 0 }));

  get('/api/v1/groups', { limit: 1000 }).then((r) => {
    for (const g of r.items || []) {
      const v = `${g.key}=${g.value}`;
      group.append(h('option', { value: v, selected: v === state.group }, `${g.key}: ${g.value} (${fmtInt(g.meters)})`));
    }
  }).catch(() => { /* groups are optional for the list */ });

  load();
  // Online states change: refresh the page of meters now and then, quietly.
  let stale = false;
  const off = onLive('stats', () => { stale = true; });
  const timer = setInterval(() => { if (stale && document.visibilityState === 'visible') { stale = false; load(); } }, 30000);
  const onQuery = () => { // back/forward or a link to other filters
    const q = hashQuery();
    Object.assign(state, { q: q.get('q') || '', group: q.get('group') || '', status: q.get('status') || '', online: q.get('online') || '', offset: Number(q.get('offset')) || 0 });
    search.value = state.q; group.value = state.group; status.value = state.status; online.value = state.online;
    load();
  };
  window.addEventListener('hes:query', onQuery);
  return () => { off(); clearInterval(timer); window.removeEventListener('hes:query', onQuery); };
}
