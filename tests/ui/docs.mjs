// /docs and /redoc in chromium with every request to another host refused.
//
// Run by tests/ui/test_docs_offline.py: `node tests/ui/docs.mjs '<config JSON>'` with
// {"base_url": "http://127.0.0.1:PORT", "chromium": path?}. playwright-core (npm, pinned in
// package.json) drives Debian's /usr/bin/chromium, headless. The context's route lets through
// only the app's own origin and aborts the rest, recording what was refused. Prints one JSON
// line: {"ok": true, "docs": {...}, "redoc": {...}, "refused": [urls]} or {"ok": false,
// "error": "…", "refused": [...]}.

import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const base = new URL(config.base_url);
const STEP_MS = config.step_timeout_ms ?? 60_000;
const refused = [];
const reply = (data) => process.stdout.write(JSON.stringify({ ...data, refused }) + '\n');

const browser = await chromium.launch({
  executablePath: config.chromium ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  context.setDefaultTimeout(STEP_MS);
  // The network is blocked for anything but the app: a CDN asset would fail to load.
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.origin === base.origin) return route.continue();
    refused.push(url.href);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));

  await page.goto(`${base.origin}/docs`);
  // Swagger UI rendered the document: its title, the operations, and the Authorize button
  // the bearer security scheme brings.
  await page.locator('.swagger-ui .information-container .title').waitFor();
  const authorize = page.getByRole('button', { name: /Authorize/ }).first();
  await authorize.waitFor({ state: 'visible' });
  const docs = {
    title: (await page.locator('.swagger-ui .information-container .title').innerText()).trim(),
    operations: await page.locator('.opblock').count(),
    authorize: await authorize.isVisible(),
  };
  // The button opens the bearer dialog.
  await authorize.click();
  docs.dialog = (await page.locator('.modal-ux').innerText()).includes('bearer');

  await page.goto(`${base.origin}/redoc`);
  // ReDoc rendered the document: the API title and the operations' menu entries.
  await page.locator('.api-info h1').waitFor();
  const redoc = {
    title: (await page.locator('.api-info h1').innerText()).trim(),
    operations: await page.locator('[data-item-id^="tag/"] li, .menu-content li').count(),
  };
  reply({ ok: true, docs, redoc, errors });
} catch (error) {
  reply({ ok: false, error: String(error?.stack ?? error) });
} finally {
  await browser.close();
}
