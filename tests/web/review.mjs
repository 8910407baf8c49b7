// Drives the reviewer page in a real Chromium for tests/web.rs. Signs in with AIRLOCK_TOKEN,
// runs AIRLOCK_STEPS (a JSON list of steps, below) in order, and prints one JSON object of
// what it saw. Every wait is bounded; a failed step or any page error exits non-zero (the
// object then says which step, and AIRLOCK_FAILSHOT, if set, gets a screenshot).
//
// Cards are named by the test ("as"); a name stands for the card's request id afterwards.
//   {"card": TEXT, "as": NAME}      wait for the card whose text contains TEXT
//   {"inspect": NAME, "as": KEY}    record what card NAME shows (KEY defaults to NAME)
//   {"screen": NAME}                wait until NAME's terminal context shows the waiting line
//   {"click": NAME}                 click card NAME's header (selects it)
//   {"key": K}                      press key K on the page
//   {"button": NAME, "class": C}   click card NAME's button of class C (approve, remember, deny)
//   {"fill": SELECTOR, "text": T}   type T into an input (replacing its value)
//   {"press": SELECTOR, "key": K}   press K in that element
//   {"check": SELECTOR}             tick a radio button or checkbox
//   {"tap": SELECTOR}               click the one element SELECTOR names (tabs, list buttons)
//   {"open": ID} / {"closed": ID}   wait for dialog ID to be open / closed
//   {"text": SELECTOR, "as": KEY}   record an element's text
//   {"gone": NAME}                  wait for card NAME to leave the queue
//   {"present": NAME, "as": KEY}    record whether card NAME is still in the queue
//   {"status": REGEX, "as": KEY}    wait until the status bar matches (any of its lines)
//   {"latest": REGEX, "as": KEY}    wait until its newest line matches
//   {"selected": KEY}               record the names of the selected cards
//   {"sent": KEY}                   record every decide frame the page has sent
//   {"notes": KEY}                  record every desktop notification the page made
//   {"sleep": MS}
//   {"touch": PATH}                 create PATH (tells the test how far the page got)
//   {"shot": PATH}                  screenshot of the whole page
//   {"history": TEXT, "as": KEY}    open History, record TEXT's row, play its session
//   {"scripts": NAME, "as": KEY}    record the files card NAME shows it runs, and whether agent
//                                   text injected any element (an <img>) or ran (window.__pwned)
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const { AIRLOCK_URL: url, AIRLOCK_TOKEN: token, AIRLOCK_STEPS: stepsJson, AIRLOCK_CHROMIUM: exe,
  AIRLOCK_FAILSHOT: failShot } = process.env;
const WAIT = 20000;
const steps = JSON.parse(stepsJson || '[]');

const browser = await chromium.launch({
  executablePath: exe || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync'],
});
const errors = [];
const seen = {};
const ids = new Map(); // card name -> request id
const nameOf = (id) => [...ids].find(([, v]) => v === id)?.[0] ?? id;

// Before the page's own script: count the decide frames it sends (never the auth frame,
// which holds the token) and the notifications it makes.
function instrument() {
  window.__sent = [];
  window.__notes = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    try { const m = JSON.parse(data); if (m.type === 'decide') window.__sent.push(m); } catch { /* not ours */ }
    return send.call(this, data);
  };
  const Real = window.Notification;
  window.Notification = class {
    constructor(title, options) { window.__notes.push({ title, body: options?.body ?? null }); }
    static get permission() { return Real.permission; }
    static requestPermission() { return Real.requestPermission(); }
  };
}

let page;
const card = (name) => {
  if (!ids.has(name)) throw new Error(`no card named ${name}`);
  return page.locator(`.card[data-id="${ids.get(name)}"]`);
};
const texts = (loc) => loc.allTextContents();
const optionalText = async (loc) => ((await loc.count()) ? loc.first().textContent() : null);

async function inspect(name) {
  const c = card(name);
  await c.waitFor({ timeout: WAIT });
  return {
    tier: (await c.locator('.tier').textContent()).trim(),
    command: await c.locator('pre.command').textContent(),
    marks: await c.locator('pre.command mark').count(),
    chips: await texts(c.locator('pre.command .mark')),
    chip_titles: await c.locator('pre.command .mark').evaluateAll((els) => els.map((e) => e.title)),
    more: await optionalText(c.locator('.more')),
    flags: await texts(c.locator('ul.command-flags li')),
    reason_flags: await texts(c.locator('ul.reason-flags li')),
    stated: await optionalText(c.locator('.stated')),
    reasons: await texts(c.locator('.reasons li')),
    countdown: await c.locator('.countdown').textContent(),
    approvals: await c.locator('.top .muted').textContent(),
    progress: await optionalText(c.locator('.top .progress')),
    needs: await optionalText(c.locator('p.needs')),
    not_counted: await optionalText(c.locator('p.not-counted')),
    labels: (await texts(c.locator('.label'))).join(' '),
    buttons: await texts(c.locator('.actions button')),
    selected: await c.evaluate((e) => e.classList.contains('selected')),
    // Every character of the card as rendered, so a test can look for raw invisible ones.
    text: await c.evaluate((e) => e.textContent),
    page_width: await page.evaluate(() => document.documentElement.scrollWidth),
    viewport_width: await page.evaluate(() => window.innerWidth),
  };
}

async function scriptsOf(name) {
  const c = card(name);
  await c.locator('.script').first().waitFor({ timeout: WAIT });
  const files = await c.locator('.script').evaluateAll((els) => els.map((s) => ({
    path: s.querySelector('.script-path')?.textContent ?? null,
    kind: s.querySelector('.script-kind')?.textContent ?? null,
    size: s.querySelector('.script-size')?.textContent ?? null,
    sha: s.querySelector('.script-head .sha')?.textContent ?? null,
    sha_title: s.querySelector('.script-head .sha')?.title ?? null,
    sha_full: s.querySelector('.script-head .sha')?.dataset.sha ?? null,
    problem: s.querySelector('.script-problem')?.textContent ?? null,
    flags: [...s.querySelectorAll('ul.script-flags li')].map((e) => e.textContent),
    summary: s.querySelector('.script-lines')?.textContent ?? null,
    lines: [...s.querySelectorAll('.sl')].map((e) => [e.querySelector('.ln').textContent, e.querySelector('.code').textContent]),
    risky: [...s.querySelectorAll('.sl.risky')].map((e) => ({ line: e.dataset.line, class: e.className,
      text: e.querySelector('.code').textContent, background: getComputedStyle(e).backgroundColor })),
    why: [...s.querySelectorAll('.why')].map((e) => e.textContent),
    marks: [...s.querySelectorAll('.script-code .mark')].map((e) => e.textContent),
    changed: s.querySelector('.script-changed')?.textContent ?? null,
    added: [...s.querySelectorAll('.dl.add')].map((e) => e.textContent),
    removed: [...s.querySelectorAll('.dl.del')].map((e) => e.textContent),
    text: s.textContent,
  })));
  return {
    files,
    title: await optionalText(c.locator('.scripts-title')),
    images: await page.evaluate(() => document.querySelectorAll('img').length),
    elements_in_code: await c.locator('.script-code .code *:not(.mark), .diff .dl *:not(.mark)').count(),
    pwned: await page.evaluate(() => window.__pwned ?? null),
  };
}

async function statusMatches(selector, re) {
  const rx = new RegExp(re);
  const deadline = Date.now() + WAIT;
  for (;;) {
    const t = (await optionalText(page.locator(selector))) ?? '';
    if (rx.test(t)) return t;
    if (Date.now() > deadline) throw new Error(`status never matched /${re}/; it says: ${t}`);
    await page.waitForTimeout(100);
  }
}

async function history(text) {
  await page.keyboard.press('h');
  const row = page.locator('#history tr', { hasText: text });
  await row.waitFor({ timeout: WAIT });
  const out = { row: await row.textContent() };
  // The session finishes a moment after the approval; reload until its row is there.
  const session = page.locator('#sessions tr', { hasText: text });
  for (let i = 0; i < 20 && !(await session.count()); i++) {
    await page.waitForTimeout(500);
    await page.click('#tab-history');
  }
  await session.first().locator('button.play').click();
  await page.locator('#player .ap-wrapper').waitFor({ timeout: WAIT });
  out.markers = await texts(page.locator('#markers button'));
  return out;
}

async function run(s) {
  if ('card' in s) {
    const c = page.locator('.card', { hasText: s.card }).first();
    await c.waitFor({ timeout: WAIT });
    ids.set(s.as, await c.getAttribute('data-id'));
  } else if ('inspect' in s) seen[s.as ?? s.inspect] = await inspect(s.inspect);
  else if ('screen' in s) {
    // Refreshed every 2 s from the session's recording (flushed within a second).
    await page.waitForFunction((id) => {
      const box = document.querySelector(`.card[data-id="${id}"] .screen`);
      return box && box.textContent.includes('airlock: waiting for approval');
    }, ids.get(s.screen), { timeout: WAIT });
    seen[`${s.screen}_screen`] = await card(s.screen).locator('.screen').textContent();
  } else if ('click' in s) await card(s.click).locator('.top').click();
  else if ('button' in s) await card(s.button).locator(`.actions button.${s.class}`).click();
  else if ('key' in s && !('press' in s)) await page.keyboard.press(s.key);
  else if ('fill' in s) await page.fill(s.fill, s.text);
  else if ('press' in s) await page.press(s.press, s.key);
  else if ('check' in s) await page.check(s.check);
  else if ('tap' in s) await page.locator(s.tap).click();
  else if ('open' in s) await page.locator(`dialog#${s.open}[open]`).waitFor({ timeout: WAIT });
  else if ('closed' in s) await page.locator(`dialog#${s.closed}:not([open])`).waitFor({ state: 'attached', timeout: WAIT });
  else if ('text' in s) seen[s.as] = await page.locator(s.text).textContent();
  else if ('gone' in s) await card(s.gone).waitFor({ state: 'detached', timeout: WAIT });
  else if ('present' in s) seen[s.as] = (await card(s.present).count()) > 0;
  else if ('status' in s) seen[s.as ?? 'status'] = await statusMatches('#status', s.status);
  else if ('latest' in s) seen[s.as ?? 'status'] = await statusMatches('#status .latest', s.latest);
  else if ('selected' in s) seen[s.selected] = (await page.$$eval('.card.selected', (els) => els.map((e) => e.dataset.id))).map(nameOf);
  else if ('sent' in s) seen[s.sent] = (await page.evaluate(() => window.__sent)).map((m) => ({ ...m, id: nameOf(m.id) }));
  else if ('notes' in s) seen[s.notes] = await page.evaluate(() => window.__notes);
  else if ('sleep' in s) await page.waitForTimeout(s.sleep);
  else if ('touch' in s) writeFileSync(s.touch, '');
  else if ('shot' in s) await page.screenshot({ path: s.shot, fullPage: true });
  else if ('history' in s) seen[s.as ?? 'history'] = await history(s.history);
  else if ('scripts' in s) seen[s.as ?? s.scripts] = await scriptsOf(s.scripts);
  else throw new Error('unknown step');
}

try {
  // Notifications allowed, as after a click on "Enable notifications".
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, permissions: ['notifications'] });
  page = await context.newPage();
  await page.addInitScript(instrument);
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(url);
  await page.fill('#token', token);
  await page.press('#token', 'Enter');
  await page.locator('#who', { hasText: 'signed in as' }).waitFor({ timeout: WAIT });
  seen.signed_in_as = await page.locator('#who').textContent();
  seen.groups = await page.locator('#groups').textContent();
  seen.token_in_url = page.url().includes(token);
  seen.token_in_storage = await page.evaluate(() => sessionStorage.getItem('airlock-reviewer-token') !== null);
  for (const [i, s] of steps.entries()) {
    try {
      await run(s);
    } catch (e) {
      const what = JSON.stringify(s);
      throw new Error(`step ${i} ${what.length > 200 ? `${what.slice(0, 200)}…` : what}: ${e && e.message}`);
    }
  }
} catch (e) {
  errors.push(String(e && e.stack || e));
  if (page) {
    seen.status_at_failure = await optionalText(page.locator('#status')).catch(() => null);
    if (failShot) await page.screenshot({ path: failShot, fullPage: true }).catch(() => {});
  }
} finally {
  await browser.close();
}
seen.errors = errors;
console.log(JSON.stringify(seen));
process.exit(errors.length ? 1 : 0);
