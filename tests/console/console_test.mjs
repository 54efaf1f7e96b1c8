// The operator's console (/ui) in a real browser: Debian's chromium driven by playwright-core
// (installed by this test from tests/console's lock file into a cache; it downloads no browser),
// against a real 3-node cluster with a keys file, on free loopback ports.
//
// Checks: the console loads and lists the models; the cluster page shows the three members; a
// rollback and then a promote from the console move the label on every node (read back through
// the CLI of each node); a tenant key sees only its tenant (the page and the API); a wrong key is refused; the
// pages fit 1366x768 and a phone-sized viewport (no page-wide horizontal scrolling); a killed
// node shows as an alert; the page loads nothing from any other origin and throws no errors.
// Screenshots of the main pages go to $SHOAL_BUILD_DIR/console-screenshots/ for review.
//
//   SHOAL_BIN=build/shoal FASTTEXT_BIN=$(which fasttext) node tests/console/console_test.mjs
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const source = process.env.SHOAL_SOURCE_DIR || path.resolve(here, '../..');
const shoal = process.env.SHOAL_BIN || path.join(source, 'build/shoal');
const fasttext = process.env.FASTTEXT_BIN || 'fasttext';
const chromium = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const shots = path.join(process.env.SHOAL_BUILD_DIR || path.join(source, 'build'), 'console-screenshots');
const PLAYWRIGHT_VERSION = JSON.parse(fs.readFileSync(path.join(here, 'package.json'))).dependencies['playwright-core'];

const ADMIN = 'console-test-admin-key-0001';
const ACME = 'console-test-acme-key-00001';
const GLOBEX = 'console-test-globex-key-001';

function log(...args) { console.log('[console_test]', ...args); }
const sleep = ms => new Promise(r => setTimeout(r, ms));

// playwright-core from the cache, installed there once (npm ci from the lock file, no scripts).
function playwright() {
  const cache = process.env.XDG_CACHE_HOME || path.join(process.env.HOME || '/tmp', '.cache');
  const dir = path.join(cache, 'shoal-test', 'playwright-core-' + PLAYWRIGHT_VERSION);
  const marker = path.join(dir, 'node_modules', 'playwright-core', 'package.json');
  if (!fs.existsSync(marker)) {
    log(`installing playwright-core ${PLAYWRIGHT_VERSION} into ${dir}`);
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.mkdirSync(tmp, { recursive: true });
    for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(here, f), path.join(tmp, f));
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'],
                        { cwd: tmp, encoding: 'utf8', timeout: 600e3 });
    if (r.status !== 0) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw new Error(`npm ci of playwright-core failed (${r.error ? r.error.message : 'exit ' + r.status}): ${r.stderr}`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);  // never a half-installed package under its name
  }
  return createRequire(path.join(dir, 'package.json'))('playwright-core');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

// ---- the cluster ------------------------------------------------------------------------------

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-console-'));
const nodes = [];

function cleanup() {
  for (const n of nodes) if (n.proc && n.proc.exitCode === null) { try { n.proc.kill('SIGKILL'); } catch (e) { /* gone */ } }
  fs.rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(1));

function cli(i, ...args) {
  return execFileSync(shoal, ['--node', `127.0.0.1:${nodes[i].zmq}`, '--key', ADMIN, '--timeout', '30', ...args],
                      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

async function http(i, method, p, key, body) {
  const headers = key ? { Authorization: 'Bearer ' + key } : {};
  const res = await fetch(`http://127.0.0.1:${nodes[i].http}${p}`, { method, headers, body });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
  return { status: res.status, json, text };
}

async function waitFor(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}

async function startCluster() {
  fs.writeFileSync(path.join(work, 'keys'), `${ADMIN} admin ops\n${ACME} acme\n${GLOBEX} globex\n`);
  fs.writeFileSync(path.join(work, 'secret'), 'console-test-cluster-secret-0123456789abcdef\n');
  for (let i = 0; i < 3; ++i) {
    nodes.push({ name: `n${i + 1}`, cluster: await freePort(), zmq: await freePort(), http: await freePort() });
  }
  const seeds = nodes.slice(0, 2).map(n => `127.0.0.1:${n.cluster}`).join(',');
  for (const n of nodes) {
    const out = fs.openSync(path.join(work, n.name + '.log'), 'a');
    n.proc = spawn(shoal, ['node', '--name', n.name, '--data-dir', path.join(work, n.name),
                           '--cluster-port', n.cluster, '--zmq-port', n.zmq, '--http-port', n.http,
                           '--grpc-port', '0', '--http-threads', '2', '--seeds', seeds,
                           '--cluster-secret-file', path.join(work, 'secret'),
                           '--keys-file', path.join(work, 'keys'), '--replication-factor', '2'].map(String),
                   { stdio: ['ignore', out, out] });
  }
  for (let i = 0; i < 3; ++i) {
    await waitFor(`${nodes[i].name} ready`, async () => (await http(i, 'GET', '/v2/health/ready')).status === 200);
  }
  await waitFor('3 alive members', () =>
    JSON.parse(cli(0, 'cluster', 'status', '--json')).members.filter(m => m.status === 'alive').length === 3);
}

function trainModels() {
  for (const v of [1, 2]) {
    execFileSync(fasttext, ['supervised', '-input', path.join(source, `examples/intents-v${v}.txt`),
                            '-output', path.join(work, `m${v}`), '-epoch', '5', '-dim', '10', '-minCount', '1',
                            '-verbose', '0']);
  }
}

async function infer(i, model, key, text) {
  const body = JSON.stringify({ inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', data: [text] }] });
  return http(i, 'POST', `/v2/models/${model}/infer`, key, body);
}

// ---- the browser ------------------------------------------------------------------------------

async function checkFits(page, label) {
  const { scroll, inner } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(scroll <= inner + 1, `${label}: the page is ${scroll}px wide in a ${inner}px viewport`);
}

async function signIn(page, base, key) {
  await page.goto(base + '/ui/');
  await page.locator('#key').waitFor();
  await page.fill('#key', key);
  await page.click('form.login button[type=submit]');
}

async function main() {
  log('cluster of 3 in', work);
  const { chromium: browserType } = playwright();
  trainModels();
  await startCluster();
  const m1 = path.join(work, 'm1.bin'), m2 = path.join(work, 'm2.bin');
  cli(0, 'snapshot', 'push', 'acme/bot', m1, '--label', 'production', '--note', 'first');
  cli(0, 'snapshot', 'push', 'acme/bot', m2, '--label', 'production', '--note', 'retrained');
  cli(1, 'snapshot', 'push', 'acme/faq', m1, '--label', 'production');
  cli(2, 'snapshot', 'push', 'globex/faq', m1, '--label', 'production');
  for (let k = 0; k < 20; ++k) assert.equal((await infer(0, 'acme/bot', ACME, 'where is my order')).status, 200);
  log('pushed 4 versions, answered 20 requests');

  const browser = await browserType.launch({
    executablePath: chromium,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  fs.mkdirSync(shots, { recursive: true });
  const base = `http://127.0.0.1:${nodes[0].http}`;
  const problems = [];
  const watch = page => {
    page.on('pageerror', e => problems.push('page error: ' + e.message));
    page.on('request', r => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) problems.push('request elsewhere: ' + r.url()); });
  };
  try {
    // ---- admin at 1366x768 ----
    const admin = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    const page = await admin.newPage();
    watch(page);
    await page.goto(base + '/ui/');
    await page.locator('form.login').waitFor();  // the node has a keys file: a key first
    await signIn(page, base, 'not-a-key-of-this-node-000');
    await page.locator('form.login .error').waitFor();
    assert.match(await page.locator('form.login .error').innerText(), /key/i);
    log('a wrong key is refused');

    await signIn(page, base, ADMIN);
    await page.locator('tr[data-model="acme/bot"]').waitFor();
    for (const m of ['acme/bot', 'acme/faq', 'globex/faq']) {
      assert.equal(await page.locator(`tr[data-model="${m}"]`).count(), 1, `${m} listed`);
    }
    assert.match(await page.locator('#who').innerText(), /admin/);
    // The rates need two polls.
    await page.waitForFunction(() => [...document.querySelectorAll('tr[data-model="acme/bot"] td.num')].some(td => td.textContent !== '–' && td.textContent.includes('%')));
    await page.fill('#search', 'globex');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr[data-model]').length === 1);
    assert.equal(await page.locator('tr[data-model="globex/faq"]').count(), 1);
    await page.fill('#search', '');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr[data-model]').length === 3);
    await checkFits(page, 'models at 1366x768');
    await page.screenshot({ path: path.join(shots, 'models-1366x768.png'), fullPage: true });
    log('models listed, search works');

    await page.click('a[data-nav="cluster"]');
    await page.waitForFunction(() => document.querySelectorAll('tr[data-node] .badge.alive').length === 3);
    await checkFits(page, 'cluster at 1366x768');
    await page.screenshot({ path: path.join(shots, 'cluster-1366x768.png'), fullPage: true });
    log('cluster page: 3 alive');

    await page.goto(base + '/ui/#/models/acme/bot');
    await page.locator('.card[data-label="production"] button[data-action="rollback"]').waitFor();
    for (let k = 0; k < 20; ++k) await infer(0, 'acme/bot', ACME, 'cancel my subscription');
    await page.waitForFunction(() => document.querySelectorAll('svg.chart path').length >= 3, null, { timeout: 15000 });
    assert.equal(await page.locator('tr[data-version]').count(), 2);
    assert.match(await page.locator('.timeline[data-label="production"]').innerText(), /promote/);
    await checkFits(page, 'model at 1366x768');
    await page.screenshot({ path: path.join(shots, 'model-1366x768.png'), fullPage: true });

    // ---- the rollback, from the console ----
    const button = page.locator('.card[data-label="production"] button[data-action="rollback"]');
    assert.match(await button.innerText(), /Roll back to 1/);
    await button.click();
    await page.locator('#confirm[open]').waitFor();
    assert.match(await page.locator('#confirm-body').innerText(), /production: 2 → 1/);
    await page.screenshot({ path: path.join(shots, 'rollback-confirm-1366x768.png') });
    await page.fill('#confirm-user', 'console test');
    await page.click('#confirm-ok');
    await page.locator('[data-flash]').filter({ hasText: 'production: 2 → 1' }).waitFor();
    for (let i = 0; i < 3; ++i) {
      await waitFor(`production 1 on ${nodes[i].name}`, () =>
        JSON.parse(cli(i, 'snapshot', 'list', 'acme/bot', '--json')).labels.production.version === 1, 5000);
    }
    const moved = JSON.parse(cli(2, 'snapshot', 'list', 'acme/bot', '--json')).labels.production.history.at(-1);
    assert.equal(moved.action, 'rollback');
    assert.match(moved.by, /console test/);  // who, as typed in the confirmation
    assert.match(moved.by, /ops/);           // and the key's name, as the node knows it
    log('rollback from the console: production 2 -> 1 on all 3 nodes (CLI), by', JSON.stringify(moved.by));
    await page.locator('.timeline[data-label="production"] li').first().filter({ hasText: 'rollback 2 → 1' }).waitFor();
    await page.screenshot({ path: path.join(shots, 'model-after-rollback-1366x768.png'), fullPage: true });

    // ---- and a promote back to 2 ----
    await page.locator('tr[data-version="2"] button[data-action="promote"]').click();
    await page.locator('#confirm[open]').waitFor();
    assert.match(await page.locator('#confirm-body').innerText(), /production: 1 → 2/);
    await page.click('#confirm-ok');
    await page.locator('[data-flash]').filter({ hasText: 'production: 1 → 2' }).waitFor();
    for (let i = 0; i < 3; ++i) {
      await waitFor(`production 2 on ${nodes[i].name}`, () =>
        JSON.parse(cli(i, 'snapshot', 'list', 'acme/bot', '--json')).labels.production.version === 2, 5000);
    }
    log('promote from the console: production 1 -> 2 on all 3 nodes (CLI)');

    // ---- a tenant key sees only its tenant ----
    const tenant = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    const tpage = await tenant.newPage();
    watch(tpage);
    await signIn(tpage, base, GLOBEX);
    await tpage.locator('tr[data-model="globex/faq"]').waitFor();
    await sleep(2500);  // a poll later, still only its own
    assert.equal(await tpage.locator('tbody tr[data-model]').count(), 1, 'globex sees one model');
    assert.match(await tpage.locator('#who').innerText(), /tenant globex/);
    await tpage.goto(base + '/ui/#/models/acme/bot');
    await tpage.locator('main .error').filter({ hasText: 'no model acme/bot' }).waitFor();
    const peek = await http(0, 'GET', '/ui/api/models/acme/bot', GLOBEX);
    assert.equal(peek.status, 404);
    const grab = await http(0, 'POST', '/ui/api/models/acme/bot/rollback', GLOBEX, '{}');
    assert.equal(grab.status, 404);
    assert.equal(JSON.parse(cli(0, 'snapshot', 'list', 'acme/bot', '--json')).labels.production.version, 2);
    const list = await http(1, 'GET', '/ui/api/models', GLOBEX);
    assert.deepEqual(list.json.models.map(m => m.model), ['globex/faq']);
    await tpage.screenshot({ path: path.join(shots, 'tenant-globex-1366x768.png'), fullPage: true });
    log('globex sees only globex/faq; acme/bot is "no model" to it, in the page and the API');

    // ---- a phone ----
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
                                             deviceScaleFactor: 2 });
    const ppage = await phone.newPage();
    watch(ppage);
    await signIn(ppage, base, ACME);
    await ppage.locator('tr[data-model="acme/bot"]').waitFor();
    await checkFits(ppage, 'models on a phone');
    await ppage.screenshot({ path: path.join(shots, 'models-phone.png'), fullPage: true });
    await ppage.goto(base + '/ui/#/models/acme/bot');
    await ppage.locator('.card[data-label="production"]').waitFor();
    await checkFits(ppage, 'model on a phone');
    assert.ok(await ppage.locator('.card[data-label="production"] button').isVisible());
    await ppage.screenshot({ path: path.join(shots, 'model-phone.png'), fullPage: true });
    log('fits 390x844');

    // ---- a dead node is an alert ----
    nodes[2].proc.kill('SIGKILL');
    await page.goto(base + '/ui/#/cluster');
    await page.locator('.alert').filter({ hasText: /Node n3 is (suspect|dead)/ }).waitFor({ timeout: 20000 });
    await page.screenshot({ path: path.join(shots, 'cluster-node-down-1366x768.png'), fullPage: true });
    log('n3 killed: the console says so');

    assert.deepEqual(problems, [], 'no page errors, nothing from another origin');
    log('screenshots in', shots);
  } finally {
    await browser.close();
  }
}

main().then(() => { log('passed'); process.exit(0); }, e => {
  console.error('[console_test] FAILED:', e.stack || e.message);
  for (const n of nodes) {
    try { console.error(`--- ${n.name}.log (tail)\n` + fs.readFileSync(path.join(work, n.name + '.log'), 'utf8').split('\n').slice(-15).join('\n')); } catch (err) { /* none */ }
  }
  process.exit(1);
});
