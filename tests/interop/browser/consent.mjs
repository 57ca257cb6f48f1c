// Real-browser check of signing in to a relying party: authorize → login → consent (axe-core
// WCAG 2.1 AA in fi, sv and en) → code at the RP; then the form_post answer under the OP's real
// Content-Security-Policy (its one script is allowed by hash and must submit the form).
// Usage: node consent.mjs BASE_URL USERNAME PASSWORD AUTHORIZE_QUERY
// Prints one JSON line with what it saw; exits non-zero with the reason on any failure.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const [base, username, password, query] = process.argv.slice(2);
if (!base || !username || !password || !query) {
  console.error('usage: node consent.mjs BASE_URL USERNAME PASSWORD AUTHORIZE_QUERY');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const seen = { pages: [], violations: [], codes: 0, form_post: null };
const fail = async (msg) => {
  console.error(msg);
  await browser.close();
  process.exit(1);
};

// The RP is not running: its callback is answered inside the browser, and what arrives is kept.
async function fakeRp(context) {
  const arrived = [];
  await context.route('https://rp.example.fi/**', async (route) => {
    const r = route.request();
    arrived.push({ method: r.method(), url: r.url(), body: r.postData() });
    await route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>RP</title><p>ok</p>' });
  });
  return arrived;
}

const texts = {
  fi: { user: 'Käyttäjätunnus', pass: 'Salasana', submit: 'Kirjaudu', allow: 'Salli', title: 'Salli tietojesi käyttö' },
  sv: { user: 'Användarnamn', pass: 'Lösenord', submit: 'Logga in', allow: 'Tillåt', title: 'Tillåt användning av dina uppgifter' },
  en: { user: 'Username', pass: 'Password', submit: 'Log in', allow: 'Allow', title: 'Allow access to your details' },
};

for (const [lang, t] of Object.entries(texts)) {
  // axe runs inside the page; our CSP forbids injected scripts, so only this context bypasses it.
  const context = await browser.newContext({ bypassCSP: true });
  const arrived = await fakeRp(context);
  const page = await context.newPage();
  await page.goto(`${base}/oauth2/authorize?${query}&prompt=consent&ui_locales=${lang}`);
  if (!page.url().startsWith(`${base}/login`)) await fail(`${lang}: not sent to login: ${page.url()}`);
  if ((await page.getAttribute('html', 'lang')) !== lang) await fail(`${lang}: login page not in ${lang}`);
  await page.getByLabel(t.user).fill(username);
  await page.getByLabel(t.pass).fill(password);
  await page.getByRole('button', { name: t.submit }).click();
  await page.waitForLoadState();
  if ((await page.locator('h1').innerText()) !== t.title) await fail(`${lang}: consent page missing at ${page.url()}`);
  if ((await page.getAttribute('html', 'lang')) !== lang) await fail(`${lang}: consent page not in ${lang}`);
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
  for (const v of result.violations) {
    seen.violations.push({ page: `consent-${lang}`, id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) });
  }
  seen.pages.push(`consent-${lang}`);
  await page.getByRole('button', { name: t.allow, exact: true }).click();
  await page.waitForURL(/^https:\/\/rp\.example\.fi\/cb/);
  const got = new URL(arrived.at(-1).url);
  if (!got.searchParams.get('code') || got.searchParams.get('iss') !== base) await fail(`${lang}: no code/iss at the RP: ${got}`);
  seen.codes += 1;
  await context.close();
}

// Query mode under the real CSP: the login and consent forms end in redirects to the RP, which
// the browser must allow (form-action applies to every hop after a form is sent).
{
  const ctx = await browser.newContext();
  const got = await fakeRp(ctx);
  const pq = await ctx.newPage();
  await pq.goto(`${base}/oauth2/authorize?${query}&prompt=consent&ui_locales=en`);
  await pq.getByLabel(texts.en.user).fill(username);
  await pq.getByLabel(texts.en.pass).fill(password);
  await pq.getByRole('button', { name: texts.en.submit }).click();
  await pq.waitForLoadState();
  await pq.getByRole('button', { name: texts.en.allow, exact: true }).click();
  await pq.waitForURL(/^https:\/\/rp\.example\.fi\/cb/);
  if (!new URL(got.at(-1).url).searchParams.get('code')) await fail('query mode under CSP: no code');
  seen.codes += 1;
  await ctx.close();
}

// form_post under the real CSP: the auto-submit script must run and post code, state and iss.
const strict = await browser.newContext();
const arrived = await fakeRp(strict);
const page = await strict.newPage();
const cspErrors = [];
page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });
await page.goto(`${base}/oauth2/authorize?${query}&response_mode=form_post&ui_locales=en`);
await page.getByLabel(texts.en.user).fill(username);
await page.getByLabel(texts.en.pass).fill(password);
await page.getByRole('button', { name: texts.en.submit }).click();
await page.waitForURL(/^https:\/\/rp\.example\.fi\/cb/);
const post = arrived.at(-1);
if (post.method !== 'POST') await fail(`form_post arrived as ${post.method}`);
const fields = new URLSearchParams(post.body);
if (!fields.get('code') || fields.get('iss') !== base || !fields.get('state')) await fail(`form_post body: ${post.body}`);
if (cspErrors.length) await fail(`CSP blocked something: ${cspErrors.join(' | ')}`);
seen.form_post = { method: post.method, fields: [...fields.keys()] };

await browser.close();
console.log(JSON.stringify(seen));
process.exit(seen.violations.length ? 1 : 0);
