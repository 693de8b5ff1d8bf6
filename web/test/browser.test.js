// The demo page in headless Debian chromium (puppeteer-core, no browser download): loads, classifies a typed
// review like Python, fetches nothing from another origin, works offline, and leaves a screenshot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDemo } from '../scripts/build-demo.js';
import { serve } from './server.js';
import { vectors, scoredTexts } from './vectors.js';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOT = path.join(WEB, 'test', 'output', 'web-demo.png');
const ATOL = 1e-5;
const skip = !existsSync(CHROMIUM)
  && `no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH): browser test not run`;
if (skip) console.log(`# SKIP ${skip}`);

// The shortest review among Python's single-text int8 predictions of the main model.
const singles = vectors.singles[vectors.main_model].int8;
const nCases = vectors.cases.filter((c) => !c.refused).length;
const pick = singles.filter((s) => s.index >= nCases)
  .sort((a, b) => scoredTexts[a.index].length - scoredTexts[b.index].length)[0];

test('demo page: a typed review gets Python\'s label and score (int8, wasm), offline too', { skip, timeout: 90000 },
  async (t) => {
    const { bytes } = buildDemo();
    console.log(`# demo page weight: ${(bytes / 1e6).toFixed(2)} MB`);
    const server = await serve(path.join(WEB, 'demo'));
    t.after(() => server.close());
    const { default: puppeteer } = await import('puppeteer-core');
    const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'] });
    t.after(() => browser.close());
    const page = await browser.newPage();
    await page.setViewport({ width: 900, height: 640 });
    const foreign = [];
    const errors = [];
    page.on('request', (r) => { if (!r.url().startsWith(server.url) && !r.url().startsWith('data:')) foreign.push(r.url()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

    await page.goto(server.url, { waitUntil: 'load' });
    await page.waitForSelector('#status[data-state="ready"], #status[data-state="error"]', { timeout: 60000 });
    const status = await page.$eval('#status', (e) => e.textContent);
    assert.match(status, /ready/, status);

    const text = scoredTexts[pick.index];
    await page.click('#review');
    await page.type('#review', text.slice(0, 60));
    await page.$eval('#review', (el, rest) => { el.value += rest; }, text.slice(60, -1));
    await page.type('#review', text.slice(-1)); // the last keystroke fires input with the whole review
    await page.waitForFunction((want) => document.querySelector('#result').dataset.text === want, { timeout: 20000 }, text);
    const shown = await page.$eval('#result', (e) => ({ label: e.dataset.label, score: Number(e.dataset.score) }));
    assert.equal(shown.label, pick.label);
    assert.ok(Math.abs(shown.score - pick.score) <= ATOL, `browser ${shown.score} vs Python ${pick.score}`);

    mkdirSync(path.dirname(SHOT), { recursive: true });
    await page.$eval('#review', (el) => { el.scrollTop = 0; el.setSelectionRange(0, 0); });
    await page.screenshot({ path: SHOT, fullPage: true });
    console.log(`# screenshot: ${SHOT}`);

    // Offline: the service worker answers a reload with the server gone.
    await page.waitForFunction(async () => (await navigator.serviceWorker.ready) && !!navigator.serviceWorker.controller,
      { timeout: 20000 }).catch(() => page.reload({ waitUntil: 'load' }));
    await page.setOfflineMode(true);
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector('#status[data-state="ready"], #status[data-state="error"]', { timeout: 60000 });
    assert.match(await page.$eval('#status', (e) => e.textContent), /ready/);
    await page.type('#review', 'A wonderful, moving film.');
    await page.waitForFunction(() => document.querySelector('#result').dataset.state === 'done', { timeout: 20000 });

    assert.deepEqual(foreign, [], 'requests to another origin');
    assert.deepEqual(errors.filter((e) => !/favicon/.test(e)), [], 'page errors');
  });
