// The search playground: one query answered by find_tool in each mode, side by side,
// with each hit's scores as bars and why it matched.

import { h, field, scoreBar, errorText, fill } from './dom.js';
import { api } from './api.js';

const MODES = ['hybrid', 'semantic', 'text'];

export async function render(root, { params }) {
  const [queryField, input] = field('Task', h('input', {
    type: 'search', name: 'query', value: params.get('q') || '', autocomplete: 'off', placeholder: 'e.g. add two numbers',
  }), 'answers as you type');
  const [limitField, limit] = field('Hits', h('input', { type: 'number', name: 'limit', min: 1, max: 100, value: 5 }));
  const [categoryField, category] = field('Category', h('input', { type: 'text', name: 'category' }));
  const explain = h('input', { type: 'checkbox', id: 'explain', checked: true });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Search the catalogue' },
    queryField, limitField, categoryField,
    h('div', { class: 'field check' }, explain, h('label', { for: explain.id, text: 'Explain' })));
  const columns = Object.fromEntries(MODES.map((mode) => [mode, h('div', { class: 'mode-results', 'aria-live': 'polite' })]));
  root.append(
    h('h1', { text: 'Search playground' }),
    form,
    h('div', { class: 'modes' }, MODES.map((mode) => h('section', { class: 'mode', 'data-mode': mode, 'aria-label': `${mode} results` },
      h('h2', { text: mode }), columns[mode]))));

  let generation = 0;
  let timer = null;
  const run = async () => {
    const text = input.value.trim();
    const mine = ++generation;
    history.replaceState(null, '', `#/search${text ? `?q=${encodeURIComponent(text)}` : ''}`);
    if (!text) {
      for (const mode of MODES) fill(columns[mode], h('p', { class: 'muted', text: 'Type a task to search.' }));
      return;
    }
    await Promise.all(MODES.map(async (mode) => {
      const body = { query: text, mode, limit: Number(limit.value) || 5, explain: explain.checked };
      if (category.value.trim()) body.category = category.value.trim();
      let answer;
      try {
        answer = await api('/mcp/find_tool', { method: 'POST', body });
      } catch (err) {
        if (mine === generation) fill(columns[mode], h('p', { class: 'error', text: errorText(err) }));
        return;
      }
      if (mine !== generation) return;
      fill(columns[mode],
        h('p', { class: 'muted', text: `answered by ${answer.mode} in ${answer.took_ms.toFixed(1)} ms` }),
        answer.tools.length
          ? h('ol', { class: 'hits' }, answer.tools.map(hit))
          : h('p', { class: 'muted', text: 'No tool found.' }));
    }));
  };
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(run, 200);
  };
  form.addEventListener('input', soon);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run();
  });
  run();
  input.focus();
  return () => clearTimeout(timer);
}

function hit(found) {
  const tool = found.tool;
  const why = found.explain;
  return h('li', { class: 'hit' },
    h('a', { href: `#/tools/${tool.id}`, class: 'hit-name', text: tool.name }),
    h('p', { class: 'hit-description', text: tool.description }),
    scoreBar('score', found.score),
    scoreBar('vector', found.vector_score),
    scoreBar('text', found.text_score),
    why ? h('details', {}, h('summary', { text: 'Why it matched' }),
      h('dl', { class: 'explain' },
        why.step ? [h('dt', { text: 'step' }), h('dd', { text: why.step })] : null,
        why.model_read ? [h('dt', { text: 'model read' }), h('dd', { text: why.model_read })] : null,
        Object.entries(why.matched || {}).map(([part, words]) => [h('dt', { text: part }), h('dd', { text: words.join(', ') || '—' })]),
        why.text_coverage !== undefined ? [h('dt', { text: 'text coverage' }), h('dd', { text: why.text_coverage.toFixed(2) })] : null,
        h('dt', { text: 'fused' }), h('dd', { text: why.fused_score.toFixed(4) }),
        why.vector_weight !== undefined ? [h('dt', { text: 'vector weight' }), h('dd', { text: String(why.vector_weight) })] : null)) : null);
}
