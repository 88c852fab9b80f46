// The console's entry: a hash router over the pages, each a module with `render`.

import { h, say, errorText, fill } from './dom.js';
import { forgetCredential, hasCredential } from './api.js';
import * as catalogue from './catalogue.js';
import * as search from './search.js';
import * as tool from './tool.js';
import * as register from './register.js';
import * as executions from './executions.js';
import * as charts from './charts.js';
import * as health from './health.js';

const pages = {
  catalogue: { module: catalogue, title: 'Catalogue' },
  search: { module: search, title: 'Search' },
  tools: { module: tool, title: 'Tool' },
  register: { module: register, title: 'Register' },
  executions: { module: executions, title: 'Executions' },
  charts: { module: charts, title: 'Charts' },
  health: { module: health, title: 'Health' },
};

let leave = null;

/** `#/name/arg?key=value` → { name, arg, params }. */
export function parseHash() {
  const [path, queryText = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [name = '', ...rest] = path.split('/');
  return { name, arg: rest.map(decodeURIComponent).join('/'), params: new URLSearchParams(queryText) };
}

async function show() {
  const { name, arg, params } = parseHash();
  const page = pages[name];
  if (!page) {
    location.replace('#/catalogue');
    return;
  }
  if (leave) leave();
  leave = null;
  const view = document.getElementById('view');
  for (const link of document.querySelectorAll('nav a')) {
    if (link.getAttribute('href') === `#/${name}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${page.title} · tool-registry console`;
  say('');
  const root = h('div', { class: `page page-${name}` });
  fill(view, root);
  try {
    const cleanup = await page.module.render(root, { arg, params });
    if (typeof cleanup === 'function') leave = cleanup;
  } catch (err) {
    root.append(h('p', { class: 'error', role: 'alert', text: `Could not load this page: ${errorText(err)}` }));
  }
}

window.addEventListener('hashchange', () => {
  show().then(() => document.getElementById('view').focus({ preventScroll: true }));
});
document.getElementById('sign-out').addEventListener('click', () => {
  forgetCredential();
  document.getElementById('sign-out').hidden = true;
  say('The key is forgotten; the next call asks again.');
});
document.getElementById('sign-out').hidden = !hasCredential();
show();
