// The resident's day in Chromium: open the front page, log in once, see a notice posted through
// the API, open the directory and filter it by sub-region, open the notice board (a second
// service) without typing the password again, add a service to the directory as its editor, and
// log out everywhere. axe-core WCAG 2.1 AA on the front page (visitor and resident), login,
// directory, its edit pages and notice board.
// Usage: node portal.mjs BASE_URL USERNAME PASSWORD NOTICE_TITLE [SCREENSHOT_DIR]
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const [base, username, password, noticeTitle, shots] = process.argv.slice(2);
if (!base || !username || !password || !noticeTitle) {
  console.error('usage: node portal.mjs BASE_URL USERNAME PASSWORD NOTICE_TITLE [SCREENSHOT_DIR]');
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
const seen = { pages: [], violations: [], passwordsTyped: 0 };
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

await page.goto(`${base}/`);
if (page.url() !== `${base}/`) await fail(`visitor front page ended at ${page.url()}`);
await audit('front-visitor');
await page.getByRole('link', { name: 'Kirjaudu', exact: true }).first().click();
await page.waitForURL(/\/login\?/);
await audit('login');
await page.getByLabel('Käyttäjätunnus').fill(username);
await page.getByLabel('Salasana').fill(password);
seen.passwordsTyped += 1;
await page.getByRole('button', { name: 'Kirjaudu' }).click();
await page.waitForURL(`${base}/`);
if (!(await page.getByText(noticeTitle).count())) await fail('the posted notice is not on the front page');
await audit('front-resident');

// The directory, filtered by a sub-region.
await page.getByRole('link', { name: 'Palveluhakemisto' }).first().click();
await page.waitForURL(`${base}/services/directory/`);
await page.getByLabel('Seutukunta').selectOption('011');
await page.getByRole('button', { name: 'Hae' }).click();
await page.waitForURL(/seutukunta=011/);
await audit('directory');

// The resident is also a directory editor: add a service through the edit pages.
await page.getByRole('link', { name: 'Hallinnoi palveluhakemistoa' }).click();
await page.waitForURL(`${base}/services/directory/manage/`);
await audit('directory-manage');
await page.getByRole('link', { name: 'Lisää palvelu' }).click();
await page.waitForURL(`${base}/services/directory/manage/new`);
await audit('directory-edit');
await page.getByLabel('Tunniste').fill('selaintesti');
for (const [group, texts] of [['Nimi', ['Selainpalvelu', 'Webbtjänst', 'Browser service']],
  ['Kuvaus', ['Kuvaus', 'Beskrivning', 'Description']]]) {
  const fs = page.getByRole('group', { name: group });
  await fs.getByLabel('Suomeksi').fill(texts[0]);
  await fs.getByLabel('Ruotsiksi').fill(texts[1]);
  await fs.getByLabel('Englanniksi').fill(texts[2]);
}
await page.getByLabel('Tarjoaja').fill('Testikunta');
await page.getByLabel('Sähköisen palvelun osoite').fill('https://palvelu.example.fi/');
await page.getByRole('button', { name: 'Tallenna' }).click();
await page.waitForURL(/\/services\/directory\/manage\/\?done=saved/);
if (!(await page.getByText('Palvelu tallennettiin.').count())) await fail('the service was not saved');
if (!(await page.getByText('Selainpalvelu').count())) await fail('the saved service is not listed');

// The notice board: a second service, entered through silent SSO.
await page.goto(`${base}/services/noticeboard/`);
await page.waitForURL(`${base}/services/noticeboard/`);
if (!(await page.getByText(noticeTitle).count())) await fail('the notice is not on the notice board');
if (page.url().includes('/login')) await fail('asked for the password again');
await audit('noticeboard');
await page.getByRole('button', { name: new RegExp(`^Merkitse luetuksi`) }).first().click();
await page.waitForURL(`${base}/services/noticeboard/`);

// Log out everywhere from the account page.
await page.goto(`${base}/account`);
await page.getByRole('button', { name: 'Kirjaudu ulos kaikkialta' }).click();
await page.waitForURL(/\/login\?logged_out=1$/);
await page.goto(`${base}/services/noticeboard/`);
await page.waitForLoadState();
if (!page.url().includes('/login')) await fail(`still logged in to the notice board: ${page.url()}`);

await browser.close();
console.log(JSON.stringify(seen));
process.exit(seen.violations.length ? 1 : 0);
