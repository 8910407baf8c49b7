// Loads the reviewer page over https in Debian's Chromium for tests/tls.rs. The browser
// trusts the gateway's self-signed certificate only through its public key's SHA-256
// (--ignore-certificate-errors-spki-list, AIRLOCK_SPKI); no ignoreHTTPSErrors. Prints one JSON
// object: what the page and the TLS connection looked like, and whether a browser without
// the pin refused the page.
import { chromium } from 'playwright-core';

const { AIRLOCK_URL: url, AIRLOCK_TOKEN: token, AIRLOCK_SPKI: spki, AIRLOCK_CHROMIUM: exe,
  AIRLOCK_SHOT: shot } = process.env;
const WAIT = 20000;
const base = ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-component-update', '--disable-sync'];
const seen = {};

async function withBrowser(args, fn) {
  const browser = await chromium.launch({ executablePath: exe || '/usr/bin/chromium', headless: true, args });
  try { return await fn(await browser.newPage()); } finally { await browser.close(); }
}

try {
  // Without the pin, Chromium must refuse the certificate.
  seen.unpinned_error = await withBrowser(base, async (page) => {
    try { await page.goto(url, { timeout: WAIT }); return null; } catch (e) { return String(e.message).split('\n')[0]; }
  });
  await withBrowser([...base, `--ignore-certificate-errors-spki-list=${spki}`], async (page) => {
    const res = await page.goto(url, { timeout: WAIT });
    seen.status = res.status();
    seen.hsts = res.headers()['strict-transport-security'] ?? null;
    const sec = await res.securityDetails();
    seen.tls = sec ? { protocol: sec.protocol, subject: sec.subjectName } : null;
    await page.fill('#token', token);
    await page.press('#token', 'Enter');
    await page.locator('#who', { hasText: 'signed in as' }).waitFor({ timeout: WAIT });
    seen.signed_in_as = await page.locator('#who').textContent();
    seen.protocol = await page.evaluate(() => location.protocol);
    seen.secure_context = await page.evaluate(() => window.isSecureContext);
    if (shot) await page.screenshot({ path: shot, fullPage: true });
  });
  console.log(JSON.stringify(seen));
} catch (e) {
  seen.error = String(e.stack || e);
  console.log(JSON.stringify(seen));
  process.exit(1);
}
