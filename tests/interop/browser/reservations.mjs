// Booking and paying in Chromium: the resident logs in, opens a facility's week calendar, books
// two hours, pays in the built-in test bank, sees the reservation confirmed and its notice on the
// front page, cancels it after a confirmation step (the payment is refunded). A second browser window, with the pages' real
// Content-Security-Policy, keeps the same calendar open: the booking turns its slot taken without
// a reload (server-sent events). axe-core WCAG 2.1 AA on the calendar, own reservations, the test
// bank and the front page.
// Usage: node reservations.mjs BASE_URL USERNAME PASSWORD RESOURCE_ID WEEK BEGINS_AT RESOURCE_NAME [SCREENSHOT_DIR]
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const [base, username, password, resource, week, beginsAt, resourceName, shots] = process.argv.slice(2);
if (!resourceName) {
  console.error('usage: node reservations.mjs BASE_URL USERNAME PASSWORD RESOURCE_ID WEEK BEGINS_AT RESOURCE_NAME [SCREENSHOT_DIR]');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
if (shots) mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const seen = { pages: [], violations: [], states: [], liveUpdate: false, notice: false };
const fail = async (msg) => {
  console.error(msg);
  await browser.close();
  process.exit(1);
};
const calendar = `${base}/services/reservations/resources/${resource}?week=${week}`;

// The watcher: the calendar open in another window, real CSP (its script and event stream).
const watcherContext = await browser.newContext({ locale: 'fi-FI' });
const watcher = await watcherContext.newPage();
await watcher.goto(calendar);
const slotButton = (p) => p.locator(`button[name="begins_at"][value="${beginsAt}"]`);
const slotLabel = await watcher.locator('#calendar').getByText(/–/).first().textContent();
if (!slotLabel) await fail('the calendar shows no slots');
// Give the event stream a moment to connect.
await watcher.waitForTimeout(500);

const context = await browser.newContext({ bypassCSP: true, locale: 'fi-FI' });
const page = await context.newPage();
async function audit(name) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
  for (const v of result.violations) {
    seen.violations.push({ page: name, id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) });
  }
  seen.pages.push(name);
  if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

await page.goto(`${base}/login?next=%2Faccount`);
await page.getByLabel('Käyttäjätunnus').fill(username);
await page.getByLabel('Salasana').fill(password);
await page.getByRole('button', { name: 'Kirjaudu' }).click();
await page.waitForURL(/\/account/);

// The calendar: logged in at the IdP, the resident is recognised without a click.
await page.goto(calendar);
await page.waitForURL(calendar);
await audit('reservation-calendar');
await page.getByLabel('Kesto').selectOption({ label: '120 min' });
await page.getByLabel('Käyttötarkoitus').fill('Kuoroharjoitus');
if (!(await slotButton(page).count())) await fail(`no free slot ${beginsAt} on the calendar`);
await slotButton(page).click();
await page.waitForURL(/\/services\/reservations\/mine\?done=/);
if (!(await page.getByText('Odottaa maksua').count())) await fail('the new reservation does not wait for payment');
seen.states.push('waiting_for_payment');
await audit('reservations-mine');

// The watcher's calendar turned the slot taken without a reload.
try {
  await slotButton(watcher).waitFor({ state: 'detached', timeout: 10000 });
  seen.liveUpdate = true;
} catch {
  seen.liveUpdate = false;
}

// Pay in the test bank.
await page.getByRole('button', { name: /^Maksa/ }).click();
await page.waitForURL(/\/testbank\//);
if (!(await page.getByText('TESTIPANKKI').count())) await fail('the test bank does not say it is a test');
await audit('testbank');
await page.getByRole('button', { name: 'Maksa', exact: true }).click();
await page.waitForURL(/\/services\/reservations\/mine\?done=/);
if (!(await page.getByText('Vahvistettu').count())) await fail('the paid reservation is not confirmed');
seen.states.push('confirmed');

// The front page shows the notice (it is posted right after the payment).
for (let i = 0; i < 20 && !seen.notice; i += 1) {
  await page.goto(`${base}/`);
  seen.notice = (await page.getByText(`Varaus vahvistettu: ${resourceName}`).count()) > 0;
  if (!seen.notice) await page.waitForTimeout(250);
}
if (!seen.notice) await fail('the confirmation notice is not on the front page');
await audit('front-with-reservation');

// Cancel: refunded.
await page.goto(`${base}/services/reservations/mine`);
await page.getByRole('button', { name: /^Peru/ }).first().click();
// A paid reservation asks first, naming the refund.
if (!(await page.getByText('maksu 40,00 € palautetaan').count())) await fail('no confirmation before cancelling a paid reservation');
await audit('reservations-confirm-cancel');
await page.getByRole('button', { name: 'Kyllä, peru varaus' }).click();
await page.waitForURL(`${base}/services/reservations/mine`);
if (!(await page.getByText('Peruttu').count())) await fail('the reservation was not cancelled');
seen.states.push('cancelled');
await audit('reservations-after-cancel');

await browser.close();
console.log(JSON.stringify(seen));
