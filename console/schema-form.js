// A form generated from a JSON Schema: strings, numbers, booleans, enums, arrays and
// nested objects get their own controls; anything else (and the whole, on request) is
// edited as raw JSON.

import { h, uid, setFieldError } from './dom.js';

/** Returns { element, value() } for an object schema; value() throws on invalid input. */
export function schemaForm(schema) {
  const structured = objectEditor(schema && typeof schema === 'object' ? schema : {}, 'Arguments', true);
  const raw = h('textarea', { id: uid('raw'), rows: 8, class: 'code', spellcheck: false });
  const rawField = h('div', { class: 'field', hidden: true },
    h('label', { for: raw.id, text: 'Arguments as JSON' }), raw, h('small', { class: 'field-error', id: `${raw.id}-error` }));
  const toggle = h('input', { type: 'checkbox', id: uid('raw-toggle') });
  toggle.addEventListener('change', () => {
    if (toggle.checked) {
      try {
        raw.value = JSON.stringify(structured.value(), null, 2);
      } catch {
        raw.value = '{}';
      }
    }
    rawField.hidden = !toggle.checked;
    structured.element.hidden = toggle.checked;
  });
  const element = h('div', { class: 'schema-form' },
    h('div', { class: 'field check' }, toggle, h('label', { for: toggle.id, text: 'Edit as raw JSON' })),
    structured.element, rawField);
  return {
    element,
    value() {
      if (!toggle.checked) return structured.value();
      try {
        setFieldError(raw, '');
        return JSON.parse(raw.value || '{}');
      } catch (err) {
        setFieldError(raw, `Not valid JSON: ${err.message}`);
        throw err;
      }
    },
  };
}

function typeOf(schema) {
  if (Array.isArray(schema.enum)) return 'enum';
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  if (!type && schema.properties) return 'object';
  return type || 'json';
}

function editor(schema, label, required) {
  switch (typeOf(schema)) {
    case 'string': return stringEditor(schema, label, required);
    case 'number':
    case 'integer': return numberEditor(schema, label, required);
    case 'boolean': return booleanEditor(schema, label);
    case 'enum': return enumEditor(schema, label, required);
    case 'array': return arrayEditor(schema, label);
    case 'object': return schema.properties ? objectEditor(schema, label, false) : jsonEditor(schema, label, required);
    default: return jsonEditor(schema, label, required);
  }
}

function labelled(label, required, control, schema) {
  control.id ||= uid('arg');
  const hint = schema.description ? h('small', { class: 'hint', id: `${control.id}-hint`, text: schema.description }) : null;
  if (hint) control.setAttribute('aria-describedby', hint.id);
  return h('div', { class: 'field' },
    h('label', { for: control.id }, label, required ? h('span', { class: 'required', text: ' (required)' }) : null),
    control, hint, h('small', { class: 'field-error', id: `${control.id}-error` }));
}

function stringEditor(schema, label, required) {
  const long = (schema.maxLength || 0) > 200 || schema.format === 'textarea';
  const control = long ? h('textarea', { rows: 3, name: label }) : h('input', { type: 'text', name: label });
  if (schema.default !== undefined) control.value = schema.default;
  return {
    element: labelled(label, required, control, schema),
    value: () => (control.value === '' ? undefined : control.value),
  };
}

function numberEditor(schema, label, required) {
  const integer = typeOf(schema) === 'integer';
  const control = h('input', { type: 'number', name: label, step: integer ? 1 : 'any', inputmode: 'decimal' });
  if (schema.minimum !== undefined) control.min = schema.minimum;
  if (schema.maximum !== undefined) control.max = schema.maximum;
  if (schema.default !== undefined) control.value = schema.default;
  return {
    element: labelled(label, required, control, schema),
    value() {
      if (control.value === '') return undefined;
      const number = Number(control.value);
      if (Number.isNaN(number)) {
        setFieldError(control, 'Not a number');
        throw new Error(`${label} is not a number`);
      }
      setFieldError(control, '');
      return number;
    },
  };
}

function booleanEditor(schema, label) {
  const control = h('select', { name: label },
    h('option', { value: '', text: '(not set)' }), h('option', { value: 'true', text: 'true' }), h('option', { value: 'false', text: 'false' }));
  if (schema.default !== undefined) control.value = String(schema.default);
  return {
    element: labelled(label, false, control, schema),
    value: () => (control.value === '' ? undefined : control.value === 'true'),
  };
}

function enumEditor(schema, label, required) {
  const control = h('select', { name: label },
    h('option', { value: '', text: '(not set)' }),
    schema.enum.map((option, i) => h('option', { value: String(i), text: JSON.stringify(option).replace(/^"|"$/g, '') })));
  if (schema.default !== undefined) {
    const at = schema.enum.findIndex((option) => JSON.stringify(option) === JSON.stringify(schema.default));
    if (at >= 0) control.value = String(at);
  }
  return {
    element: labelled(label, required, control, schema),
    value: () => (control.value === '' ? undefined : schema.enum[Number(control.value)]),
  };
}

function jsonEditor(schema, label, required) {
  const control = h('textarea', { rows: 3, class: 'code', name: label, spellcheck: false, placeholder: 'JSON' });
  return {
    element: labelled(label, required, control, schema),
    value() {
      if (control.value.trim() === '') return undefined;
      try {
        const parsed = JSON.parse(control.value);
        setFieldError(control, '');
        return parsed;
      } catch (err) {
        setFieldError(control, 'Not valid JSON');
        throw new Error(`${label} is not valid JSON`, { cause: err });
      }
    },
  };
}

function arrayEditor(schema, label) {
  const itemSchema = schema.items && typeof schema.items === 'object' ? schema.items : {};
  const items = [];
  const list = h('ol', { class: 'array-items' });
  const add = () => {
    const item = editor(itemSchema, `${label} item ${items.length + 1}`, false);
    const entry = h('li', {}, item.element);
    const remove = h('button', { type: 'button', class: 'secondary small', text: 'Remove', 'aria-label': `Remove ${label} item` });
    remove.addEventListener('click', () => {
      items.splice(items.indexOf(item), 1);
      entry.remove();
    });
    entry.append(remove);
    items.push(item);
    list.append(entry);
  };
  const element = h('fieldset', { class: 'array' },
    h('legend', { text: label }),
    schema.description ? h('small', { class: 'hint', text: schema.description }) : null,
    list,
    h('button', { type: 'button', class: 'secondary small', onclick: add, text: `Add ${label} item` }));
  return {
    element,
    value() {
      const values = items.map((item) => item.value()).filter((v) => v !== undefined);
      return values.length ? values : undefined;
    },
  };
}

function objectEditor(schema, label, top) {
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  const children = Object.entries(schema.properties || {}).map(([name, sub]) => [name, editor(sub && typeof sub === 'object' ? sub : {}, name, required.has(name))]);
  const element = top
    ? h('div', { class: 'object' }, schema.description ? h('p', { class: 'hint', text: schema.description }) : null, children.map(([, child]) => child.element),
      children.length ? null : h('p', { class: 'muted', text: 'This tool takes no arguments.' }))
    : h('fieldset', { class: 'object' }, h('legend', { text: label }),
      schema.description ? h('small', { class: 'hint', text: schema.description }) : null,
      children.map(([, child]) => child.element));
  return {
    element,
    value() {
      const result = {};
      for (const [name, child] of children) {
        const value = child.value();
        if (value !== undefined) result[name] = value;
      }
      return top || Object.keys(result).length ? result : undefined;
    },
  };
}
