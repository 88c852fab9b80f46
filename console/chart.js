// Small SVG charts of a time series: bars (stacked counts) and lines (several series).

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 400;
const HEIGHT = 190;
const PAD = { left: 48, right: 8, top: 10, bottom: 22 };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child);
  return el;
}

function frame(label, maxValue, format) {
  const root = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': label, class: 'chart' });
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  for (const fraction of [0, 0.5, 1]) {
    const y = PAD.top + plotHeight * (1 - fraction);
    root.append(svg('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y, class: 'grid' }));
    const text = svg('text', { x: PAD.left - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' });
    text.textContent = format(maxValue * fraction);
    root.append(text);
  }
  return root;
}

function timeLabels(root, starts) {
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const picks = [0, Math.floor((starts.length - 1) / 2), starts.length - 1];
  for (const [i, index] of picks.entries()) {
    const x = PAD.left + (plotWidth * (index + 0.5)) / starts.length;
    const text = svg('text', { x, y: HEIGHT - 6, class: 'axis', 'text-anchor': ['start', 'middle', 'end'][i] });
    text.textContent = new Date(starts[index]).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
    root.append(text);
  }
}

/** Stacked bars: `series` is [{ name, class, values }], drawn bottom-up. */
export function bars(label, starts, series) {
  const totals = starts.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  const max = Math.max(1, ...totals);
  const root = frame(label, max, (v) => String(Math.round(v)));
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const step = plotWidth / starts.length;
  starts.forEach((start, i) => {
    let base = 0;
    for (const s of series) {
      const value = s.values[i] || 0;
      if (!value) continue;
      const height = (plotHeight * value) / max;
      const rect = svg('rect', {
        x: PAD.left + i * step + step * 0.1,
        y: PAD.top + plotHeight - base - height,
        width: Math.max(1, step * 0.8),
        height,
        class: s.class,
      });
      rect.append(svg('title'));
      rect.firstChild.textContent = `${new Date(start).toLocaleString()}: ${value} ${s.name}`;
      root.append(rect);
      base += height;
    }
  });
  timeLabels(root, starts);
  return root;
}

/** Lines with gaps where a value is missing (null). */
export function lines(label, starts, series, format, fixedMax) {
  const values = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  const max = fixedMax ?? Math.max(1, ...values);
  const root = frame(label, max, format);
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const step = plotWidth / starts.length;
  for (const s of series) {
    let path = '';
    let drawing = false;
    s.values.forEach((value, i) => {
      if (value === null || value === undefined) {
        drawing = false;
        return;
      }
      const x = PAD.left + step * (i + 0.5);
      const y = PAD.top + plotHeight * (1 - value / max);
      path += `${drawing ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)} `;
      root.append(svg('circle', { cx: x, cy: y, r: 2.5, class: s.class }));
      drawing = true;
    });
    if (path) root.append(svg('path', { d: path, class: `${s.class} line` }));
  }
  return root;
}
