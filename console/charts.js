// Calls over time, success rate and latency percentiles, overall or for one tool, from
// GET /admin/stats/timeseries.

import { h, field, errorText, fill } from './dom.js';
import { api, query } from './api.js';
import { bars, lines } from './chart.js';

const WINDOWS = ['hour', 'day', 'week'];

export async function render(root, { params }) {
  const [toolField, tool] = field('Tool', h('input', { type: 'text', name: 'tool', value: params.get('tool') || '' }), 'name or id; empty for every tool');
  const chosen = WINDOWS.includes(params.get('window')) ? params.get('window') : 'hour';
  const [windowField, windowSelect] = field('Window', h('select', { name: 'window' },
    WINDOWS.map((w) => h('option', { value: w, selected: w === chosen, text: `last ${w}` }))));
  const refresh = h('input', { type: 'checkbox', id: 'charts-live', checked: true });
  const form = h('form', { class: 'filters', 'aria-label': 'Chart options' }, toolField, windowField,
    h('div', { class: 'field check' }, refresh, h('label', { for: refresh.id, text: 'Live' })),
    h('div', { class: 'field' }, h('button', { type: 'submit', text: 'Show' })));
  const out = h('div', { class: 'charts' });
  root.append(h('h1', { text: 'Charts' }), form, out);
  const draw = () => seriesCharts(out, { tool: tool.value.trim(), window: windowSelect.value });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    history.replaceState(null, '', `#/charts${query({ tool: tool.value.trim(), window: windowSelect.value })}`);
    draw();
  });
  windowSelect.addEventListener('change', () => form.requestSubmit());
  await draw();
  const timer = setInterval(() => {
    if (refresh.checked && !document.hidden) draw();
  }, 5000);
  return () => clearInterval(timer);
}

/** Draws the three charts of one series into `container`. */
export async function seriesCharts(container, { tool, window }) {
  let series;
  try {
    series = await api(`/admin/stats/timeseries${query({ tool, window })}`);
  } catch (err) {
    fill(container, h('p', { class: 'error', text: `No series: ${errorText(err)}` }));
    return;
  }
  const buckets = series.buckets;
  const starts = buckets.map((b) => b.start);
  const total = buckets.reduce((sum, b) => sum + b.calls, 0);
  const failed = buckets.reduce((sum, b) => sum + b.errors + b.timeouts, 0);
  const width = series.bucket_seconds >= 3600 ? `${series.bucket_seconds / 3600} h` : `${series.bucket_seconds / 60} min`;
  fill(container,
    h('p', { class: 'summary', 'data-calls': total, text: `${total} calls, ${failed} failed, in the last ${series.window} (intervals of ${width})` }),
    figure('Calls', bars(`Calls per interval in the last ${series.window}: ${total}`, starts, [
      { name: 'successful', class: 'ok', values: buckets.map((b) => b.calls - b.errors - b.timeouts) },
      { name: 'failed', class: 'bad', values: buckets.map((b) => b.errors + b.timeouts) },
    ]), [['ok', 'successful'], ['bad', 'failed']]),
    figure('Success rate', lines('Success rate per interval', starts, [
      { class: 'ok', values: buckets.map((b) => (b.calls ? (b.calls - b.errors - b.timeouts) / b.calls : null)) },
    ], (v) => `${Math.round(v * 100)}%`, 1), [['ok', 'success rate']]),
    figure('Latency', lines('Latency percentiles per interval', starts, [
      { class: 'p50', values: buckets.map((b) => b.p50_duration_ms) },
      { class: 'p95', values: buckets.map((b) => b.p95_duration_ms) },
    ], (v) => `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`), [['p50', 'p50'], ['p95', 'p95']]),
    h('details', {}, h('summary', { text: 'The numbers' }), table(buckets)));
}

function figure(title, chart, legend) {
  return h('figure', { class: 'chart-figure' },
    h('figcaption', {}, title, ' ', legend.map(([cls, name]) => h('span', { class: `key ${cls}`, text: name }))),
    chart);
}

function table(buckets) {
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, ['Start', 'Calls', 'Errors', 'Timeouts', 'p50 ms', 'p95 ms'].map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, buckets.filter((b) => b.calls).map((b) => h('tr', {},
      h('th', { scope: 'row', text: new Date(b.start).toLocaleString() }),
      [b.calls, b.errors, b.timeouts, b.p50_duration_ms?.toFixed(2), b.p95_duration_ms?.toFixed(2)].map((v) => h('td', { text: v ?? '—' })))))));
}
