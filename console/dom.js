// Building the page: every piece of text goes in as a text node, never as markup.

/** An element with attributes, listeners (`onclick`…) and children (text or nodes). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let nextId = 0;
/** A unique id for pairing labels and controls. */
export const uid = (prefix = 'f') => `${prefix}-${++nextId}`;

/** A labelled control: returns [wrapper, control]. */
export function field(label, control, hint) {
  control.id ||= uid();
  const hintEl = hint ? h('small', { class: 'hint', id: `${control.id}-hint`, text: hint }) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  const error = h('small', { class: 'field-error', id: `${control.id}-error` });
  return [h('div', { class: 'field' }, h('label', { for: control.id, text: label }), control, hintEl, error), control];
}

/** Shows a message on the control's field (or clears it with ''). */
export function setFieldError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  if (error) error.textContent = message;
  if (message) {
    control.setAttribute('aria-invalid', 'true');
    const described = (control.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
    if (!described.includes(error.id)) described.push(error.id);
    control.setAttribute('aria-describedby', described.join(' '));
  } else {
    control.removeAttribute('aria-invalid');
  }
}

export function json(value) {
  return JSON.stringify(value, null, 2);
}

export const pre = (value) => h('pre', { class: 'json', text: typeof value === 'string' ? value : json(value) });

export function when(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

export const ms = (value) => (value === null || value === undefined ? '—' : `${Number(value).toFixed(value < 10 ? 2 : 0)} ms`);

export const percent = (value) => (value === null || value === undefined ? '—' : `${(value * 100).toFixed(1)} %`);

/** A horizontal bar for a score in [0, 1], with its value as text beside it. */
export function scoreBar(label, value) {
  const fill = h('span', { class: 'bar-fill' });
  fill.style.width = `${Math.max(0, Math.min(1, value ?? 0)) * 100}%`;
  return h('div', { class: 'score' },
    h('span', { class: 'score-label', text: label }),
    h('span', { class: 'bar', role: 'img', 'aria-label': `${label} ${value == null ? 'none' : value.toFixed(3)}` }, fill),
    h('span', { class: 'score-value', text: value == null ? '—' : value.toFixed(3) }));
}

/** Says something in the shared status line (read out by screen readers). */
export function say(message, kind = 'info') {
  const status = document.getElementById('status');
  status.textContent = message;
  status.dataset.kind = kind;
}

/** Asks a yes/no question in the confirmation dialog. */
export function confirmDialog(title, text, okLabel = 'Confirm') {
  const dialog = document.getElementById('confirm-dialog');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

/** A section with a heading, for the page's outline. */
export function section(title, ...children) {
  const id = uid('s');
  return h('section', { 'aria-labelledby': id }, h('h2', { id, text: title }), ...children);
}

export function errorText(err) {
  return err && err.message ? err.message : String(err);
}

/** Replaces an element's children (text, nodes, nested lists; null and false skipped). */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}
