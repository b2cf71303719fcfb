// Time-series charts drawn by uPlot (ui/vendor/, MIT; index.html loads it as the global uPlot).
// This wrapper keeps the app's chart contract: line or bar; several series; gaps break lines;
// drag to select a range and zoom, double-click to reset, keyboard + / - zoom, arrows pan,
// 0 resets; a tooltip. Points are {x: ms since epoch, y: number}. uPlot's canvas carries
// data-points (points in view) and data-zoomed.

const MIN = 60e3, HOUR = 3600e3, DAY = 86400e3;

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

function medianStep(xs) {
  if (xs.length < 2) return 0;
  const d = [];
  for (let i = 1; i < Math.min(xs.length, 400); i++) d.push(xs[i] - xs[i - 1]);
  d.sort((a, b) => a - b);
  return d[d.length >> 1] || 0;
}

const defined = (y) => y !== null && y !== undefined && Number.isFinite(y);
const tipTime = new Intl.DateTimeFormat(undefined, { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const tipDay = new Intl.DateTimeFormat(undefined, { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' });
const tipMonth = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'long' });

export class Chart {
  /**
   * @param {HTMLElement} container an element with class "chart" (sized by CSS)
   * @param {object} opts {type: 'line'|'bar', label, formatY(v, unit, axis), unit, bucket: 'raw'|'hour'|'day'|'month', yMax, extent, emptyText, onZoom(domain|null)}
   */
  constructor(container, opts = {}) {
    this.el = container;
    this.opts = { type: 'line', formatY: (v) => String(v), ...opts };
    this.series = [];
    this.domain = null; // zoomed [x0, x1] or null
    this.full = [Date.now() - DAY, Date.now()];
    this.u = null;
    this.touchAt = 0;
    this.tip = document.createElement('div');
    this.tip.className = 'tip';
    this.tip.hidden = true;
    this.empty = document.createElement('div');
    this.empty.className = 'chart-empty';
    this.empty.hidden = true;
    container.append(this.tip, this.empty);
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(container);
  }

  destroy() { this.ro.disconnect(); if (this.u) this.u.destroy(); this.u = null; this.el.replaceChildren(); }

  /** series: [{name, color?, unit?, points: [{x, y, note?}]}] (points sorted by x). */
  setData(series, opts = {}) {
    Object.assign(this.opts, opts);
    this.series = series.map((s, i) => ({ ...s, color: s.color || css(`--series-${(i % 4) + 1}`, '#0b63b6') }));
    // uPlot wants one x array for all series: the union, with undefined where a series has no
    // point (skipped, not a gap) and null where its value is missing (a gap).
    const xs = [...new Set(this.series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
    this.byX = this.series.map((s) => new Map(s.points.map((p) => [p.x, p])));
    const ys = this.byX.map((m) => xs.map((x) => (m.has(x) ? (defined(m.get(x).y) ? m.get(x).y : null) : undefined)));
    this.data = [xs, ...ys];
    this.step = medianStep(xs);
    let x0 = xs.length ? xs[0] : Infinity, x1 = xs.length ? xs[xs.length - 1] : -Infinity;
    if (this.opts.extent) { // the range asked for, so gaps at its ends show as such
      x0 = Math.min(x0, this.opts.extent[0]); x1 = Math.max(x1, this.opts.extent[1]);
    }
    if (!Number.isFinite(x0)) { x0 = Date.now() - DAY; x1 = Date.now(); }
    if (this.opts.type === 'bar') { const s = this.step || DAY; x0 -= s / 2; x1 += s / 2; } // room for the end bars
    if (x1 === x0) { x0 -= HOUR; x1 += HOUR; }
    this.full = [x0, x1];
    if (opts.domain !== undefined) this.domain = opts.domain;
    if (this.domain && (this.domain[1] <= x0 || this.domain[0] >= x1)) this.domain = null;
    this.gapAfter = this.step * 2.5;
    // The same kind of chart keeps its uPlot (and the hover on it) when only the data change.
    const sig = JSON.stringify([this.opts.type, this.opts.unit, this.series.map((x) => [x.name, x.color])]);
    if (this.u && sig === this.sig) {
      this.building = true;
      this.u.setData(this.data);
      this.building = false;
      this.u.setScale('x', { min: this.view[0], max: this.view[1] });
    } else {
      this.sig = sig;
      this.build();
    }
  }

  get view() { return this.domain || this.full; }

  size() {
    const r = this.el.getBoundingClientRect();
    return { width: Math.max(50, Math.floor(r.width)), height: Math.max(50, Math.floor(r.height)) };
  }

  resize() { if (this.u) this.u.setSize(this.size()); }

  /** A new uPlot for the current data and options (cheap: the data sets are small). */
  build() {
    if (this.u) this.u.destroy();
    const text = css('--muted', '#555'), grid = css('--grid', '#eee');
    const font = `12px ${css('--font', 'sans-serif')}`;
    const bar = this.opts.type === 'bar';
    const fmtAxis = (v) => this.opts.formatY(v, this.opts.unit, true);
    const measure = document.createElement('canvas').getContext('2d');
    measure.font = font;
    const chart = this;
    const opts = {
      ...this.size(),
      ms: 1,
      legend: { show: false },
      padding: [12, 12, 0, 0],
      cursor: {
        y: false,
        drag: { x: true, y: false, setScale: true, dist: 8 },
        points: { size: 9, width: 2, stroke: css('--panel', '#fff') },
        // Double-click goes back to the whole range asked for, not just the data's.
        bind: {
          dblclick: () => () => { chart.reset(); return null; },
          // A tap ends with an emulated mouseleave, which would take the tooltip away at once.
          mouseleave: (u, targ, handler) => (e) => { if (Date.now() - chart.touchAt > 1000) handler(e); return null; },
        },
      },
      select: { show: true },
      scales: {
        x: { time: true },
        y: {
          range: (u, lo, hi) => {
            if (!defined(lo)) { lo = 0; hi = 1; }
            if (bar || lo >= 0) lo = Math.min(0, lo);
            if (this.opts.yMax !== undefined) hi = Math.max(hi, this.opts.yMax);
            if (hi === lo) hi = lo + 1;
            const step = niceStep(hi - lo, this.el.clientHeight < 260 ? 4 : 5);
            return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
          },
        },
      },
      axes: [
        { stroke: text, font, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1, size: 4 } },
        {
          stroke: text, font, grid: { stroke: grid, width: 1 }, ticks: { show: false },
          values: (u, splits) => splits.map(fmtAxis),
          size: (u, values) => 14 + Math.max(24, ...(values || []).map((v) => measure.measureText(v).width)),
        },
      ],
      series: [
        {},
        ...this.series.map((s) => {
          const o = {
            label: s.name,
            stroke: s.color,
            width: bar ? 0 : 1.75,
            points: { show: (u, si, i0, i1) => !bar && u.bbox.width / devicePixelRatio / Math.max(1, i1 - i0) > 8, size: 5 },
          };
          if (bar) {
            o.fill = s.color;
            o.alpha = this.series.length > 1 ? 0.75 : 1;
            o.paths = uPlot.paths.bars({ size: [0.8 / Math.max(1, this.series.length), 64, 1], align: 0 });
          } else {
            // A step much longer than the usual one is a gap, not a line across missing data.
            o.gaps = (u, si, i0, i1, nullGaps) => {
              const x = u.data[0], y = u.data[si], out = [...(nullGaps || [])], gapAfter = this.gapAfter;
              if (!gapAfter) return out;
              let prev = -1;
              for (let i = i0; i <= i1; i++) {
                if (!defined(y[i])) continue;
                if (prev >= 0 && x[i] - x[prev] > gapAfter) out.push([Math.round(u.valToPos(x[prev], 'x', true)) + 1, Math.round(u.valToPos(x[i], 'x', true))]);
                prev = i;
              }
              return out.sort((a, b) => a[0] - b[0]);
            };
          }
          return o;
        }),
      ],
      hooks: {
        init: [(u) => {
          u.over.tabIndex = 0;
          u.over.setAttribute('role', 'img');
          u.over.addEventListener('keydown', (ev) => this.key(ev));
          u.over.addEventListener('mouseleave', () => { if (Date.now() - this.touchAt > 1000) this.tip.hidden = true; });
          this.bindTouch(u);
        }],
        setScale: [(u, key) => { if (key === 'x' && !this.building) this.scaled(u); }],
        setCursor: [(u) => this.showTip(u)],
        draw: [(u) => this.mark(u)],
      },
    };
    // uPlot first scales x to the data; the range asked for (and a kept zoom) come after.
    this.building = true;
    this.u = new uPlot(opts, this.data, this.el);
    this.building = false;
    this.el.append(this.tip, this.empty); // above uPlot's own elements
    this.u.setScale('x', { min: this.view[0], max: this.view[1] });
  }

  zoomedTo(u) {
    const { min, max } = u.scales.x;
    const [f0, f1] = this.full;
    const eps = (f1 - f0) * 1e-6;
    return min > f0 + eps || max < f1 - eps ? [min, max] : null;
  }

  /** After any change of the x scale: a drag ends in a zoom, which the page may want to know. */
  scaled(u) {
    const domain = this.zoomedTo(u);
    const changed = JSON.stringify(domain) !== JSON.stringify(this.domain);
    this.domain = domain;
    if (changed && this.opts.onZoom) this.opts.onZoom(this.domain);
  }

  /** Marks the canvas with what it shows (the UI test reads these), and the empty notice. */
  mark(u) {
    const a = u.scales.x.min, b = u.scales.x.max;
    if (a === null || a === undefined) return;
    const xs = this.data[0];
    let plotted = 0;
    for (let s = 1; s < this.data.length; s++) {
      const y = this.data[s];
      for (let i = 0; i < xs.length; i++) if (xs[i] >= a && xs[i] <= b && defined(y[i])) plotted++;
    }
    const c = u.ctx.canvas;
    c.dataset.points = String(plotted);
    c.dataset.zoomed = this.zoomedTo(u) ? 'true' : 'false';
    this.empty.hidden = plotted > 0;
    this.empty.textContent = this.opts.emptyText || 'No data in this range';
    const label = this.opts.label || 'Chart';
    u.over.setAttribute('aria-label', `${label}: ${plotted} points from ${new Date(a).toLocaleString()} to ${new Date(b).toLocaleString()}. Drag or use plus and minus to zoom, arrows to pan, 0 to reset.`);
  }

  showTip(u) {
    const i = u.cursor.idx;
    if (i === null || i === undefined || u.select.width > 0) { this.tip.hidden = true; return; }
    const x = this.data[0][i];
    const rows = this.series.map((s, si) => {
      const p = this.byX[si].get(x);
      return p && defined(p.y) ? { ...p, name: s.name, color: s.color, unit: p.unit || s.unit } : null;
    }).filter(Boolean);
    if (!rows.length) { this.tip.hidden = true; return; }
    const b = this.opts.bucket;
    const fmt = b === 'month' ? tipMonth : b === 'day' ? tipDay : tipTime;
    const head = document.createElement('div');
    head.textContent = fmt.format(new Date(x)) + (b === 'hour' ? ' (hour)' : '');
    this.tip.replaceChildren(head);
    for (const r of rows) {
      const line = document.createElement('div');
      const dot = document.createElement('i'); dot.style.background = r.color;
      const val = document.createElement('b'); val.textContent = this.opts.formatY(r.y, r.unit || this.opts.unit, false);
      line.append(dot, `${r.name}: `, val);
      if (r.note) line.append(` ${r.note}`);
      this.tip.append(line);
    }
    this.tip.hidden = false;
    // Beside the cursor, inside the chart: uPlot's cursor is relative to its plot area.
    const box = this.el.getBoundingClientRect(), over = u.over.getBoundingClientRect();
    const px = over.left - box.left + u.cursor.left, py = over.top - box.top + u.cursor.top;
    const tw = this.tip.offsetWidth, th = this.tip.offsetHeight;
    let left = px + 12; if (left + tw > box.width) left = px - tw - 12; if (left < 0) left = 0;
    this.tip.style.left = `${left}px`;
    this.tip.style.top = `${Math.max(0, py > th + 16 ? py - th - 8 : py + 16)}px`;
  }

  /** uPlot zooms with a mouse only: a horizontal finger drag zooms, a double tap resets, a tap
   *  shows the tooltip. */
  bindTouch(u) {
    let start = null, lastTap = 0;
    const at = (ev) => { const r = u.over.getBoundingClientRect(); return { x: ev.clientX - r.left, y: ev.clientY - r.top }; };
    u.over.addEventListener('pointerdown', (ev) => { if (ev.pointerType === 'touch') { start = { ...at(ev), id: ev.pointerId }; this.touchAt = Date.now(); } });
    u.over.addEventListener('pointercancel', () => { start = null; });
    u.over.addEventListener('pointerup', (ev) => {
      if (!start || start.id !== ev.pointerId) return;
      const p = at(ev), s = start; start = null;
      if (Math.abs(p.x - s.x) > 8) {
        this.zoomTo(u.posToVal(Math.min(s.x, p.x), 'x'), u.posToVal(Math.max(s.x, p.x), 'x'));
        return;
      }
      const now = Date.now();
      if (now - lastTap < 350) { lastTap = 0; this.reset(); return; }
      lastTap = now;
      u.setCursor({ left: p.x, top: p.y });
    });
  }

  zoomTo(x0, x1) {
    const [f0, f1] = this.full;
    x0 = Math.max(f0, x0); x1 = Math.min(f1, x1);
    const minSpan = Math.max(10 * MIN, this.step * 3);
    if (x1 - x0 < minSpan) { const c = (x0 + x1) / 2; x0 = c - minSpan / 2; x1 = c + minSpan / 2; }
    if (this.u) this.u.setScale('x', { min: x0, max: x1 });
  }

  reset() { if (this.domain && this.u) this.u.setScale('x', { min: this.full[0], max: this.full[1] }); }

  key(ev) {
    const [a, b] = this.view, span = b - a, mid = (a + b) / 2;
    const k = ev.key;
    if (k === '+' || k === '=') this.zoomTo(mid - span / 4, mid + span / 4);
    else if (k === '-' || k === '_') this.zoomTo(mid - span, mid + span);
    else if (k === 'ArrowLeft' && this.domain) this.zoomTo(a - span / 4, b - span / 4);
    else if (k === 'ArrowRight' && this.domain) this.zoomTo(a + span / 4, b + span / 4);
    else if (k === '0' || k === 'Escape') this.reset();
    else return;
    ev.preventDefault();
  }
}
