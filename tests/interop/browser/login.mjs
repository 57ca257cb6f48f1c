// Real-browser check of the login flow in Debian's Chromium, with axe-core WCAG 2.1 AA checks
// of every page it passes through, in fi, sv and en.
// Usage: node login.mjs BASE_URL USERNAME PASSWORD [SCREENSHOT_DIR]
// Prints one JSON line with what it saw; exits non-zero with the reason on any failure.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const [base, username, password, shots] = process.argv.slice(2);
if (!base || !username || !password) {
  console.error('usage: node login.mjs BASE_URL USERNAME PASSWORD [SCREENSHOT_DIR]');
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
const seen = { pages: [], violations: [] };
const fail = async (msg) => {
  console.error(msg);
  await browser.close();
  process.exit(1);
};

// axe runs inside the page; our CSP forbids injected scripts, so only this test context bypasses it.
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

const texts = {
  fi: { title: 'Kirjaudu sisään', user: 'Käyttäjätunnus', pass: 'Salasana', submit: 'Kirjaudu', account: 'Oma tili',
    wrong: 'Käyttäjätunnus tai salasana on väärin.', logout: 'Kirjaudu ulos', loggedOut: 'Olet kirjautunut ulos.' },
  sv: { title: 'Logga in', user: 'Användarnamn', pass: 'Lösenord', submit: 'Logga in', account: 'Mitt konto',
    wrong: 'Användarnamnet eller lösenordet är fel.', logout: 'Logga ut', loggedOut: 'Du har loggat ut.' },
  en: { title: 'Log in', user: 'Username', pass: 'Password', submit: 'Log in', account: 'My account',
    wrong: 'The username or password is incorrect.', logout: 'Log out', loggedOut: 'You have logged out.' },
};

for (const [lang, t] of Object.entries(texts)) {
  await page.goto(`${base}/login?lang=${lang}`);
  if ((await page.getAttribute('html', 'lang')) !== lang) await fail(`${lang}: html lang is wrong`);
  if ((await page.locator('h1').innerText()) !== t.title) await fail(`${lang}: login heading missing`);
  // The skip link is the first thing the keyboard reaches.
  await page.keyboard.press('Tab');
  const first = await page.evaluate(() => document.activeElement.getAttribute('href'));
  if (first !== '#main') await fail(`${lang}: first tab stop is ${first}, not the skip link`);
  await audit(`login-${lang}`);

  // A wrong password: the error is announced and tied to the fields.
  await page.getByLabel(t.user).fill(username);
  await page.getByLabel(t.pass).fill('definitely-wrong');
  await page.getByRole('button', { name: t.submit }).click();
  await page.waitForLoadState();
  const alert = await page.getByRole('alert').innerText();
  if (!alert.includes(t.wrong)) await fail(`${lang}: wrong-password alert missing: ${alert}`);
  await audit(`login-error-${lang}`);

  // The right password: the account page with the resident's name.
  await page.getByLabel(t.user).fill(username);
  await page.getByLabel(t.pass).fill(password);
  await page.getByRole('button', { name: t.submit }).click();
  await page.waitForURL(`${base}/account`);
  if ((await page.locator('h1').innerText()) !== t.account) await fail(`${lang}: account heading missing`);
  await audit(`account-${lang}`);

  // Log out through the header link and the confirmation page.
  await page.getByRole('link', { name: t.logout }).click();
  await page.waitForURL(`${base}/logout`);
  await audit(`logout-${lang}`);
  await page.getByRole('button', { name: t.logout }).click();
  await page.waitForURL(/\/login\?logged_out=1$/);
  if (!(await page.getByRole('status').innerText()).includes(t.loggedOut)) await fail(`${lang}: logout notice missing`);
  await page.goto(`${base}/account`);
  if (!page.url().startsWith(`${base}/login`)) await fail(`${lang}: account still open after logout`);
}

await browser.close();
console.log(JSON.stringify(seen));
process.exit(seen.violations.length ? 1 : 0);
