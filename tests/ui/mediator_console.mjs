// The mediator's console, driven through the real Temporal UI (SPEC §5).
//
// Run by tests/ui/test_mediator_console.py: `node tests/ui/mediator_console.mjs '<config JSON>'`.
// playwright-core (npm, pinned in package.json) drives Debian's /usr/bin/chromium, headless.
// The script speaks JSON lines on stdout:
//   {"step": "found", ...}     the dispute, found with the ParleyStage filter
//   {"step": "refused", ...}   the invalid split was refused; the script then waits for one
//                              line on stdin, so the test can check nothing changed
//   {"step": "accepted", ...}  the valid split went through; screenshot written
//   {"step": "error", ...}     anything else (exit status 1)

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const STEP_MS = config.step_timeout_ms ?? 60_000;

const emit = (step, data = {}) => process.stdout.write(JSON.stringify({ step, ...data }) + '\n');
const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

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

/** The workflow IDs in the workflows table, from the rows' "Select Workflow …" checkboxes. */
async function listedWorkflows(page) {
  const labels = await page
    .locator('input[type=checkbox][aria-label^="Select Workflow "]')
    .evaluateAll((boxes) => boxes.map((box) => box.getAttribute('aria-label')));
  return labels.map((label) => label.slice('Select Workflow '.length));
}

/** Types a visibility query into the workflow list's query box and waits for `id` to show. */
async function filterFor(page, query, id) {
  const box = page.getByTestId('workflow-manual-search-input');
  if (!(await box.isVisible())) await page.getByTestId('toggle-manual-query').click();
  await box.fill(query);
  await box.press('Enter');
  await page.waitForURL((url) => url.searchParams.get('query') === query);
  // Visibility is eventually consistent: refresh the list until the row appears.
  return until(`${id} listed for ${query}`, async () => {
    const listed = await listedWorkflows(page);
    if (listed.includes(id)) return listed;
    await page.getByRole('button', { name: 'Refresh', exact: true }).click();
    return null;
  });
}

/** The open "Send an Update" dialog (the page renders one per layout; one is shown). */
const updateDialog = (page) => page.getByTestId('update-confirmation-modal').locator('visible=true');

/** Enters `payload` in the dialog's JSON editor and submits it. */
async function submitPayload(dialog, payload) {
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
}

/** Texts of the dialog's alerts that carry a message (not the "In Progress" one). */
async function dialogErrors(dialog) {
  const texts = await dialog.getByRole('alert').allInnerTexts();
  return texts.map((t) => t.trim()).filter((t) => t && !t.startsWith('In Progress'));
}

async function currentDetails(page) {
  const frame = page.frameLocator('#user-metadata-current-details');
  return (await frame.locator('body').innerText({ timeout: 5_000 }).catch(() => '')).trim();
}

async function main(page) {
  const { ui_url: ui, namespace = 'default', workflow_id: id } = config;

  // 1. The mediator's search: every workflow, then the ParleyStage filter.
  await page.goto(`${ui}/namespaces/${namespace}/workflows`);
  const unfiltered = await until(`${id} in the unfiltered list`, async () => {
    const listed = await listedWorkflows(page);
    return listed.includes(id) ? listed : null;
  });
  const listed = await filterFor(page, config.stage_query, id);
  emit('found', { unfiltered, listed, url: page.url() });

  // 2. The dispute's page, then "Send an Update" from the workflow's actions.
  await page.getByRole('link', { name: id, exact: true }).click();
  await page.waitForURL((url) => url.pathname.includes(`/workflows/${id}/`));
  await page.getByRole('button', { name: 'More Actions' }).click();
  await page.getByRole('menuitem', { name: 'Send an Update' }).locator('visible=true').click();
  const dialog = updateDialog(page);
  await dialog.getByTestId('update-select-button').click();
  await dialog.getByRole('option', { name: config.update, exact: true }).click();

  // 3. An invalid split: the validator's message shows, the dialog stays open.
  await submitPayload(dialog, config.invalid_payload);
  const errors = await until('the validator message', async () => {
    const found = await dialogErrors(dialog);
    if (found.length) return found;
    if ((await dialog.count()) === 0) throw new Error('the invalid update was accepted');
    return null;
  });
  const firstLines = errors.map((text) => text.split('\n')[0]);
  emit('refused', { errors: firstLines, dialog_open: await dialog.isVisible() });
  const answer = await stdin.next();
  if (answer.done || answer.value.trim() !== 'go') throw new Error('the test said stop');

  // 4. The valid split, in the same dialog: it closes and the UI reports success.
  await submitPayload(dialog, config.valid_payload);
  const toast = page.getByText('Update successful', { exact: true }).locator('visible=true').first();
  await until('the update to succeed', async () => {
    const failed = await dialogErrors(dialog);
    if (failed.length) throw new Error(`the valid update was refused: ${failed.join(' / ')}`);
    return (await dialog.count()) === 0 && (await toast.isVisible());
  });

  // 5. The current details (User Metadata) show the proposal; that page is the screenshot,
  // reloaded so that the header (history size, event count) is current too.
  await page.reload();
  await page.getByRole('tab', { name: 'User Metadata' }).click();
  const details = await until('current details with the proposal', async () => {
    const text = await currentDetails(page);
    if (config.details_expect.every((part) => text.includes(part))) return text;
    await page.getByRole('button', { name: 'Refresh', exact: true }).click();
    return null;
  });
  await page.mouse.move(0, 0); // no hover state in the picture
  await page.screenshot({ path: config.screenshot, fullPage: true });

  // 6. And the list now finds it under the new stage.
  await page.goto(`${ui}/namespaces/${namespace}/workflows`);
  const moved = await filterFor(page, config.next_stage_query, id);
  emit('accepted', { details, listed: moved, screenshot: config.screenshot });
}

const profile = mkdtempSync(join(tmpdir(), 'parley-chromium-'));
let context;
let status = 0;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: config.chromium ?? '/usr/bin/chromium',
    headless: true,
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
  const page = context.pages()[0] ?? (await context.newPage());
  try {
    await main(page);
  } catch (error) {
    status = 1;
    let shot = null;
    if (config.failure_screenshot) {
      shot = config.failure_screenshot;
      await page.screenshot({ path: shot, fullPage: true }).catch(() => (shot = null));
    }
    emit('error', { message: String(error?.stack ?? error), url: page.url(), screenshot: shot });
  }
} catch (error) {
  status = 1;
  emit('error', { message: String(error?.stack ?? error) });
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(status);
