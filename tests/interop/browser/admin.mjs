// The administration pages in Chromium with axe-core WCAG 2.1 AA: people, one person (granting a
// right through the form), services, roles, audit log, statistics, in Finnish and Swedish.
// Usage: node admin.mjs BASE_URL USERNAME PASSWORD PERSON_ID [SCREENSHOT_DIR]
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const [base, username, password, personId, shots] = process.argv.slice(2);
if (!base || !username || !password || !personId) {
  console.error('usage: node admin.mjs BASE_URL USERNAME PASSWORD PERSON_ID [SCREENSHOT_DIR]');
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
const seen = { pages: [], violations: [], granted: false };
const fail = async (msg) => {
  console.error(msg);
  await browser.close();
  process.exit(1);
};
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

await page.goto(`${base}/admin/users`);
await page.waitForURL(/\/login\?/);
await page.getByLabel('Käyttäjätunnus').fill(username);
await page.getByLabel('Salasana').fill(password);
await page.getByRole('button', { name: 'Kirjaudu' }).click();
await page.waitForURL(`${base}/admin/users`);
await audit('users');
await page.getByLabel('Hae nimellä, käyttäjätunnuksella tai sähköpostilla').fill('asiakas');
await page.getByRole('button', { name: 'Hae' }).click();
await page.waitForURL(/q=asiakas/);
await page.locator(`a[href="/admin/users/${personId}"]`).click();
await page.waitForURL(`${base}/admin/users/${personId}`);
await audit('person');
await page.getByLabel('Oikeus (palvelu:toiminto) tai roolin nimi').fill('directory:edit');
await page.getByRole('button', { name: 'Myönnä' }).click();
await page.waitForURL(/done=granted/);
if (!(await page.getByText('Oikeus myönnettiin.').count())) await fail('the grant was not confirmed');
seen.granted = (await page.getByText('directory:edit').count()) > 0;
await audit('person-granted');
for (const [path, name] of [['/admin/clients', 'clients'], ['/admin/sps', 'sps'], ['/admin/roles', 'roles'],
  ['/admin/audit', 'audit'], ['/admin/statistics', 'statistics'], ['/admin/users?lang=sv', 'users-sv']]) {
  await page.goto(`${base}${path}`);
  await audit(name);
}
await browser.close();
console.log(JSON.stringify(seen));
process.exit(seen.violations.length ? 1 : 0);
