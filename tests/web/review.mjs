// Drives the reviewer page in a real Chromium for tests/web.rs. Signs in with a token, waits
// for the card of COMMAND, checks what it shows, saves a screenshot of the queue, then acts:
//   approve  — press A
//   deny     — press D
//   remember — press R, choose "any target" and 1 day in the dialog, press Enter
// and, after an approval, opens the History tab and plays the session's recording.
// Prints one JSON object with what it saw; exits non-zero on any failure or page error.
import { chromium } from 'playwright-core';

const { AIRLOCK_URL: url, AIRLOCK_TOKEN: token, AIRLOCK_ACTION: action, AIRLOCK_COMMAND: command,
  AIRLOCK_SHOT: shot, AIRLOCK_CHROMIUM: exe } = process.env;
const WAIT = 20000;

const browser = await chromium.launch({
  executablePath: exe || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync'],
});
const errors = [];
const seen = {};
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(url);
  await page.fill('#token', token);
  await page.press('#token', 'Enter');
  await page.locator('#who', { hasText: 'signed in as' }).waitFor({ timeout: WAIT });
  seen.signed_in_as = await page.locator('#who').textContent();
  seen.token_in_url = page.url().includes(token);
  seen.token_in_storage = await page.evaluate(() => sessionStorage.getItem('airlock-reviewer-token') !== null);

  const card = page.locator('.card', { hasText: command });
  await card.waitFor({ timeout: WAIT });
  seen.tier = (await card.locator('.tier').textContent()).trim();
  seen.marks = await card.locator('pre.command mark').count();
  seen.countdown = await card.locator('.countdown').textContent();
  seen.approvals = await card.locator('.top .muted').textContent();
  seen.labels = (await card.locator('.label').allTextContents()).join(' ');
  seen.stated = (await card.locator('.stated').count()) ? await card.locator('.stated').textContent() : null;
  seen.reasons = await card.locator('.reasons li').allTextContents();
  // The terminal context refreshes every 2 s from the session's recording (flushed within a
  // second): the agent is being told it waits.
  await page.waitForFunction((id) => {
    const box = document.querySelector(`.card[data-id="${id}"] .screen`);
    return box && box.textContent.includes('airlock: waiting for approval');
  }, await card.getAttribute('data-id'), { timeout: WAIT });
  seen.screen = await card.locator('.screen').textContent();
  if (shot) await page.screenshot({ path: shot, fullPage: true });

  if (action === 'approve') await page.keyboard.press('a');
  else if (action === 'deny') await page.keyboard.press('d');
  else if (action === 'remember') {
    await page.keyboard.press('r');
    await page.locator('#remember[open]').waitFor({ timeout: WAIT });
    await page.check('#remember-form input[name=target][value=any]');
    await page.check('#remember-form input[name=ttl][value="1d"]');
    await page.press('#remember-ok', 'Enter');
  } else throw new Error(`unknown action ${action}`);
  await card.waitFor({ state: 'detached', timeout: WAIT });
  await page.locator('#status', { hasText: /approved|denied|remembered/ }).waitFor({ timeout: WAIT });
  seen.status = await page.locator('#status').textContent();

  if (action !== 'deny') {
    await page.keyboard.press('h');
    const row = page.locator('#history tr', { hasText: command });
    await row.waitFor({ timeout: WAIT });
    seen.history = await row.textContent();
    // The session finishes a moment after the approval; reload until its row is there.
    const session = page.locator('#sessions tr', { hasText: command });
    for (let i = 0; i < 20 && !(await session.count()); i++) {
      await page.waitForTimeout(500);
      await page.click('#tab-history');
    }
    await session.locator('button.play').click();
    await page.locator('#player .ap-wrapper').waitFor({ timeout: WAIT });
    seen.markers = await page.locator('#markers button').allTextContents();
  }
} catch (e) {
  errors.push(String(e && e.stack || e));
} finally {
  await browser.close();
}
seen.errors = errors;
console.log(JSON.stringify(seen));
process.exit(errors.length ? 1 : 0);
