// The operator console in a real browser: Debian's headless Chromium driven by
// playwright-core (which downloads no browser), against a live server.
//
// Usage: node console_check.mjs BASE_URL UPSTREAM_MCP_URL ARTIFACT_DIR [ADMIN_KEY]
// With ADMIN_KEY the server requires admin credentials and the console must ask for them.
// CONSOLE_BENCH_TOOLS=N also registers N tools and times the catalogue over them.

import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const [base, upstream, artifacts, adminKey] = process.argv.slice(2);
if (!base || !upstream || !artifacts) {
  console.error('usage: node console_check.mjs BASE_URL UPSTREAM_MCP_URL ARTIFACT_DIR [ADMIN_KEY]');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const XSS = '<img src=x onerror=alert(1)>';

let failures = 0;
const step = async (name, body) => {
  const started = Date.now();
  try {
    await body();
    console.log(`  ok    ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    failures++;
    console.log(`  FAIL  ${name}: ${err.stack || err}`);
  }
};
const check = (condition, message) => {
  if (!condition) throw new Error(message);
};

async function rest(path, { method = 'GET', body } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (adminKey) headers.authorization = `Bearer ${adminKey}`;
  const response = await fetch(`${base}${path}`, { method, headers, body: body && JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const httpTool = (name, description, extra = {}) => ({
  name,
  description,
  category: 'console-check',
  tags: ['console'],
  implementation: { kind: 'http', url: 'http://127.0.0.1:9/unused' },
  input_schema: { type: 'object', properties: { city: { type: 'string' } } },
  ...extra,
});

// The tools the checks need, made over the API.
const probe = await rest('/admin/tools', { method: 'POST', body: httpTool('xss_probe', XSS) });
await rest('/admin/tools', { method: 'POST', body: httpTool('pdf_merger', 'Merge several PDF files into one PDF document') });
const weather = await rest('/admin/tools', { method: 'POST', body: httpTool('weather_lookup', 'Current weather for a city', { version: '1.0.0' }) });
await rest(`/admin/tools/${weather.id}`, { method: 'PUT', body: { description: 'Weather forecast for the next days in a city', version: '1.1.0' } });

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
const page = await context.newPage();
const problems = [];
page.on('console', (message) => {
  if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
});
page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
page.on('dialog', (dialog) => {
  problems.push(`a script opened a dialog: ${dialog.message()}`);
  dialog.dismiss();
});
const firstLoad = [];
page.on('response', (response) => {
  if (response.url().includes('/console')) firstLoad.push(response);
});

const shot = (name) => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: false });
// Chromium logs every refused request as a console error; `expected` lists the statuses a
// step provokes on purpose (such as a 422 for an invalid name).
const clean = async (name, expected = []) => {
  const found = problems.splice(0).filter((problem) => !expected.some((status) => problem.includes(`status of ${status} `)));
  check(found.length === 0, `${name}: ${found.join('; ')}`);
};
const axe = async (name) => {
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const found = result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
  check(found.length === 0, `axe on ${name}: ${found.join('; ')}`);
};
const visit = async (hash) => {
  await page.goto(`${base}/console/${hash}`);
  await page.waitForLoadState('networkidle');
};

console.log(`console check against ${base} (screenshots in ${artifacts})`);

await step('/ redirects to the console and it asks for credentials only when needed', async () => {
  await page.goto(`${base}/`);
  check(new URL(page.url()).pathname === '/console/', `landed on ${page.url()}`);
  if (adminKey) {
    await page.getByLabel('Key or token').waitFor();
    await page.getByLabel('Key or token').fill(adminKey);
    await page.getByRole('button', { name: 'Continue' }).click();
    const kept = await page.evaluate(() => sessionStorage.getItem('tool-registry.credential'));
    check(kept === adminKey, 'the key is kept in session storage');
  }
  await page.locator('.page-catalogue .summary[data-total]').waitFor();
  check(!page.url().includes(adminKey || '\u0000'), 'the key never appears in the URL');
  // Without credentials the first call is refused: that 401 is what makes the console ask.
  await clean('first load', adminKey ? [401] : []);
});

await step('console responses carry the security headers', async () => {
  const response = await fetch(`${base}/console/`);
  const csp = response.headers.get('content-security-policy') || '';
  check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), `CSP: ${csp}`);
  check(csp.includes("frame-ancestors 'none'"), 'frame-ancestors');
  check(response.headers.get('referrer-policy') === 'no-referrer', 'Referrer-Policy');
});

let firstLoadBytes = 0;
let firstLoadGzip = 0;
await step('first load size', async () => {
  for (const response of firstLoad) {
    const body = await response.body().catch(() => Buffer.alloc(0));
    firstLoadBytes += body.length;
    firstLoadGzip += gzipSync(body, { level: 9 }).length;
  }
  console.log(`        first load: ${firstLoad.length} files, ${(firstLoadBytes / 1024).toFixed(1)} KiB, ${(firstLoadGzip / 1024).toFixed(1)} KiB gzip-compressed`);
  check(firstLoadGzip < 300 * 1024, 'well under 300 KB');
});

await step('catalogue lists the tools, keyboard first stop is the skip link', async () => {
  await visit('#/catalogue?inactive=true');
  await page.locator('.page-catalogue .summary[data-total]').waitFor();
  const total = Number(await page.locator('.summary').getAttribute('data-total'));
  check(total >= 4, `total ${total}`);
  check(await page.locator('table.tools a', { hasText: 'weather_lookup' }).count() === 1, 'weather_lookup listed');
  // A fresh load (a hash change moves the focus to the page's content).
  await page.reload();
  await page.locator('.page-catalogue .summary[data-total]').waitFor();
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement.className) === 'skip', 'skip link first');
  await shot('catalogue');
  await axe('catalogue');
  await clean('catalogue');
});

const firstHit = (mode) => page.locator(`[data-mode="${mode}"] .hit-name`).first();

await step('search shows the calculator first, with score bars and explanations', async () => {
  await visit('#/search');
  await page.getByLabel('Task').fill('calculator arithmetic expression');
  await page.locator('[data-mode="hybrid"] .hit-name').first().waitFor();
  check(await firstHit('hybrid').textContent() === 'calculator', `hybrid first: ${await firstHit('hybrid').textContent()}`);
  await page.locator('[data-mode="text"] .hit-name').first().waitFor();
  check(await firstHit('text').textContent() === 'calculator', 'text first');
  check(await page.locator('[data-mode="semantic"] .hit').count() > 0, 'semantic answers');
  check(await page.locator('.bar-fill').count() > 0, 'score bars');
  await page.locator('[data-mode="hybrid"] details summary').first().click();
  await shot('search');
  await axe('search');
  await clean('search');
});

await step('the calculator, called through the form generated from its schema, says 42', async () => {
  await page.locator('[data-mode="hybrid"] .hit-name', { hasText: 'calculator' }).first().click();
  await page.getByRole('heading', { level: 1, name: /calculator/ }).waitFor();
  await page.getByLabel('operation').selectOption({ label: 'multiply' });
  await page.getByLabel('a', { exact: true }).fill('6');
  await page.getByLabel('b', { exact: true }).fill('7');
  await page.getByRole('button', { name: 'Call' }).click();
  await page.locator('.outcome pre').waitFor();
  const shown = JSON.parse(await page.locator('.outcome pre').textContent());
  check(shown.result === 42, `result ${JSON.stringify(shown)}`);
  check(await page.locator('.outcome .badge').textContent() === 'success', 'status');
  await page.getByLabel('expression').fill('6*7');
  await page.getByLabel('operation').selectOption({ label: '(not set)' });
  await page.getByLabel('a', { exact: true }).fill('');
  await page.getByLabel('b', { exact: true }).fill('');
  await page.getByRole('button', { name: 'Call' }).click();
  await page.locator('.outcome pre', { hasText: '42' }).waitFor();
  await shot('tool');
  await axe('tool page');
  await clean('tool page');
});

await step('the call appears in the executions log and in the chart', async () => {
  await visit('#/executions?tool=calculator');
  await page.locator('table.executions tbody tr').first().waitFor();
  check(await page.locator('table.executions tbody th', { hasText: 'calculator' }).count() >= 2, 'two calculator calls');
  await page.locator('table.executions tbody button').first().click();
  await page.locator('.execution-detail pre', { hasText: '42' }).waitFor();
  await shot('executions');
  await axe('executions');
  await visit('#/charts?tool=calculator');
  await page.locator('.charts .summary[data-calls]').waitFor();
  const calls = Number(await page.locator('.charts .summary').getAttribute('data-calls'));
  check(calls >= 2, `chart counts ${calls} calls`);
  check(await page.locator('svg.chart rect.ok').count() >= 1, 'a bar for the calls');
  await shot('charts');
  await axe('charts');
  await clean('executions and charts');
});

await step('a deactivated tool vanishes from the search', async () => {
  const search = async () => {
    await visit('#/search?q=merge%20pdf%20files');
    // Each mode's column says how it answered once its answer is in.
    for (const mode of ['hybrid', 'semantic', 'text']) await page.locator(`[data-mode="${mode}"] .mode-results p.muted`).first().waitFor();
    return page.locator('.hit-name', { hasText: 'pdf_merger' }).count();
  };
  check(await search() >= 1, 'found while active');
  await page.locator('.hit-name', { hasText: 'pdf_merger' }).first().click();
  await page.getByRole('button', { name: 'Deactivate' }).click();
  await page.locator('h1 .badge.off').waitFor();
  check(await search() === 0, 'gone once inactive');
  await clean('deactivate');
});

await step('versions: diff, a field error on edit, and rollback', async () => {
  await visit(`#/tools/${weather.id}`);
  await page.getByRole('button', { name: 'Diff with current' }).click();
  await page.locator('pre.diff ins').first().waitFor();
  check(await page.locator('pre.diff del', { hasText: 'Current weather' }).count() === 1, 'the old description is shown removed');
  await page.getByText('Edit the definition').click();
  await page.getByLabel('Name', { exact: true }).fill('not a valid name!');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('[aria-invalid="true"]').waitFor();
  const error = await page.locator('.edit .field-error:not(:empty)').first().textContent();
  check(/name/i.test(error), `the error is on the name: ${error}`);
  await axe('tool page with a field error');
  await page.getByRole('button', { name: 'Roll back' }).click();
  await page.locator('#confirm-ok').click();
  await page.locator('.pairs dd', { hasText: 'Current weather for a city' }).waitFor();
  const stored = await rest(`/admin/tools/${weather.id}`);
  check(stored.description === 'Current weather for a city', 'rolled back in the store');
  await shot('versions');
  await clean('versions', [422]);
});

await step('import from a loopback upstream MCP server', async () => {
  await visit('#/register');
  await page.getByLabel('Upstream MCP URL').fill(upstream);
  await page.getByLabel('Prefix').fill('upstream');
  await page.getByRole('button', { name: 'Import' }).click();
  await page.locator('.report-created h3').waitFor({ timeout: 30000 });
  const created = await page.locator('.report-created li').allTextContents();
  check(created.length > 0 && created.every((name) => name.startsWith('upstream.')), `created ${created}`);
  await shot('import');
  await clean('import');
});

await step('register from pasted JSON (a batch) and from the form', async () => {
  await visit('#/register');
  await page.getByLabel('Definitions (JSON)').fill(JSON.stringify([httpTool('batch_one', 'First of a batch'), httpTool('batch_two', 'Second of a batch')]));
  await page.getByRole('form', { name: 'Register from JSON' }).getByRole('button', { name: 'Register' }).click();
  await page.getByText('Registered 2 tools:').waitFor();
  const form = page.getByRole('form', { name: 'Register one tool' });
  await form.getByLabel('Name', { exact: true }).fill('form_tool');
  await form.getByLabel('Description').fill('Registered from the form');
  await form.getByLabel('URL (http and mcp)').fill('http://127.0.0.1:9/form');
  await form.getByRole('button', { name: 'Register' }).click();
  await form.getByRole('link', { name: 'form_tool' }).waitFor();
  await axe('register');
  await clean('register');
});

await step('tool-provided text renders as text (the XSS probe)', async () => {
  await visit(`#/tools/${probe.id}`);
  await page.locator('.pairs dd', { hasText: XSS }).waitFor();
  check(await page.locator('main img').count() === 0, 'no image element was made');
  await visit('#/search?q=xss_probe');
  await page.locator('.hit-description', { hasText: XSS }).first().waitFor();
  check(await page.locator('main img').count() === 0, 'no image element in the search');
  await clean('xss probe');
});

await step('health', async () => {
  await visit('#/health');
  await page.locator('.health .badge').waitFor();
  await page.getByRole('button', { name: 'Embed pending tools' }).click();
  await page.locator('#status', { hasText: 'Re-indexing started' }).waitFor();
  await shot('health');
  await axe('health');
  await clean('health');
});

await step('a phone-sized screen', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await visit('#/search?q=calculator');
  await page.locator('[data-mode="hybrid"] .hit-name').first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  await shot('search-phone');
  await page.setViewportSize({ width: 1280, height: 860 });
  await clean('phone');
});

const benchTools = Number(process.env.CONSOLE_BENCH_TOOLS || 0);
if (benchTools > 0) {
  await step(`the catalogue over ${benchTools} more tools`, async () => {
    for (let start = 0; start < benchTools; start += 1000) {
      const tools = [];
      for (let i = start; i < Math.min(benchTools, start + 1000); i++) tools.push(httpTool(`bench_tool_${String(i).padStart(5, '0')}`, `Benchmark tool number ${i}`));
      await rest('/admin/tools/batch', { method: 'POST', body: { tools } });
    }
    const timings = [];
    for (const hash of ['#/catalogue', '#/catalogue?limit=200&offset=5000', `#/catalogue?offset=${benchTools - 50}`]) {
      const started = Date.now();
      await page.goto(`${base}/console/${hash}`);
      await page.locator('.page-catalogue .summary[data-total]').waitFor();
      await page.locator('table.tools tbody tr').first().waitFor();
      timings.push(`${hash}: ${Date.now() - started} ms`);
    }
    console.log(`        catalogue of ${await page.locator('.summary').getAttribute('data-total')} tools, navigation to a shown page: ${timings.join(', ')}`);
    await shot('catalogue-10k');
    await clean('bench');
  });
}

await browser.close();
console.log(failures ? `console check: ${failures} failed` : 'console check: all passed');
process.exit(failures ? 1 : 0);
