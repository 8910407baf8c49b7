// Drives the reviewer page's Insights tab in a real Chromium for tests/insights.rs: signs in
// with AIRLOCK_TOKEN, opens the tab, picks AIRLOCK_DAYS, and prints one JSON object with what
// the charts drew (every bar and dot with its data attributes, the headline tiles), the bars
// again with the "high" tier chip on, and every request the page made to another origin.
// A full-page screenshot goes to AIRLOCK_SHOT. Every wait is bounded; any page error exits
// non-zero.
import { chromium } from 'playwright-core';

const { AIRLOCK_URL: url, AIRLOCK_TOKEN: token, AIRLOCK_CHROMIUM: exe, AIRLOCK_SHOT: shot,
  AIRLOCK_DAYS: days } = process.env;
const WAIT = 20000;
const origin = new URL(url).origin;

const browser = await chromium.launch({
  executablePath: exe || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync'],
});
const errors = [];
const seen = { elsewhere: [] };

const bars = (page) => page.$$eval('#chart-requests rect.bar', (els) => els.map((e) => ({
  day: e.dataset.day, outcome: e.dataset.outcome, count: Number(e.dataset.count),
  height: e.getBoundingClientRect().height, fill: e.getAttribute('fill'),
})));

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('request', (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) seen.elsewhere.push(r.url()); });
  await page.goto(url);
  await page.fill('#token', token);
  await page.press('#token', 'Enter');
  await page.locator('#who', { hasText: 'signed in as' }).waitFor({ timeout: WAIT });
  await page.click('#tab-insights');
  await page.click(`#insights-period button[data-days="${days}"]`);
  await page.locator('#kpi-commands .kpi-label', { hasText: `in ${days} days` }).waitFor({ timeout: WAIT });
  seen.kpis = await page.$$eval('.kpi', (els) => Object.fromEntries(els.map((e) => [e.id, {
    value: e.dataset.value, text: e.querySelector('.kpi-value').textContent,
    sub: e.querySelector('.kpi-sub')?.textContent ?? null,
  }])));
  seen.bars = await bars(page);
  seen.totals = await page.$$eval('#chart-requests text.value', (els) => els.map((e) => ({ day: e.dataset.day, total: Number(e.dataset.total) })));
  seen.dots = await page.$$eval('circle.dot', (els) => els.map((e) => ({ series: e.dataset.series, day: e.dataset.day, value: e.dataset.value })));
  seen.legend = await page.$$eval('#chart-requests .legend-item', (els) => els.map((e) => e.dataset.key));
  seen.charts = await page.$$eval('#insights svg.chart', (els) => els.map((e) => e.closest('.panel').id));
  seen.note = await page.locator('#insights-note').textContent();
  seen.width = await page.evaluate(() => document.documentElement.scrollWidth);
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  await page.click('#chart-requests button[data-tier="high"]');
  seen.high_bars = await bars(page);
  await page.click('#tab-queue');
  seen.hidden_after_leaving = await page.locator('#insights-view').isHidden();
} catch (e) {
  errors.push(String(e && e.stack || e));
} finally {
  await browser.close();
}
seen.errors = errors;
console.log(JSON.stringify(seen));
process.exit(errors.length ? 1 : 0);
