// Health: storage, embedder (breaker, caches, pending vectors, re-indexing), the
// execution recorder, version and uptime, from GET /health; refreshed while open.

import { h, section, say, errorText, percent, fill } from './dom.js';
import { api } from './api.js';

export async function render(root) {
  const body = h('div', { class: 'health', 'aria-live': 'polite' });
  const reindex = (all) => async () => {
    try {
      const started = await api(`/admin/reindex${all ? '?all=true' : ''}`, { method: 'POST' });
      say(`Re-indexing started: ${started.indexed} indexed, ${started.pending} pending.`);
      await load();
    } catch (err) {
      say(errorText(err), 'error');
    }
  };
  root.append(h('div', { class: 'title-row' }, h('h1', { text: 'Health' }),
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: reindex(false), text: 'Embed pending tools' }),
      h('button', { type: 'button', class: 'secondary', onclick: reindex(true), text: 'Re-embed every tool' }))),
  body);
  const load = async () => {
    let health;
    try {
      health = await api('/health');
    } catch (err) {
      fill(body, h('p', { class: 'error', text: errorText(err) }));
      return;
    }
    fill(body,
      h('p', { class: 'summary' }, h('span', { class: `badge ${health.status === 'ok' ? 'on' : 'off'}`, text: health.status }),
        ` version ${health.version}, up ${uptime(health.uptime_seconds)}`),
      h('div', { class: 'cards' },
        card('Storage', health.storage),
        card('Tools', health.tools),
        card('Embedder', health.embedder),
        card('Execution records', health.executions)));
  };
  await load();
  const timer = setInterval(() => {
    if (!document.hidden) load();
  }, 5000);
  return () => clearInterval(timer);
}

function uptime(seconds) {
  const d = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return `${d ? `${d} d ` : ''}${hours} h ${m} min`;
}

function card(title, value) {
  return section(title, value === null || value === undefined ? h('p', { class: 'muted', text: 'unavailable' }) : tree(value));
}

/** Nested values as nested lists; an object with hits and misses gets its hit rate. */
function tree(value) {
  if (value === null || value === undefined) return h('span', { class: 'muted', text: '—' });
  if (typeof value !== 'object') return h('span', { text: String(value) });
  if (Array.isArray(value)) return h('span', { text: value.map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))).join(', ') || '—' });
  const entries = Object.entries(value);
  if ('hits' in value && 'misses' in value) {
    const total = value.hits + value.misses;
    entries.unshift(['hit rate', total ? percent(value.hits / total) : '—']);
  }
  return h('dl', { class: 'pairs' }, entries.map(([key, inner]) => [h('dt', { text: key.replaceAll('_', ' ') }), h('dd', {}, tree(inner))]));
}
