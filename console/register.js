// Registering tools: from a form, from pasted JSON (one definition, a list, or a batch),
// or by importing an upstream MCP server's tools.

import { h, field, setFieldError, section, say, errorText, fill } from './dom.js';
import { api } from './api.js';

export async function render(root) {
  root.append(h('h1', { text: 'Register tools' }), formSection(), jsonSection(), importSection());
}

function created(tools) {
  return h('ul', { class: 'created' }, tools.map((tool) => h('li', {}, h('a', { href: `#/tools/${tool.id}`, text: tool.name }))));
}

function formSection() {
  const controls = {};
  const add = (name, label, control, hint) => {
    const [wrapper, input] = field(label, control, hint);
    controls[name] = input;
    return wrapper;
  };
  const kind = h('select', { name: 'kind' }, ['http', 'builtin', 'mcp'].map((k) => h('option', { value: k, text: k })));
  const outcome = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'register', 'aria-label': 'Register one tool' },
    add('name', 'Name', h('input', { type: 'text', required: true, pattern: '[A-Za-z0-9_.\\-]{1,128}' }), 'letters, digits, _ . -'),
    add('description', 'Description', h('textarea', { rows: 3, required: true })),
    add('category', 'Category', h('input', { type: 'text' })),
    add('tags', 'Tags', h('input', { type: 'text' }), 'comma-separated'),
    add('kind', 'Implementation', kind),
    add('url', 'URL (http and mcp)', h('input', { type: 'url' })),
    add('handler', 'Built-in handler or upstream tool name', h('input', { type: 'text' })),
    add('input_schema', 'Input schema (JSON)', h('textarea', { rows: 6, class: 'code', spellcheck: false, text: '{\n  "type": "object",\n  "properties": {}\n}' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', text: 'Register' })),
    outcome);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    for (const control of Object.values(controls)) setFieldError(control, '');
    let schema;
    try {
      schema = JSON.parse(controls.input_schema.value || '{}');
    } catch (err) {
      setFieldError(controls.input_schema, `Not valid JSON: ${err.message}`);
      return;
    }
    const implementation = { kind: kind.value };
    if (kind.value === 'builtin') implementation.handler = controls.handler.value.trim();
    else implementation.url = controls.url.value.trim();
    if (kind.value === 'mcp') implementation.tool = controls.handler.value.trim();
    const body = {
      name: controls.name.value.trim(),
      description: controls.description.value,
      tags: controls.tags.value.split(',').map((t) => t.trim()).filter(Boolean),
      input_schema: schema,
      implementation,
    };
    if (controls.category.value.trim()) body.category = controls.category.value.trim();
    try {
      const tool = await api('/admin/tools', { method: 'POST', body });
      fill(outcome, h('p', {}, 'Registered ', h('a', { href: `#/tools/${tool.id}`, text: tool.name })),
        tool.warnings ? h('ul', { class: 'warnings' }, tool.warnings.map((w) => h('li', { text: w }))) : null);
      say(`${tool.name} was registered.`);
    } catch (err) {
      const name = err.field ? err.field.split(/[.[/]/)[0] : '';
      const target = controls[name] || (name === 'implementation' ? controls.url : null);
      if (target) {
        setFieldError(target, err.message);
        target.focus();
      } else {
        fill(outcome, h('p', { class: 'error', role: 'alert', text: errorText(err) }));
      }
    }
  });
  return section('From a form', form);
}

function jsonSection() {
  const [textField, text] = field('Definitions (JSON)', h('textarea', { rows: 10, class: 'code', spellcheck: false }),
    'one definition, a list of them, or {"tools": [...]}; a list is registered all or none');
  const outcome = h('div', { 'aria-live': 'polite' });
  const form = h('form', { 'aria-label': 'Register from JSON' }, textField, h('div', { class: 'actions' }, h('button', { type: 'submit', text: 'Register' })), outcome);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    setFieldError(text, '');
    let parsed;
    try {
      parsed = JSON.parse(text.value);
    } catch (err) {
      setFieldError(text, `Not valid JSON: ${err.message}`);
      return;
    }
    try {
      if (Array.isArray(parsed) || (parsed && Array.isArray(parsed.tools))) {
        const answer = await api('/admin/tools/batch', { method: 'POST', body: Array.isArray(parsed) ? { tools: parsed } : parsed });
        fill(outcome, h('p', { text: `Registered ${answer.tools.length} tools:` }), created(answer.tools));
      } else {
        const tool = await api('/admin/tools', { method: 'POST', body: parsed });
        fill(outcome, h('p', { text: 'Registered:' }), created([tool]));
      }
    } catch (err) {
      setFieldError(text, `${err.field ? `${err.field}: ` : ''}${errorText(err)}`);
    }
  });
  return section('From JSON', form);
}

function importSection() {
  const [urlField, url] = field('Upstream MCP URL', h('input', { type: 'url', required: true, placeholder: 'http://host:port/mcp' }), 'its Streamable HTTP endpoint');
  const [prefixField, prefix] = field('Prefix', h('input', { type: 'text', required: true, pattern: '[A-Za-z0-9_\\-]{1,64}' }), 'names become prefix.tool');
  const [categoryField, category] = field('Category', h('input', { type: 'text' }), 'default: the prefix');
  const outcome = h('div', { class: 'import-report', 'aria-live': 'polite' });
  const button = h('button', { type: 'submit', text: 'Import' });
  const form = h('form', { 'aria-label': 'Import an upstream MCP server' }, urlField, prefixField, categoryField, h('div', { class: 'actions' }, button), outcome);
  const controls = { url, prefix, category };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    for (const control of Object.values(controls)) setFieldError(control, '');
    const body = { url: url.value.trim(), prefix: prefix.value.trim() };
    if (category.value.trim()) body.category = category.value.trim();
    button.disabled = true;
    fill(outcome, h('p', { class: 'muted', text: 'Importing…' }));
    try {
      const report = await api('/admin/import', { method: 'POST', body });
      fill(outcome, ...['created', 'updated', 'unchanged', 'deactivated'].map((part) => h('div', { class: `report-${part}` },
        h('h3', { text: `${part} (${report[part].length})` }),
        report[part].length ? h('ul', {}, report[part].map((name) => h('li', { text: name }))) : null)));
      say(`Imported: ${report.created.length} created, ${report.updated.length} updated, ${report.deactivated.length} deactivated.`);
    } catch (err) {
      const target = err.field && controls[err.field];
      if (target) setFieldError(target, err.message);
      fill(outcome, h('p', { class: 'error', role: 'alert', text: errorText(err) }));
    } finally {
      button.disabled = false;
    }
  });
  return section('Import an upstream MCP server', form);
}
