// A time-series chart on two canvases (plot + overlay), with no library.
//   line or bar; several series; time x axis, nice y ticks; gaps break lines;
//   drag to select a range and zoom (mouse, pen, or a horizontal finger drag), double-click or
//   double-tap to reset, keyboard: + / - zoom, arrows pan, 0 resets; tooltip with a crosshair.
// Points are {x: ms since epoch, y: number}. The canvas carries data-points (plotted points).

const MIN = 60e3, HOUR = 3600e3, DAY = 86400e3;
const TIME_STEPS = [MIN, 5 * MIN, 15 * MIN, 30 * MIN, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 182 * DAY, 365 * DAY];

function css(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10) * mag;
}

/** First index with points[i].x >= x. */
function lowerBound(points, x) {
  let lo = 0, hi = points.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (points[mid].x < x) lo = mid + 1; else hi = mid; }
  return lo;
}

function medianStep(points) {
  if (points.length < 2) return 0;
  const d = [];
  const n = Math.min(points.length, 400);
  for (let i = 1; i < n; i++) d.push(points[i].x - points[i - 1].x);
  d.sort((a, b) => a - b);
  return d[d.length >> 1] || 0;
}

const pad2 = (n) => String(n).padStart(2, '0');
const MONTHS = Array.from({ length: 12 }, (_, m) => new Intl.DateTimeFormat(undefined, { month: 'short' }).format(new Date(2020, m, 1)));
function timeLabel(t, step) {
  const d = new Date(t);
  if (step >= 365 * DAY) return String(d.getFullYear());
  if (step >= 28 * DAY) return `${MONTHS[d.getMonth()]} ${d.getFullYear()}`;
  if (step >= DAY) return `${d.getDate()} ${MONTHS[d.getMonth()]}`;
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return d.getHours() === 0 && d.getMinutes() === 0 ? `${d.getDate()} ${MONTHS[d.getMonth()]}` : hm;
}
const tipTime = new Intl.DateTimeFormat(undefined, { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const tipDay = new Intl.DateTimeFormat(undefined, { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' });
const tipMonth = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'long' });

/** Time ticks aligned to local midnight/month starts where it matters. */
function timeTicks(x0, x1, maxTicks) {
  const span = x1 - x0;
  let step = TIME_STEPS[TIME_STEPS.length - 1];
  for (const s of TIME_STEPS) if (span / s <= maxTicks) { step = s; break; }
  const ticks = [];
  if (step >= 28 * DAY) {
    const months = Math.round(step / (30 * DAY)) || 1;
    const d = new Date(x0); d.setDate(1); d.setHours(0, 0, 0, 0);
    while (d.getTime() < x0) d.setMonth(d.getMonth() + 1);
    while (d.getMonth() % months) d.setMonth(d.getMonth() + 1);
    for (; d.getTime() <= x1; d.setMonth(d.getMonth() + months)) ticks.push(d.getTime());
  } else if (step >= DAY) {
    const d = new Date(x0); d.setHours(0, 0, 0, 0);
    if (d.getTime() < x0) d.setDate(d.getDate() + 1);
    const days = Math.round(step / DAY);
    for (; d.getTime() <= x1; d.setDate(d.getDate() + days)) ticks.push(d.getTime());
  } else {
    const off = new Date(x0).getTimezoneOffset() * MIN;
    let t = Math.ceil((x0 - off) / step) * step + off;
    for (; t <= x1; t += step) ticks.push(t);
  }
  return { ticks, step };
}

export class Chart {
  /**
   * @param {HTMLElement} container an element with class "chart" (sized by CSS)
   * @param {object} opts {type: 'line'|'bar', label, formatY(v, unit), unit, bucket: 'raw'|'hour'|'day'|'month', onZoom(domain|null)}
   */
  constructor(container, opts = {}) {
    this.el = container;
    this.opts = { type: 'line', formatY: (v) => String(v), ...opts };
    this.series = [];
    this.domain = null; // zoomed [x0, x1] or null
    this.full = [0, 1];
    this.hover = null;
    this.drag = null;
    this.lastTap = 0;
    this.base = document.createElement('canvas');
    this.over = document.createElement('canvas');
    this.base.setAttribute('aria-hidden', 'true');
    this.over.tabIndex = 0;
    this.over.setAttribute('role', 'img');
    this.tip = document.createElement('div');
    this.tip.className = 'tip';
    this.tip.hidden = true;
    container.append(this.base, this.over, this.tip);
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(container);
    this.bind();
    this.resize();
  }

  destroy() { this.ro.disconnect(); this.el.replaceChildren(); }

  /** series: [{name, color?, unit?, points: [{x, y}]}] (points sorted by x). */
  setData(series, opts = {}) {
    Object.assign(this.opts, opts);
    this.series = series.map((s, i) => ({ ...s, color: s.color || css(`--series-${(i % 4) + 1}`, '#0b63b6') }));
    let x0 = Infinity, x1 = -Infinity;
    for (const s of this.series) if (s.points.length) { x0 = Math.min(x0, s.points[0].x); x1 = Math.max(x1, s.points[s.points.length - 1].x); }
    if (this.opts.extent) { // the range asked for, so gaps at its ends show as such
      x0 = Math.min(x0, this.opts.extent[0]); x1 = Math.max(x1, this.opts.extent[1]);
    }
    if (!Number.isFinite(x0)) { x0 = Date.now() - DAY; x1 = Date.now(); }
    if (this.opts.type === 'bar') { // room for the first and last bar
      const step = medianStep(this.series[0] ? this.series[0].points : []) || DAY;
      x0 -= step / 2; x1 += step / 2;
    }
    if (x1 === x0) { x0 -= HOUR; x1 += HOUR; }
    if (opts.domain !== undefined) this.domain = opts.domain;
    this.full = [x0, x1];
    if (this.domain && (this.domain[1] <= x0 || this.domain[0] >= x1)) this.domain = null;
    this.hover = null;
    this.draw();
  }

  get view() { return this.domain || this.full; }

  resize() {
    const r = this.el.getBoundingClientRect();
    this.w = Math.max(50, r.width); this.h = Math.max(50, r.height);
    this.dpr = window.devicePixelRatio || 1;
    for (const c of [this.base, this.over]) { c.width = Math.round(this.w * this.dpr); c.height = Math.round(this.h * this.dpr); }
    this.draw();
  }

  layout() {
    // The left margin fits the widest y label (measured when the data was set).
    const m = { l: Math.max(36, (this.labelW || 40) + 12), r: 12, t: 12, b: 28 };
    return { ...m, pw: this.w - m.l - m.r, ph: this.h - m.t - m.b };
  }

  xToPx(x, L) { const [a, b] = this.view; return L.l + ((x - a) / (b - a)) * L.pw; }
  pxToX(px, L) { const [a, b] = this.view; return a + ((px - L.l) / L.pw) * (b - a); }

  yRange() {
    const [a, b] = this.view;
    let lo = Infinity, hi = -Infinity;
    for (const s of this.series) {
      const p = s.points;
      for (let i = Math.max(0, lowerBound(p, a) - 1); i < p.length && p[i].x <= b + 1; i++) {
        const y = p[i].y; if (y === null || !Number.isFinite(y)) continue;
        if (y < lo) lo = y; if (y > hi) hi = y;
      }
    }
    if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
    if (this.opts.type === 'bar' || lo >= 0) lo = Math.min(0, lo);
    if (this.opts.yMax !== undefined) hi = Math.max(hi, this.opts.yMax);
    if (hi === lo) hi = lo + 1;
    const step = niceStep(hi - lo, this.h < 260 ? 4 : 5);
    return { lo: Math.floor(lo / step) * step, hi: Math.ceil(hi / step) * step, step };
  }

  draw() {
    if (!this.w) return;
    const ctx = this.base.getContext('2d');
    const L = this.layout();
    const dpr = this.dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.w, this.h);
    const text = css('--muted', '#555'), grid = css('--grid', '#eee');
    ctx.font = `12px ${css('--font', 'sans-serif')}`;
    const Y = this.yRange();
    this.Y = Y;
    let widest = 0;
    for (let v = Y.lo; v <= Y.hi + Y.step / 2; v += Y.step) widest = Math.max(widest, ctx.measureText(this.opts.formatY(v, this.opts.unit, true)).width);
    if (Math.abs(widest - (this.labelW || 0)) > 2) { this.labelW = widest; return this.draw(); }
    const yPx = (v) => L.t + L.ph - ((v - Y.lo) / (Y.hi - Y.lo)) * L.ph;
    this.yPx = yPx;

    // y grid and labels
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    ctx.strokeStyle = grid; ctx.lineWidth = 1; ctx.fillStyle = text;
    for (let v = Y.lo; v <= Y.hi + Y.step / 2; v += Y.step) {
      const y = Math.round(yPx(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(L.l, y); ctx.lineTo(L.l + L.pw, y); ctx.stroke();
      ctx.fillText(this.opts.formatY(v, this.opts.unit, true), L.l - 6, y);
    }
    // x ticks
    const [a, b] = this.view;
    const { ticks, step } = timeTicks(a, b, Math.max(3, Math.floor(L.pw / 62)));
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    for (const t of ticks) {
      const x = Math.round(this.xToPx(t, L)) + 0.5;
      if (x < L.l - 1 || x > L.l + L.pw + 1) continue;
      ctx.beginPath(); ctx.moveTo(x, L.t); ctx.lineTo(x, L.t + L.ph); ctx.stroke();
      const label = timeLabel(t, step);
      const half = ctx.measureText(label).width / 2;
      ctx.fillText(label, Math.min(Math.max(x, half + 2), this.w - half - 2), L.t + L.ph + 6); // never cut at an edge
    }

    // data, clipped to the plot area
    ctx.save();
    ctx.beginPath(); ctx.rect(L.l, L.t, L.pw, L.ph); ctx.clip();
    let plotted = 0;
    const ns = this.series.length;
    this.series.forEach((s, si) => {
      const p = s.points;
      const i0 = Math.max(0, lowerBound(p, a) - 1);
      const i1 = Math.min(p.length, lowerBound(p, b) + 1);
      const stepX = medianStep(p);
      ctx.fillStyle = s.color; ctx.strokeStyle = s.color;
      if (this.opts.type === 'bar') {
        const slot = stepX ? (stepX / (b - a)) * L.pw : 12;
        const bw = Math.max(1, (slot * 0.8) / ns);
        const base = yPx(Math.max(Y.lo, 0));
        for (let i = i0; i < i1; i++) {
          const { x, y } = p[i]; if (y === null || !Number.isFinite(y)) continue;
          const cx = this.xToPx(x, L) - (slot * 0.8) / 2 + si * bw;
          const top = yPx(y);
          ctx.fillRect(cx, Math.min(top, base), bw, Math.max(1, Math.abs(base - top)));
          if (x >= a && x <= b) plotted++;
        }
      } else {
        ctx.lineWidth = 1.75; ctx.lineJoin = 'round';
        const gap = stepX * 2.5;
        ctx.beginPath();
        let pen = false, prev = -Infinity, visible = 0;
        for (let i = i0; i < i1; i++) {
          const { x, y } = p[i];
          if (y === null || !Number.isFinite(y)) { pen = false; continue; }
          const px = this.xToPx(x, L), py = yPx(y);
          if (pen && gap && x - prev > gap) pen = false;
          if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
          pen = true; prev = x;
          if (x >= a && x <= b) visible++;
        }
        ctx.stroke();
        plotted += visible;
        if (visible && L.pw / visible > 8) { // few points: mark them
          for (let i = i0; i < i1; i++) {
            const { x, y } = p[i]; if (y === null || !Number.isFinite(y)) continue;
            ctx.beginPath(); ctx.arc(this.xToPx(x, L), yPx(y), 2.5, 0, Math.PI * 2); ctx.fill();
          }
        }
      }
    });
    ctx.restore();
    // axis line
    ctx.strokeStyle = text; ctx.globalAlpha = 0.5;
    ctx.beginPath(); ctx.moveTo(L.l, L.t + L.ph + 0.5); ctx.lineTo(L.l + L.pw, L.t + L.ph + 0.5); ctx.stroke();
    ctx.globalAlpha = 1;
    if (!plotted) {
      ctx.fillStyle = text; ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
      ctx.font = `14px ${css('--font', 'sans-serif')}`;
      ctx.fillText(this.opts.emptyText || 'No data in this range', L.l + L.pw / 2, L.t + L.ph / 2);
    }
    this.plotted = plotted;
    this.over.dataset.points = String(plotted);
    this.over.dataset.zoomed = this.domain ? 'true' : 'false';
    const label = this.opts.label || 'Chart';
    this.over.setAttribute('aria-label', `${label}: ${plotted} points from ${new Date(a).toLocaleString()} to ${new Date(b).toLocaleString()}. Drag or use plus and minus to zoom, arrows to pan, 0 to reset.`);
    this.drawOverlay();
  }

  drawOverlay() {
    const ctx = this.over.getContext('2d');
    const L = this.layout();
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.w, this.h);
    if (this.drag && Math.abs(this.drag.x1 - this.drag.x0) > 2) {
      ctx.fillStyle = css('--select', 'rgba(0,0,255,.15)');
      const x = Math.min(this.drag.x0, this.drag.x1);
      ctx.fillRect(x, L.t, Math.abs(this.drag.x1 - this.drag.x0), L.ph);
      this.tip.hidden = true;
      return;
    }
    if (!this.hover) { this.tip.hidden = true; return; }
    const { x, rows } = this.hover;
    const px = this.xToPx(x, L);
    ctx.strokeStyle = css('--muted', '#555'); ctx.globalAlpha = 0.6; ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(Math.round(px) + 0.5, L.t); ctx.lineTo(Math.round(px) + 0.5, L.t + L.ph); ctx.stroke();
    ctx.setLineDash([]); ctx.globalAlpha = 1;
    for (const r of rows) {
      if (r.y === null || !Number.isFinite(r.y)) continue;
      ctx.fillStyle = r.color; ctx.strokeStyle = css('--panel', '#fff'); ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(this.xToPx(r.x, L), this.yPx(r.y), 4.5, 0, Math.PI * 2); ctx.fill(); ctx.stroke();
    }
    const b = this.opts.bucket;
    const fmt = b === 'month' ? tipMonth : b === 'day' ? tipDay : tipTime;
    this.tip.replaceChildren();
    const head = document.createElement('div');
    head.textContent = fmt.format(new Date(x)) + (b === 'hour' ? ' (hour)' : '');
    this.tip.append(head);
    for (const r of rows) {
      const line = document.createElement('div');
      const dot = document.createElement('i'); dot.style.background = r.color;
      const val = document.createElement('b'); val.textContent = this.opts.formatY(r.y, r.unit || this.opts.unit, false);
      line.append(dot, `${r.name}: `, val);
      if (r.note) line.append(` ${r.note}`);
      this.tip.append(line);
    }
    this.tip.hidden = false;
    const tw = this.tip.offsetWidth, th = this.tip.offsetHeight;
    let left = px + 12; if (left + tw > this.w) left = px - tw - 12; if (left < 0) left = 0;
    this.tip.style.left = `${left}px`;
    this.tip.style.top = `${Math.max(0, L.t + 4 + (this.hover.py > L.t + th + 10 ? 0 : L.ph - th - 8))}px`;
  }

  nearest(px, py) {
    const L = this.layout();
    const x = this.pxToX(px, L);
    let best = null;
    for (const s of this.series) {
      const p = s.points; if (!p.length) continue;
      const i = lowerBound(p, x);
      for (const j of [i - 1, i]) {
        if (j < 0 || j >= p.length) continue;
        const d = Math.abs(p[j].x - x);
        if (!best || d < best.d) best = { d, x: p[j].x };
      }
    }
    if (!best) return null;
    const [a, b] = this.view;
    if (best.x < a || best.x > b) return null;
    const rows = this.series.map((s) => {
      const i = lowerBound(s.points, best.x);
      const pt = s.points[i] && s.points[i].x === best.x ? s.points[i] : null;
      return pt ? { name: s.name, color: s.color, unit: s.unit, x: pt.x, y: pt.y, note: pt.note } : null;
    }).filter(Boolean);
    return { x: best.x, rows, py };
  }

  zoomTo(x0, x1) {
    const [f0, f1] = this.full;
    x0 = Math.max(f0, x0); x1 = Math.min(f1, x1);
    const minSpan = Math.max(10 * MIN, medianStep(this.series[0] ? this.series[0].points : []) * 3);
    if (x1 - x0 < minSpan) { const c = (x0 + x1) / 2; x0 = c - minSpan / 2; x1 = c + minSpan / 2; }
    this.domain = (x0 <= f0 && x1 >= f1) ? null : [x0, x1];
    this.hover = null;
    this.draw();
    if (this.opts.onZoom) this.opts.onZoom(this.domain);
  }
  reset() { if (this.domain) { this.domain = null; this.hover = null; this.draw(); if (this.opts.onZoom) this.opts.onZoom(null); } }

  bind() {
    const c = this.over;
    const pos = (ev) => { const r = c.getBoundingClientRect(); return { x: ev.clientX - r.left, y: ev.clientY - r.top }; };
    c.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0) return;
      const p = pos(ev);
      const L = this.layout();
      if (p.x < L.l || p.x > L.l + L.pw) return;
      this.drag = { x0: p.x, x1: p.x, y0: p.y, id: ev.pointerId, type: ev.pointerType };
      c.setPointerCapture(ev.pointerId);
    });
    c.addEventListener('pointermove', (ev) => {
      const p = pos(ev);
      if (this.drag && this.drag.id === ev.pointerId) {
        this.drag.x1 = Math.max(this.layout().l, Math.min(p.x, this.layout().l + this.layout().pw));
        this.drawOverlay();
        return;
      }
      if (ev.pointerType === 'touch') return;
      this.hover = this.nearest(p.x, p.y);
      this.drawOverlay();
    });
    const end = (ev) => {
      if (!this.drag || this.drag.id !== ev.pointerId) return;
      const d = this.drag; this.drag = null;
      const L = this.layout();
      if (Math.abs(d.x1 - d.x0) > 8) {
        const a = this.pxToX(Math.min(d.x0, d.x1), L), b = this.pxToX(Math.max(d.x0, d.x1), L);
        this.zoomTo(a, b);
      } else if (ev.type === 'pointerup') {
        const now = Date.now();
        if (d.type === 'touch' && now - this.lastTap < 350) { this.lastTap = 0; this.reset(); return; }
        this.lastTap = now;
        const p = pos(ev);
        this.hover = this.nearest(p.x, p.y);
        this.drawOverlay();
      } else this.drawOverlay();
    };
    c.addEventListener('pointerup', end);
    c.addEventListener('pointercancel', end);
    c.addEventListener('pointerleave', (ev) => { if (ev.pointerType !== 'touch' && !this.drag) { this.hover = null; this.drawOverlay(); } });
    c.addEventListener('dblclick', () => this.reset());
    c.addEventListener('keydown', (ev) => {
      const [a, b] = this.view, span = b - a, mid = (a + b) / 2;
      const k = ev.key;
      if (k === '+' || k === '=') this.zoomTo(mid - span / 4, mid + span / 4);
      else if (k === '-' || k === '_') this.zoomTo(mid - span, mid + span);
      else if (k === 'ArrowLeft' && this.domain) this.zoomTo(a - span / 4, b - span / 4);
      else if (k === 'ArrowRight' && this.domain) this.zoomTo(a + span / 4, b + span / 4);
      else if (k === '0' || k === 'Escape') this.reset();
      else return;
      ev.preventDefault();
    });
  }
}
