// Small DOM and formatting helpers shared by the pages.
import { describeError } from './api.js';

/** h('div', {class: 'x', onclick: fn}, child, 'text', [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'style') setStyle(el, v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'text') el.textContent = v;
      else if (k in el && typeof v !== 'string') el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}
/** Inline styles through the CSSOM: allowed by a Content-Security-Policy without 'unsafe-inline'. */
function setStyle(el, css) {
  for (const decl of String(css).split(';')) {
    const i = decl.indexOf(':');
    if (i > 0) el.style.setProperty(decl.slice(0, i).trim(), decl.slice(i + 1).trim());
  }
}
function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}
export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
export function $(sel, root = document) { return root.querySelector(sel); }

let uid = 0;
export const nextId = (p = 'f') => `${p}-${++uid}`;

/** A labelled form control: field('Search', h('input', {...})). */
export function field(labelText, control, cls) {
  if (!control.id) control.id = nextId();
  return h('div', { class: `field ${cls || ''}` }, h('label', { for: control.id }, labelText), control);
}
export function select(name, options, value) {
  return h('select', { name }, options.map(([v, t]) => h('option', { value: v, defaultSelected: String(v) === String(value ?? '') }, t)));
}

// ---- formatting ----
const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const nf0 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
export const fmtInt = (n) => (n === null || n === undefined || Number.isNaN(+n) ? '–' : nf0.format(n));
export const fmtNum = (n, digits) => (n === null || n === undefined || Number.isNaN(+n) ? '–'
  : (digits !== undefined ? new Intl.NumberFormat(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(n) : nf.format(n)));
/** 0.9834 -> "98.3 %" (ratios in the API are 0..1). */
export const fmtPct = (r, digits = 1) => (r === null || r === undefined || Number.isNaN(+r) ? '–' : `${fmtNum(r * 100, digits)} %`);

const SI = [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
/** 12345 Wh -> "12.35 kWh"; scales W, Wh, var, varh, VA; leaves V, A, Hz. */
export function fmtQty(v, unit) {
  if (v === null || v === undefined || Number.isNaN(+v)) return '–';
  if (unit && /^(W|Wh|var|varh|VA|VAh)$/.test(unit)) {
    for (const [f, p] of SI) if (Math.abs(v) >= f) return `${fmtNum(v / f)} ${p}${unit}`;
  }
  return `${fmtNum(v)}${unit ? ` ${unit}` : ''}`;
}

const dtf = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit' });
const dtfs = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
export function fmtTime(t, seconds = false) {
  t = toTime(t);
  if (!t) return '–';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : (seconds ? dtfs : dtf).format(d);
}
const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
export function fmtAgo(t) {
  if (!t) return 'never';
  const s = (new Date(t).getTime() - Date.now()) / 1000;
  if (Number.isNaN(s)) return String(t);
  const a = Math.abs(s);
  if (a < 45) return rtf.format(Math.round(s), 'second');
  if (a < 2700) return rtf.format(Math.round(s / 60), 'minute');
  if (a < 86400 * 1.5) return rtf.format(Math.round(s / 3600), 'hour');
  return rtf.format(Math.round(s / 86400), 'day');
}
/** A <time> with the local time shown and the UTC instant as title. */
export function timeEl(t, ago = false) {
  t = toTime(t);
  if (!t) return h('span', { class: 'muted' }, '–');
  return h('time', { datetime: t, title: new Date(t).toISOString() }, ago ? fmtAgo(t) : fmtTime(t));
}

const PILL = {
  online: 'ok', offline: 'bad', active: 'ok', inactive: 'warn', decommissioned: '',
  queued: '', running: 'info', retrying: 'warn', succeeded: 'ok', failed: 'bad', cancelled: 'warn',
  info: 'info', warning: 'warn', alarm: 'bad',
};
export function pill(text, kind) { return h('span', { class: `pill ${kind ?? PILL[text] ?? ''}` }, text); }
export function onlinePill(online) { return pill(online ? 'online' : 'offline'); }
export function groupsText(groups) {
  if (!groups) return '';
  if (Array.isArray(groups)) return groups.join(', ');
  return Object.entries(groups).map(([k, v]) => `${k}=${v}`).join(', ');
}

// ---- feedback ----
export function toast(message, kind = '') {
  const box = document.getElementById('toasts');
  const t = h('div', { class: `toast ${kind}` }, message);
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4500);
}
export function errorBox(e) { return h('div', { class: 'alert error', role: 'alert' }, describeError(e)); }

/** A modal confirmation; resolves true when confirmed. `danger` styles the confirm button red. */
export function confirmDialog({ title, body, confirm = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const titleId = nextId('dlg');
    const dlg = h('dialog', { 'aria-labelledby': titleId, class: 'confirm' },
      h('form', { method: 'dialog' },
        h('h2', { id: titleId }, title),
        typeof body === 'string' ? h('p', {}, body) : body,
        h('div', { class: 'btn-row' },
          h('button', { class: 'btn', value: 'cancel', type: 'submit', autofocus: true }, 'Cancel'),
          h('button', { class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, value: 'ok', type: 'submit', 'data-confirm': '' }, confirm))));
    document.body.append(dlg);
    dlg.addEventListener('close', () => { resolve(dlg.returnValue === 'ok'); dlg.remove(); });
    dlg.showModal();
  });
}

/** Pagination footer: "1–25 of 1,234" with previous/next. */
export function pager({ total, limit, offset }, go) {
  const from = total === 0 ? 0 : offset + 1;
  const to = Math.min(offset + limit, total);
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    h('span', { class: 'muted num' }, `${fmtInt(from)}–${fmtInt(to)} of ${fmtInt(total)}`),
    h('div', { class: 'btn-row' },
      h('button', { class: 'btn btn-sm', type: 'button', disabled: offset <= 0, onclick: () => go(Math.max(0, offset - limit)) }, '← Previous'),
      h('button', { class: 'btn btn-sm', type: 'button', disabled: offset + limit >= total, onclick: () => go(offset + limit) }, 'Next →')));
}

/** A table that becomes labelled cards on phones. cols: [{label, cell: (row) => node|text, num}] */
export function table(cols, rows, { onRow, empty = 'Nothing here.', caption } = {}) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'cards' },
      caption ? h('caption', { class: 'sr-only' }, caption) : null,
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : '' }, c.label)))),
      h('tbody', {}, rows.map((r) => {
        const tr = h('tr', { class: onRow ? 'clickable' : '' },
          cols.map((c) => h('td', { 'data-label': c.label, class: c.num ? 'num' : '' }, c.cell(r))));
        if (onRow) tr.addEventListener('click', (ev) => { if (!ev.target.closest('a,button,input,select')) onRow(r); });
        return tr;
      }))));
}

export function debounce(fn, ms) {
  let t = 0;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

/** Hash-route query: "#/meters?q=x" -> URLSearchParams("q=x"). */
export function hashQuery() {
  const i = location.hash.indexOf('?');
  return new URLSearchParams(i >= 0 ? location.hash.slice(i + 1) : '');
}
/** Replace the hash query without a navigation (keeps history clean). */
export function setHashQuery(params) {
  const base = location.hash.split('?')[0] || '#/';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  history.replaceState(null, '', s ? `${base}?${s}` : base);
}

/** The open-alarms count in the navigation. */
export function setAlarmBadge(n) {
  const b = document.getElementById('nav-alarms');
  if (!b || typeof n !== 'number') return;
  b.hidden = n <= 0;
  b.textContent = n > 999 ? '999+' : String(n);
  b.setAttribute('aria-label', `${n} open alarms`);
}

/** A job kind as text: the API may give "relay" or the model's {"kind":"relay","connect":false}. */
export function jobKind(k, params) {
  if (!k) return '–';
  if (k === 'relay' && params && typeof params.connect === 'boolean') return params.connect ? 'reconnect' : 'disconnect';
  if (typeof k === 'string') return k.replace(/_/g, ' ');
  if (k.kind === 'relay') return k.connect ? 'reconnect' : 'disconnect';
  return String(k.kind || '?').replace(/_/g, ' ');
}
/** Job id whichever name it has (REST "id", live JobResult "job"). */
export const jobId = (j) => (j && (j.id ?? j.job ?? j.job_id));
/** Times may be RFC 3339 text or Unix seconds (live messages carry the model's integers). */
export function toTime(t) {
  if (t === null || t === undefined || t === '') return null;
  if (typeof t === 'number') return new Date(t < 1e11 ? t * 1000 : t).toISOString();
  return t;
}
