// Signs in to the reviewer page through the real identity provider in Chromium, for
// tests/sso.rs, and prints one JSON object of what it saw. Every wait is bounded; a failed
// step exits non-zero (the object then says where, and AIRLOCK_FAILSHOT gets a screenshot).
//
//   AIRLOCK_URL        the reviewer page (http://127.0.0.1:PORT/)
//   AIRLOCK_USER       the login typed into the provider's form
//   AIRLOCK_APPROVE    if set: wait for the card showing this text, approve it (key A), and
//                      record every card the queue showed first
//   AIRLOCK_CHROMIUM   the browser
import { chromium } from 'playwright-core';

const { AIRLOCK_URL: url, AIRLOCK_USER: user, AIRLOCK_APPROVE: approve, AIRLOCK_CHROMIUM: exe,
  AIRLOCK_FAILSHOT: failShot } = process.env;
const WAIT = 20000;
const seen = {};
let page;

const browser = await chromium.launch({
  executablePath: exe || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync'],
});
// The provider's page imports a web font; nothing may leave the machine.
const context = await browser.newContext();
await context.route((u) => !u.hostname.startsWith('127.0.0.1'), (route) => route.abort());

async function cookie(name) {
  const c = (await context.cookies()).find((x) => x.name === name);
  return c ? { httpOnly: c.httpOnly, sameSite: c.sameSite, secure: c.secure, path: c.path,
    session_length_s: c.expires > 0 ? Math.round(c.expires - Date.now() / 1000) : null } : null;
}

const inPage = (path, method = 'GET') => page.evaluate(async ([p, m]) => {
  const res = await fetch(p, { method: m, credentials: 'same-origin', cache: 'no-store' });
  return res.status;
}, [path, method]);

let step = 'start';
try {
  page = await context.newPage();
  // Where the browser went, for a failure's report.
  seen.navigations = [];
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) seen.navigations.push(f.url().replace(/(code|state|nonce|code_challenge)=[^&]+/g, '$1=…')); });
  page.on('requestfailed', (r) => { if (!r.url().includes('fonts.')) (seen.failed_requests ??= []).push(`${r.url()} ${r.failure()?.errorText}`); });
  step = 'open the page';
  await page.goto(url);
  const button = page.locator('#sso-login');
  await button.waitFor({ state: 'visible', timeout: WAIT });
  seen.button = (await button.textContent()).trim();
  step = 'provider login form';
  await button.click();
  await page.locator('input[name=login]').waitFor({ timeout: WAIT });
  seen.provider_page = new URL(page.url()).origin;
  await page.fill('input[name=login]', user);
  await page.fill('input[name=password]', 'any password: the development form ignores it');
  await page.click('button[type=submit]');
  step = 'provider consent';
  const gateway = new URL(url).origin;
  const consent = page.locator('button', { hasText: 'Continue' });
  const back = () => page.url().startsWith(gateway);
  const deadline = Date.now() + WAIT;
  while (!back()) {
    if (Date.now() > deadline) throw new Error(`never came back to the gateway (at ${page.url()})`);
    if (await consent.count()) await consent.first().click().catch(() => {});
    await page.waitForTimeout(100);
  }
  await page.waitForLoadState('load');
  seen.url_after = page.url();
  seen.session_cookie = await cookie('airlock_session');
  if (!approve) {
    step = 'refusal page';
    const msg = page.locator('#sso-message');
    await msg.waitFor({ timeout: WAIT });
    seen.message = await msg.textContent();
    // The refusal page may not fetch (its CSP allows nothing); ask with the browser's cookies.
    seen.me = (await context.request.get(`${gateway}/auth/me`)).status();
  } else {
    step = 'signed in';
    await page.waitForFunction(() => document.getElementById('who')?.textContent.startsWith('signed in as'), null, { timeout: WAIT });
    seen.who = await page.locator('#who').textContent();
    step = 'queue';
    const card = page.locator('.card', { hasText: approve }).first();
    await card.waitFor({ timeout: WAIT });
    // Let the snapshot settle, then record everything the queue shows.
    await page.waitForTimeout(1000);
    seen.cards = await page.locator('.card pre.command').allTextContents();
    seen.api_history = await inPage('/api/history');
    step = 'approve';
    await card.locator('.top').click();
    await page.waitForTimeout(700); // the page ignores keys right after cards move
    await page.keyboard.press('a');
    await card.waitFor({ state: 'detached', timeout: WAIT });
    seen.status = await page.locator('#status').textContent();
    step = 'sign out';
    await page.click('#signout');
    await page.locator('#signin-view').waitFor({ state: 'visible', timeout: WAIT });
    // The logout is sent as the page signs out; give it a moment to land.
    const until = Date.now() + WAIT;
    while ((seen.me_after_signout = await inPage('/auth/me')) !== 401 && Date.now() < until) {
      await page.waitForTimeout(100);
    }
  }
  seen.ok = true;
  delete seen.navigations;
} catch (e) {
  seen.ok = false;
  seen.failed_at = step;
  seen.error = String(e && e.message || e);
  if (failShot && page) await page.screenshot({ path: failShot, fullPage: true }).catch(() => {});
}
await browser.close();
console.log(JSON.stringify(seen));
process.exit(seen.ok ? 0 : 1);
