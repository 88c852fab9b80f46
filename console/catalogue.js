// Every tool, a page at a time from the server (so 10,000 tools cost one page's rows),
// filtered by category, tag and state.

import { h, field, when, say, errorText, fill } from './dom.js';
import { api, query } from './api.js';

const PAGE_SIZES = [50, 100, 200];

export async function render(root, { params }) {
  const state = {
    category: params.get('category') || '',
    tags: params.get('tags') || '',
    inactive: params.get('inactive') === 'true',
    limit: PAGE_SIZES.includes(Number(params.get('limit'))) ? Number(params.get('limit')) : 50,
    offset: Math.max(0, Number(params.get('offset')) || 0),
  };
  const [categoryField, category] = field('Category', h('input', { type: 'text', name: 'category', value: state.category }));
  const [tagsField, tags] = field('Tags', h('input', { type: 'text', name: 'tags', value: state.tags }), 'comma-separated; any of them');
  const inactive = h('input', { type: 'checkbox', id: 'include-inactive', name: 'inactive', checked: state.inactive });
  const [sizeField, size] = field('Per page', h('select', { name: 'limit' },
    PAGE_SIZES.map((n) => h('option', { value: n, selected: n === state.limit, text: n }))));
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the catalogue' },
    categoryField, tagsField,
    h('div', { class: 'field check' }, inactive, h('label', { for: inactive.id, text: 'Include inactive' })),
    sizeField,
    h('div', { class: 'field' }, h('button', { type: 'submit', text: 'Filter' })));
  const summary = h('p', { class: 'summary', 'aria-live': 'polite' });
  const body = h('tbody');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  root.append(
    h('h1', { text: 'Catalogue' }),
    filters,
    summary,
    h('div', { class: 'table-wrap' }, h('table', { class: 'tools' },
      h('caption', { class: 'visually-hidden', text: 'Tools, by name' }),
      h('thead', {}, h('tr', {}, ['Name', 'Category', 'Tags', 'State', 'Embedding', 'Last call'].map((t) => h('th', { scope: 'col', text: t })))),
      body)),
    pager);

  const go = (changes) => {
    const next = { ...state, ...changes };
    location.hash = `#/catalogue${query({
      category: next.category, tags: next.tags, inactive: next.inactive, limit: next.limit === 50 ? '' : next.limit, offset: next.offset || '',
    })}`;
  };
  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    go({ category: category.value.trim(), tags: tags.value.trim(), inactive: inactive.checked, limit: Number(size.value), offset: 0 });
  });

  const started = performance.now();
  let page;
  try {
    page = await api(`/admin/tools${query({
      category: state.category, tags: state.tags, include_inactive: state.inactive, limit: state.limit, offset: state.offset,
    })}`);
  } catch (err) {
    summary.textContent = `Could not list tools: ${errorText(err)}`;
    summary.className = 'error';
    return;
  }
  const first = page.total ? state.offset + 1 : 0;
  const last = state.offset + page.tools.length;
  summary.textContent = `${first.toLocaleString()}–${last.toLocaleString()} of ${page.total.toLocaleString()} tools`;
  summary.dataset.total = page.total;
  fill(body, ...page.tools.map(row));
  root.dataset.renderMs = (performance.now() - started).toFixed(1);
  const pages = Math.max(1, Math.ceil(page.total / state.limit));
  const current = Math.floor(state.offset / state.limit) + 1;
  fill(pager,
    h('button', { type: 'button', disabled: state.offset === 0, onclick: () => go({ offset: Math.max(0, state.offset - state.limit) }), text: '← Previous' }),
    h('span', { text: `Page ${current} of ${pages}` }),
    h('button', { type: 'button', disabled: last >= page.total, onclick: () => go({ offset: state.offset + state.limit }), text: 'Next →' }));
  if (!page.tools.length) say('No tool matches these filters.');

  // The last call of each shown tool, a few requests at a time.
  let stopped = false;
  const queue = [...page.tools];
  const worker = async () => {
    while (!stopped && queue.length) {
      const tool = queue.shift();
      const cell = body.querySelector(`[data-last-call="${tool.id}"]`);
      try {
        const stats = await api(`/admin/tools/${tool.id}/stats`);
        if (cell) cell.textContent = stats.last_called_at ? when(stats.last_called_at) : 'never';
      } catch {
        if (cell) cell.textContent = '?';
      }
    }
  };
  Promise.all([worker(), worker(), worker(), worker()]);
  return () => { stopped = true; };
}

function row(tool) {
  return h('tr', { class: tool.is_active ? '' : 'inactive' },
    h('th', { scope: 'row' }, h('a', { href: `#/tools/${tool.id}`, text: tool.name })),
    h('td', { text: tool.category || '—' }),
    h('td', {}, (tool.tags || []).map((tag) => h('span', { class: 'tag', text: tag }))),
    h('td', { text: tool.is_active ? 'active' : 'inactive' }),
    h('td', { text: tool.embedding_model ? 'embedded' : 'pending', title: tool.embedding_model || 'no vector yet' }),
    h('td', { 'data-last-call': tool.id, text: '…' }));
}
