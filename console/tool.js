// One tool: its definition and schemas, switching it on and off, editing, its versions
// (diff and rollback), similar tools, a call from a generated form, and its numbers.

import { h, field, setFieldError, pre, when, ms, percent, say, section, confirmDialog, errorText, json, fill } from './dom.js';
import { api } from './api.js';
import { schemaForm } from './schema-form.js';
import { seriesCharts } from './charts.js';

const DEFINITION_FIELDS = ['name', 'description', 'category', 'tags', 'version', 'input_schema', 'output_schema', 'implementation', 'metadata'];

export async function render(root, { arg }) {
  const tool = await api(`/admin/tools/${encodeURIComponent(arg)}`);
  const reload = () => {
    fill(root);
    return render(root, { arg });
  };
  const toggle = h('button', { type: 'button', text: tool.is_active ? 'Deactivate' : 'Activate' });
  toggle.addEventListener('click', async () => {
    try {
      await api(`/admin/tools/${tool.id}/${tool.is_active ? 'deactivate' : 'activate'}`, { method: 'POST' });
      say(`${tool.name} is now ${tool.is_active ? 'inactive' : 'active'}.`);
      await reload();
    } catch (err) {
      say(errorText(err), 'error');
    }
  });
  const remove = h('button', { type: 'button', class: 'danger', text: 'Delete…' });
  remove.addEventListener('click', async () => {
    const sure = await confirmDialog(`Delete ${tool.name}?`, `The tool “${tool.name}” and its version history are deleted; its executions stay in the log.`, 'Delete');
    if (!sure) return;
    try {
      await api(`/admin/tools/${tool.id}`, { method: 'DELETE' });
      say(`${tool.name} was deleted.`);
      location.hash = '#/catalogue';
    } catch (err) {
      say(errorText(err), 'error');
    }
  });
  root.append(
    h('div', { class: 'title-row' },
      h('h1', {}, tool.name, ' ', h('span', { class: `badge ${tool.is_active ? 'on' : 'off'}`, text: tool.is_active ? 'active' : 'inactive' })),
      h('div', { class: 'actions' }, toggle, remove)),
    definition(tool),
    schemas(tool),
    tryIt(tool),
    editor(tool, reload),
    h('div', { class: 'versions-slot' }),
    h('div', { class: 'similar-slot' }),
    h('div', { class: 'stats-slot' }));
  // The slower parts fill in once the definition shows.
  await Promise.all([
    versions(tool, reload).then((el) => root.querySelector('.versions-slot').replaceWith(el)),
    similar(tool).then((el) => root.querySelector('.similar-slot').replaceWith(el)),
    stats(tool).then((el) => root.querySelector('.stats-slot').replaceWith(el)),
  ]);
}

function definition(tool) {
  const impl = tool.implementation || {};
  const rows = [
    ['Description', tool.description],
    ['Category', tool.category || '—'],
    ['Tags', (tool.tags || []).join(', ') || '—'],
    ['Version', tool.version],
    ['Implementation', [impl.kind, impl.handler, impl.method, impl.url, impl.tool].filter(Boolean).join(' ')],
    ['Embedding', tool.embedding_model || 'pending'],
    ['Created', when(tool.created_at)],
    ['Updated', when(tool.updated_at)],
    ['Id', tool.id],
  ];
  return section('Definition',
    h('dl', { class: 'pairs' }, rows.map(([key, value]) => [h('dt', { text: key }), h('dd', { text: value })])),
    tool.warnings && tool.warnings.length ? h('ul', { class: 'warnings' }, tool.warnings.map((w) => h('li', { text: w }))) : null,
    tool.metadata && Object.keys(tool.metadata).length ? h('details', {}, h('summary', { text: 'Metadata' }), pre(tool.metadata)) : null);
}

function schemaTable(schema) {
  const properties = schema && schema.properties ? Object.entries(schema.properties) : [];
  if (!properties.length) return h('p', { class: 'muted', text: 'No named properties.' });
  const required = new Set(schema.required || []);
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, ['Property', 'Type', 'Required', 'Description'].map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, properties.map(([name, sub]) => h('tr', {},
      h('th', { scope: 'row', text: name }),
      h('td', { text: sub && sub.enum ? `one of ${sub.enum.map((v) => JSON.stringify(v)).join(', ')}` : [].concat((sub && sub.type) || 'any').join(' | ') }),
      h('td', { text: required.has(name) ? 'yes' : 'no' }),
      h('td', { text: (sub && sub.description) || '' }))))));
}

function schemas(tool) {
  return section('Schemas',
    h('h3', { text: 'Input' }), schemaTable(tool.input_schema),
    h('details', {}, h('summary', { text: 'Input schema as JSON' }), pre(tool.input_schema)),
    h('h3', { text: 'Output' }),
    tool.output_schema ? [schemaTable(tool.output_schema), h('details', {}, h('summary', { text: 'Output schema as JSON' }), pre(tool.output_schema))]
      : h('p', { class: 'muted', text: 'No output schema.' }));
}

function tryIt(tool) {
  const form = schemaForm(tool.input_schema);
  const outcome = h('div', { class: 'outcome', 'aria-live': 'polite' });
  const call = h('button', { type: 'submit', text: 'Call' });
  const el = h('form', { class: 'try-it', 'aria-label': `Call ${tool.name}` }, form.element, h('div', { class: 'actions' }, call), outcome);
  el.addEventListener('submit', async (event) => {
    event.preventDefault();
    let args;
    try {
      args = form.value();
    } catch (err) {
      fill(outcome, h('p', { class: 'error', text: errorText(err) }));
      return;
    }
    call.disabled = true;
    fill(outcome, h('p', { class: 'muted', text: 'Calling…' }));
    try {
      const answer = await api('/mcp/call_tool', { method: 'POST', body: { name: tool.name, arguments: args } });
      fill(outcome,
        h('p', {}, h('span', { class: `badge ${answer.status === 'success' ? 'on' : 'off'}`, text: answer.status }), ` in ${ms(answer.duration_ms)} · `,
          h('a', { href: `#/executions?id=${answer.execution_id}`, text: 'in the log' })),
        answer.error ? h('p', { class: 'error', text: answer.error }) : null,
        answer.result !== undefined && answer.result !== null ? pre(answer.result) : null);
    } catch (err) {
      fill(outcome, h('p', { class: 'error', text: errorText(err) }));
    } finally {
      call.disabled = false;
    }
  });
  return section('Try it', tool.is_active ? el : h('p', { class: 'muted', text: 'Inactive tools cannot be called; activate it first.' }));
}

function editor(tool, reload) {
  const controls = {};
  const add = (name, label, control, hint) => {
    const [wrapper, input] = field(label, control, hint);
    controls[name] = input;
    return wrapper;
  };
  const textarea = (value, rows) => h('textarea', { rows, class: 'code', spellcheck: false, text: value });
  const general = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'edit', 'aria-label': `Edit ${tool.name}` },
    add('name', 'Name', h('input', { type: 'text', value: tool.name })),
    add('description', 'Description', h('textarea', { rows: 3, text: tool.description })),
    add('category', 'Category', h('input', { type: 'text', value: tool.category || '' })),
    add('tags', 'Tags', h('input', { type: 'text', value: (tool.tags || []).join(', ') }), 'comma-separated'),
    add('version', 'Version', h('input', { type: 'text', value: tool.version }), 'a new version keeps the current definition in the history'),
    add('input_schema', 'Input schema (JSON)', textarea(json(tool.input_schema), 8)),
    add('output_schema', 'Output schema (JSON, empty for none)', textarea(tool.output_schema ? json(tool.output_schema) : '', 4)),
    add('metadata', 'Metadata (JSON)', textarea(json(tool.metadata || {}), 3)),
    general,
    h('div', { class: 'actions' }, h('button', { type: 'submit', text: 'Save' })));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    general.textContent = '';
    for (const control of Object.values(controls)) setFieldError(control, '');
    const patch = {
      name: controls.name.value.trim(),
      description: controls.description.value,
      category: controls.category.value.trim(),
      tags: controls.tags.value.split(',').map((t) => t.trim()).filter(Boolean),
      version: controls.version.value.trim(),
    };
    for (const name of ['input_schema', 'output_schema', 'metadata']) {
      const text = controls[name].value.trim();
      if (!text) {
        if (name === 'output_schema') patch.output_schema = null;
        continue;
      }
      try {
        patch[name] = JSON.parse(text);
      } catch (err) {
        setFieldError(controls[name], `Not valid JSON: ${err.message}`);
        controls[name].focus();
        return;
      }
    }
    try {
      await api(`/admin/tools/${tool.id}`, { method: 'PUT', body: patch });
      say(`${patch.name} was saved.`);
      await reload();
    } catch (err) {
      const target = err.field && controls[err.field.split(/[.[/]/)[0]];
      if (target) {
        setFieldError(target, err.message);
        target.focus();
      } else {
        general.textContent = errorText(err);
      }
    }
  });
  return section('Edit', h('details', { class: 'edit-details' }, h('summary', { text: 'Edit the definition' }), form));
}

async function versions(tool, reload) {
  let history;
  try {
    history = await api(`/admin/tools/${tool.id}/versions`);
  } catch (err) {
    return section('Versions', h('p', { class: 'error', text: errorText(err) }));
  }
  const diffOut = h('div', { class: 'diff-out' });
  if (!history.versions.length) {
    return section('Versions', h('p', { class: 'muted', text: `Version ${history.current_version}; no earlier definitions.` }));
  }
  const rows = history.versions.map((version) => {
    const diff = h('button', { type: 'button', class: 'secondary small', text: 'Diff with current' });
    diff.addEventListener('click', () => {
      fill(diffOut, h('h3', { text: `${version.version} → ${tool.version} (current)` }), lineDiff(definitionText(version), definitionText(tool)));
    });
    const rollback = h('button', { type: 'button', class: 'small', text: 'Roll back' });
    rollback.addEventListener('click', async () => {
      const sure = await confirmDialog(`Roll back to ${version.version}?`, `${tool.name} gets the definition of version ${version.version}; the current one joins the history.`, 'Roll back');
      if (!sure) return;
      try {
        await api(`/admin/tools/${tool.id}/rollback`, { method: 'POST', body: { version: version.version } });
        say(`${tool.name} is back at version ${version.version}.`);
        await reload();
      } catch (err) {
        say(errorText(err), 'error');
      }
    });
    return h('tr', {}, h('th', { scope: 'row', text: version.version }), h('td', { text: when(version.changed_at) }), h('td', { class: 'actions' }, diff, rollback));
  });
  return section('Versions',
    h('p', { text: `Current: ${history.current_version}` }),
    h('div', { class: 'table-wrap' }, h('table', { class: 'versions' },
      h('thead', {}, h('tr', {}, ['Version', 'Replaced', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, rows))),
    diffOut);
}

function definitionText(definition) {
  const picked = {};
  for (const key of DEFINITION_FIELDS) if (definition[key] !== undefined) picked[key] = definition[key];
  return json(picked).split('\n');
}

/** A line diff (longest common subsequence) of two texts as lines. */
function lineDiff(before, after) {
  const n = before.length;
  const m = after.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = before[i] === after[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const lines = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && before[i] === after[j]) {
      lines.push(h('span', { class: 'same', text: `  ${before[i]}\n` }));
      i++;
      j++;
    } else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      lines.push(h('ins', { text: `+ ${after[j]}\n` }));
      j++;
    } else {
      lines.push(h('del', { text: `- ${before[i]}\n` }));
      i++;
    }
  }
  return h('pre', { class: 'diff', 'aria-label': 'Lines removed (-) and added (+)' }, lines);
}

async function similar(tool) {
  try {
    const found = await api(`/admin/tools/${tool.id}/similar?limit=5`);
    return section('Similar tools', found.tools.length
      ? h('ol', { class: 'similar' }, found.tools.map((hit) => h('li', {},
        h('a', { href: `#/tools/${hit.tool.id}`, text: hit.tool.name }), ` · ${hit.score.toFixed(3)}`)))
      : h('p', { class: 'muted', text: 'None yet (tools without a vector are not compared).' }));
  } catch (err) {
    return section('Similar tools', h('p', { class: 'error', text: errorText(err) }));
  }
}

async function stats(tool) {
  try {
    const numbers = await api(`/admin/tools/${tool.id}/stats`);
    const rows = [
      ['Calls', numbers.calls], ['Success rate', percent(numbers.success_rate)],
      ['Errors', numbers.errors], ['Timeouts', numbers.timeouts],
      ['p50', ms(numbers.p50_duration_ms)], ['p95', ms(numbers.p95_duration_ms)],
      ['Last call', when(numbers.last_called_at)],
    ];
    const charts = h('div', { class: 'tool-charts' });
    seriesCharts(charts, { tool: tool.id, window: 'hour' });
    return section('Calls',
      h('dl', { class: 'pairs stats' }, rows.map(([key, value]) => [h('dt', { text: key }), h('dd', { text: String(value) })])),
      h('p', {}, h('a', { href: `#/executions?tool=${encodeURIComponent(tool.name)}`, text: 'Executions of this tool' }), ' · ',
        h('a', { href: `#/charts?tool=${encodeURIComponent(tool.name)}`, text: 'Charts' })),
      charts);
  } catch (err) {
    return section('Calls', h('p', { class: 'error', text: errorText(err) }));
  }
}
