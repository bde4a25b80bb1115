// The mediator's console — the real Temporal UI — driven step by step for the browser tests.
//
// Run by tests/ui/test_mediator_console.py: `node tests/ui/console.mjs '<config JSON>'`.
// playwright-core (npm, pinned in package.json) drives Debian's /usr/bin/chromium, headless,
// in one browser for the whole module. The test sends one JSON command per stdin line; the
// script answers each with one JSON line on stdout: {"ok": true, ...} or {"ok": false,
// "error": "…", "screenshot": "…"} (and stays up for the next command). Commands:
//   {"do": "list", "query": q, "expect": [ids], "expect_prefix": p}   the workflows list for
//        a visibility query typed in the UI's query box (none: the unfiltered list), refreshed
//        until every expected id (and one starting with p) shows
//   {"do": "details", "id": id, "expect": [texts]}      the workflow's page, User Metadata tab:
//        current details (text and links), refreshed until every expected text shows
//   {"do": "update", "id": id, "update": name, "payload": json}   "Send an Update" from the
//        workflow's page: {"accepted": true} or {"refused": [the dialog's messages]}
//        (`screenshot`: a path for the page with the refusal)
//   {"do": "open", "text": label, "sign_in": {mediator_id, console_token}?}   clicks the
//        details' link labelled `label` (on the page `details` left open); a download is saved
//        ({"download": {...}}), a page is read ({"page": {...}}); the console's sign-in form,
//        if shown, is filled in first (`sign_in_screenshot`: a path for the form)
//   {"do": "screenshot", "path": p}                      the current page, full length
//   {"do": "quit"}

import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const STEP_MS = config.step_timeout_ms ?? 60_000;
const { ui_url: ui, namespace = 'default' } = config;

const reply = (data) => process.stdout.write(JSON.stringify(data) + '\n');

/** Polls `probe` until it returns something truthy, or fails with `what` at the deadline. */
async function until(what, probe, { timeout = STEP_MS, every = 250 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

const refresh = (page) => page.getByRole('button', { name: 'Refresh', exact: true }).click();

/** The workflow IDs in the workflows table, from the rows' "Select Workflow …" checkboxes. */
async function listedWorkflows(page) {
  const labels = await page
    .locator('input[type=checkbox][aria-label^="Select Workflow "]')
    .evaluateAll((boxes) => boxes.map((box) => box.getAttribute('aria-label')));
  return labels.map((label) => label.slice('Select Workflow '.length));
}

/** A mediator's queue: the query typed into the list's query box, as the README gives it. */
async function list(page, { query, expect = [], expect_prefix: prefix }) {
  await page.goto(`${ui}/namespaces/${namespace}/workflows`);
  if (query) {
    const box = page.getByTestId('workflow-manual-search-input');
    if (!(await box.isVisible())) await page.getByTestId('toggle-manual-query').click();
    await box.fill(query);
    await box.press('Enter');
    await page.waitForURL((url) => url.searchParams.get('query') === query);
  }
  // Visibility is eventually consistent: refresh the list until the expected rows appear.
  const listed = await until(`${expect.join(', ')} ${prefix ?? ''} listed for ${query}`, async () => {
    const found = await listedWorkflows(page);
    const prefixed = !prefix || found.some((id) => id.startsWith(prefix));
    if (found.length && prefixed && expect.every((id) => found.includes(id))) return found;
    await refresh(page);
    return null;
  });
  await page.mouse.move(0, 0); // no hover state (a tooltip) in a screenshot
  return { listed, url: page.url() };
}

const detailsFrame = (page) => page.frameLocator('#user-metadata-current-details');

async function readDetails(page) {
  const body = detailsFrame(page).locator('body');
  const text = (await body.innerText({ timeout: 5_000 }).catch(() => '')).trim();
  const links = await body
    .locator('a[href]')
    .evaluateAll((as) => as.map((a) => ({ text: a.innerText.trim(), href: a.href })))
    .catch(() => []);
  return { text, links };
}

/** The workflow's page, opened from the list as a mediator would, User Metadata tab. */
async function openWorkflow(page, id) {
  if (!page.url().includes(`/workflows/${encodeURIComponent(id)}/`)) {
    await list(page, { query: `WorkflowId="${id}"`, expect: [id] });
    await page.getByRole('link', { name: id, exact: true }).click();
    await page.waitForURL((url) => url.pathname.includes(`/workflows/${id}/`));
  }
}

async function details(page, { id, expect = [] }) {
  await openWorkflow(page, id);
  await page.reload(); // the header (stage, history) and the details as of now
  await page.getByRole('tab', { name: 'User Metadata' }).click();
  const found = await until(`details of ${id} with ${JSON.stringify(expect)}`, async () => {
    const read = await readDetails(page);
    if (read.text && expect.every((part) => read.text.includes(part))) return read;
    await page.reload(); // the details are read (and their links signed) when the page loads
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    return null;
  });
  await page.mouse.move(0, 0); // no hover state in a screenshot
  return found;
}

/** The open "Send an Update" dialog (the page renders one per layout; one is shown). */
const updateDialog = (page) => page.getByTestId('update-confirmation-modal').locator('visible=true');

/** Texts of the dialog's alerts that carry a message (not the "In Progress" one). */
async function dialogErrors(dialog) {
  const texts = await dialog.getByRole('alert').allInnerTexts();
  return texts.map((t) => t.trim()).filter((t) => t && !t.startsWith('In Progress'));
}

async function update(page, { id, update: name, payload, screenshot }) {
  await openWorkflow(page, id);
  await page.reload();
  await page.getByRole('button', { name: 'More Actions' }).click();
  await page.getByRole('menuitem', { name: 'Send an Update' }).locator('visible=true').click();
  const dialog = updateDialog(page);
  await dialog.getByTestId('update-select-button').click();
  await dialog.getByRole('option', { name, exact: true }).click();
  const editor = dialog.getByRole('textbox', { name: 'Data' });
  await editor.fill(payload);
  // The editor reformats its JSON when it loses focus, which moves the Submit button: blur
  // first so the click lands on the button, not on where it was.
  await editor.blur();
  const entered = await editor.innerText();
  if (JSON.stringify(JSON.parse(entered)) !== JSON.stringify(JSON.parse(payload))) {
    throw new Error(`the editor holds ${entered}, not ${payload}`);
  }
  await dialog.getByTestId('confirm-modal-button').click();
  const toast = page.getByText('Update successful', { exact: true }).locator('visible=true').first();
  const outcome = await until(`${name} to be accepted or refused`, async () => {
    const errors = await dialogErrors(dialog);
    if (errors.length) return { refused: errors };
    if ((await dialog.count()) === 0 && (await toast.isVisible())) return { accepted: true };
    return null;
  });
  if (outcome.refused) {
    await page.mouse.move(0, 0);
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    await page.keyboard.press('Escape');
  }
  return outcome;
}

/** `promise` in a race: the loser's later failure (a timeout, a navigation a download
 * aborted) must not crash the script, so it never settles instead. */
const racing = (promise) => promise.catch(() => new Promise(() => {}));
const withTimeout = (what, promise) =>
  Promise.race([
    promise,
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`timed out after ${STEP_MS} ms: ${what}`)), STEP_MS),
    ),
  ]);

/** Follows a link of the details as the mediator clicks it: a new tab, or a download. */
async function open(page, { text, sign_in: signIn, sign_in_screenshot: signInShot }) {
  const context = page.context();
  const link = detailsFrame(page).getByRole('link', { name: text, exact: true }).first();
  const popupOrDownload = () =>
    Promise.race([
      racing(context.waitForEvent('page').then((p) => ({ popup: p }))),
      racing(page.waitForEvent('download').then((d) => ({ download: d }))),
    ]);
  const event = popupOrDownload();
  await link.click();
  let got = await withTimeout('a tab or a download', event);
  const tab = got.popup;
  let signedIn = false;
  if (tab) {
    // A tab: the sign-in form first (once per session), then the item; or the item at once.
    const download = racing(tab.waitForEvent('download').then((d) => ({ download: d })));
    const loaded = racing(tab.waitForLoadState('domcontentloaded').then(() => ({ loaded: true })));
    got = await withTimeout('the tab to load', Promise.race([download, loaded]));
    if (got.loaded && signIn && (await tab.locator('input[name=console_token]').count())) {
      if (signInShot) await tab.screenshot({ path: signInShot });
      await tab.locator('input[name=mediator_id]').fill(signIn.mediator_id);
      await tab.locator('input[name=console_token]').fill(signIn.console_token);
      const after = Promise.race([
        racing(tab.waitForEvent('download').then((d) => ({ download: d }))),
        racing(tab.waitForNavigation().then(() => ({ loaded: true }))),
      ]);
      await tab.getByRole('button').click();
      got = await withTimeout('the evidence after signing in', after);
      signedIn = true;
    }
  }
  let result;
  if (got.download) {
    const path = join(profile, `download-${Date.now()}`);
    await got.download.saveAs(path);
    const bytes = readFileSync(path);
    result = {
      download: {
        filename: got.download.suggestedFilename(),
        url: got.download.url(),
        size: bytes.length,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      },
    };
  } else {
    await tab.waitForLoadState('domcontentloaded');
    const body = (await tab.locator('body').innerText().catch(() => '')).trim();
    result = { page: { url: tab.url(), text: body } };
  }
  if (tab) await tab.close();
  return { ...result, signed_in: signedIn };
}

/** The page, tall enough to show the whole workflow page: the UI scrolls its main pane
 * (not the document), so a full-page screenshot alone would cut the current details. */
async function screenshot(page, path) {
  const viewport = page.viewportSize();
  const hidden = await page.evaluate(() => {
    let most = 0;
    for (const el of document.querySelectorAll('main, div')) {
      const overflow = getComputedStyle(el).overflowY;
      if (overflow === 'auto' || overflow === 'scroll') {
        most = Math.max(most, el.scrollHeight - el.clientHeight);
      }
    }
    return most;
  });
  if (hidden > 0) {
    await page.setViewportSize({ width: viewport.width, height: Math.min(viewport.height + hidden, 8000) });
  }
  await page.screenshot({ path, fullPage: true });
  if (hidden > 0) await page.setViewportSize(viewport);
}

const profile = mkdtempSync(join(tmpdir(), 'parley-chromium-'));
let context;
let page;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: config.chromium ?? '/usr/bin/chromium',
    headless: true,
    acceptDownloads: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1600, height: 900 },
    timezoneId: 'UTC',
    locale: 'en-US',
  });
  context.setDefaultTimeout(STEP_MS);
  page = context.pages()[0] ?? (await context.newPage());
  reply({ ok: true, ready: true });
  const commands = { list, details, update, open };
  for await (const line of createInterface({ input: process.stdin })) {
    const command = JSON.parse(line);
    if (command.do === 'quit') break;
    try {
      if (command.do === 'screenshot') {
        await screenshot(page, command.path);
        reply({ ok: true });
      } else {
        reply({ ok: true, ...(await commands[command.do](page, command)) });
      }
    } catch (error) {
      const shot = join(config.failure_dir ?? profile, `failure-${Date.now()}.png`);
      const saved = await page.screenshot({ path: shot, fullPage: true }).then(
        () => shot,
        () => null,
      );
      reply({ ok: false, error: String(error?.stack ?? error), url: page.url(), screenshot: saved });
    }
  }
} catch (error) {
  reply({ ok: false, error: String(error?.stack ?? error) });
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(0); // timers of races long settled must not keep the script alive
