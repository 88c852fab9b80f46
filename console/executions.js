// The execution log, newest first, filtered by tool, status and time; refreshed while
// the page is open.

import { h, field, when, ms, pre, errorText, fill } from './dom.js';
import { api, query } from './api.js';

const SINCE = { '': 'any time', hour: 'last hour', day: 'last day', week: 'last week' };
const SPAN_MS = { hour: 3600e3, day: 86400e3, week: 604800e3 };
const LIMIT = 50;

export async function render(root, { params }) {
  const [toolField, tool] = field('Tool', h('input', { type: 'text', name: 'tool', value: params.get('tool') || '' }), 'name or id');
  const [statusField, status] = field('Status', h('select', { name: 'status' },
    ['', 'success', 'error', 'timeout'].map((s) => h('option', { value: s, selected: s === (params.get('status') || ''), text: s || 'any' }))));
  const [sinceField, since] = field('Started', h('select', { name: 'since' },
    Object.entries(SINCE).map(([value, text]) => h('option', { value, selected: value === (params.get('since') || ''), text }))));
  const live = h('input', { type: 'checkbox', id: 'executions-live', checked: true });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter executions' }, toolField, statusField, sinceField,
    h('div', { class: 'field check' }, live, h('label', { for: live.id, text: 'Live' })),
    h('div', { class: 'field' }, h('button', { type: 'submit', text: 'Filter' })));
  const summary = h('p', { class: 'summary' });
  const body = h('tbody');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  const detail = h('div', { class: 'execution-detail', 'aria-live': 'polite' });
  root.append(h('h1', { text: 'Executions' }), form, summary,
    h('div', { class: 'table-wrap' }, h('table', { class: 'executions' },
      h('caption', { class: 'visually-hidden', text: 'Executions, newest first' }),
      h('thead', {}, h('tr', {}, ['Started', 'Tool', 'Status', 'Duration', 'Details'].map((t) => h('th', { scope: 'col', text: t })))),
      body)),
    pager, detail);

  let offset = 0;
  const opened = params.get('id');
  const load = async () => {
    const span = SPAN_MS[since.value];
    let page;
    try {
      page = await api(`/admin/executions${query({
        tool: tool.value.trim(), status: status.value, since: span ? new Date(Date.now() - span).toISOString() : '', limit: LIMIT, offset,
      })}`);
    } catch (err) {
      summary.textContent = `Could not read the log: ${errorText(err)}`;
      return;
    }
    summary.textContent = page.total
      ? `${offset + 1}–${offset + page.executions.length} of ${page.total} executions`
      : 'No executions match.';
    fill(body, ...page.executions.map((execution) => h('tr', { 'data-id': execution.id },
      h('td', { text: when(execution.started_at) }),
      h('th', { scope: 'row', text: execution.tool_name }),
      h('td', {}, h('span', { class: `badge ${execution.status === 'success' ? 'on' : 'off'}`, text: execution.status })),
      h('td', { text: ms(execution.duration_ms) }),
      h('td', {}, h('button', { type: 'button', class: 'secondary small', text: 'Details', 'aria-label': `Details of the ${execution.tool_name} call at ${when(execution.started_at)}`, onclick: () => show(execution) })))));
    fill(pager,
      h('button', { type: 'button', disabled: offset === 0, text: '← Newer', onclick: () => { offset = Math.max(0, offset - LIMIT); load(); } }),
      h('button', { type: 'button', disabled: offset + LIMIT >= page.total, text: 'Older →', onclick: () => { offset += LIMIT; load(); } }));
  };
  const show = (execution) => {
    fill(detail, h('h2', { text: `${execution.tool_name} · ${execution.status} · ${ms(execution.duration_ms)}` }),
      h('p', { text: `Started ${when(execution.started_at)}, id ${execution.id}` }),
      h('h3', { text: 'Arguments' }), pre(execution.arguments),
      execution.error ? [h('h3', { text: 'Error' }), h('p', { class: 'error', text: execution.error })] : null,
      execution.result !== undefined && execution.result !== null ? [h('h3', { text: 'Result' }), pre(execution.result)] : null,
      execution.note ? h('p', { class: 'muted', text: execution.note }) : null);
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    offset = 0;
    history.replaceState(null, '', `#/executions${query({ tool: tool.value.trim(), status: status.value, since: since.value })}`);
    load();
  });
  await load();
  if (opened) {
    try {
      show(await api(`/admin/executions/${encodeURIComponent(opened)}`));
    } catch (err) {
      detail.textContent = errorText(err);
    }
  }
  const timer = setInterval(() => {
    if (live.checked && !document.hidden && offset === 0) load();
  }, 2000);
  return () => clearInterval(timer);
}
