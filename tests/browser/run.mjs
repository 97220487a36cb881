// Browser tests of the ID 77 web portal.
//
// Starts the platform as `make run` does (deploy/local/run.sh) on ports and databases of its own, then drives
// Debian's headless Chromium with playwright-core through the main journeys of each role, then the journeys of
// tests/browser/journeys/*.mjs (each exports `run(t)`), then a tour of each role's main pages. Every checked page
// state is checked at 1280, 390 and 320 px (check()): a screenshot of each width into .run/screenshots/
// (NN-name-<width>.png), axe-core (WCAG 2.0/2.1 A and AA), no horizontal scroll, and the visible-text bar of
// bar.mjs (no UUID or id prefix, raw provider code, EPCI SIREN, lone arrondissement code, English word, UTC time
// or ISO date); a problem fails the step that checked the page, and the end lists every page's problems. It also
// checks that the login form works with the keyboard alone. Every process it started is stopped at the end, also
// on failure or Ctrl-C.
//
// Environment: CHROMIUM (default /usr/bin/chromium), ID77_BROWSER_KEEP=1 (leave the databases), plus whatever
// run.sh reads (ID77_PG_URL...). Prints the bar per page, "N passed, N failed" and the screenshots' folder.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, openSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { findings, providerCodesToCheck } from './bar.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const RUN_ID = randomBytes(4).toString('hex');
const RUN_DIR = join(ROOT, '.run', `browser-${RUN_ID}`);
const SHOTS = join(ROOT, '.run', 'screenshots');
const DB_PREFIX = `id77t_browser_${RUN_ID}`;
const AXE = readFileSync(join(HERE, 'node_modules/axe-core/axe.min.js'), 'utf8');
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const READY_TIMEOUT_MS = 15 * 60 * 1000; // includes the cargo build on a fresh clone
const MEMBER_PASSWORD = 'Mot2passe-Solide!77';

let platform = null; // the run.sh child
const results = []; // {name, ok, error}
const axeReport = []; // {page, violations (at the three widths)}

function log(message) {
  process.stderr.write(`[browser] ${message}\n`);
}

function freePort() {
  return new Promise((res, rej) => {
    const server = createServer();
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => res(port));
    });
  });
}

async function portFree(port) {
  return new Promise((res) => {
    const server = createServer();
    server.once('error', () => res(false));
    server.listen(port, '127.0.0.1', () => server.close(() => res(true)));
  });
}

// Five consecutive free ports for the gRPC services.
async function freeGrpcBase() {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 20000);
    let ok = true;
    for (let i = 0; i < 5 && ok; i++) ok = await portFree(base + i);
    if (ok) return base;
  }
  throw new Error('no five consecutive free ports');
}

async function startPlatform() {
  const grpcBase = await freeGrpcBase();
  const [http, portal, nats] = [await freePort(), await freePort(), await freePort()];
  mkdirSync(RUN_DIR, { recursive: true });
  const readyFile = join(RUN_DIR, 'ready');
  const out = openSync(join(RUN_DIR, 'run.log'), 'a');
  log(`starting the platform (deploy/local/run.sh): gRPC ${grpcBase}-${grpcBase + 4}, gateway ${http}, portal ${portal}, NATS ${nats}; log ${join(RUN_DIR, 'run.log')}`);
  platform = spawn('bash', ['deploy/local/run.sh'], {
    cwd: ROOT,
    stdio: ['ignore', out, out],
    env: {
      ...process.env,
      ID77_RUN_GRPC_BASE: String(grpcBase),
      ID77_RUN_HTTP_PORT: String(http),
      ID77_RUN_PORTAL_PORT: String(portal),
      ID77_RUN_NATS_PORT: String(nats),
      ID77_RUN_DIR: RUN_DIR,
      ID77_RUN_DB_PREFIX: DB_PREFIX,
      ID77_RUN_READY_FILE: readyFile,
      // Every journey logs in from this one address: keep the gateway's login limit out of the way.
      ID77_AUTH_RATE_LIMIT_PER_MINUTE: '1000',
      // No demo referral consumers: the provider's agent answers in the portal.
      ID77_RUN_NO_CONSUMERS: '1',
    },
  });
  const exited = new Promise((res) => platform.once('exit', (code, signal) => res({ code, signal })));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!existsSync(readyFile)) {
    const done = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), 500))]);
    if (done) {
      platform = null;
      throw new Error(`run.sh exited (${JSON.stringify(done)}) before the platform was ready; see ${join(RUN_DIR, 'run.log')}`);
    }
    if (Date.now() > deadline) throw new Error('the platform was not ready in time');
  }
  await new Promise((r) => setTimeout(r, 200));
  const ready = Object.fromEntries(
    readFileSync(readyFile, 'utf8').trim().split('\n').map((line) => line.split(/=(.*)/s).slice(0, 2)),
  );
  log(`platform ready: portal ${ready.portal}, gateway ${ready.gateway}`);
  return ready;
}

// SIGTERM to run.sh (it stops every child it started, NATS last), SIGKILL to its group if it lingers.
async function stopPlatform() {
  if (!platform) return;
  const child = platform;
  platform = null;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((res) => child.once('exit', res));
  child.kill('SIGTERM');
  const done = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 40000))]);
  if (!done) {
    log('run.sh did not stop within 40 s: SIGKILL');
    child.kill('SIGKILL');
  }
  log('platform stopped');
}

function dropDatabases() {
  if (process.env.ID77_BROWSER_KEEP === '1') return;
  const pg = (process.env.ID77_PG_URL || 'postgres://postgres@127.0.0.1:5432').replace(/\/$/, '');
  try {
    const sql = `SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', datname) FROM pg_database WHERE datname LIKE '${DB_PREFIX}\\_%' \\gexec`;
    execFileSync('psql', [`${pg}/postgres`, '-X', '-q', '-At'], { input: sql, stdio: ['pipe', 'ignore', 'inherit'] });
    log(`dropped the databases ${DB_PREFIX}_*`);
  } catch (error) {
    log(`could not drop the databases ${DB_PREFIX}_* (make clean-test-dbs will): ${error.message}`);
  }
  rmSync(join(RUN_DIR, 'nats', 'js'), { recursive: true, force: true });
}

let cleaning = null;
function cleanup() {
  if (!cleaning) cleaning = stopPlatform().then(dropDatabases);
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    log(`received ${signal}`);
    cleanup().finally(() => process.exit(130));
  });
}

// ---- page helpers -------------------------------------------------------------------------------------------

let shotCount = 0;
let checkMs = 0; // time spent in check(), reported at the end
// Every checked page state is checked at these widths (CSS px): desktop, a common phone, the narrowest (WCAG 1.4.10).
const WIDTHS = [1280, 390, 320];
const VIEWPORT = { width: 1280, height: 720 }; // playwright's default, restored after each check
// What the visible-text checks know (filled at start from the gateway: see loadBarContext).
const barContext = { providers: [], epciSirens: new Set(), ignore: [RUN_ID] };
const barReport = []; // {page, findings: [sentence]} for every checked page state
const stepStack = []; // the findings of the step(s) running, innermost last

async function screenshot(page, file, name) {
  // A loaded machine sometimes makes headless Chromium answer « Unable to capture screenshot » (seen once in
  // three runs beside compilers): the screenshot is evidence, not the check, so it is tried three times.
  for (let attempt = 1; ; attempt += 1) {
    try {
      await page.screenshot({ path: file, fullPage: true });
      return;
    } catch (error) {
      if (attempt === 3) throw error;
      log(`screenshot of ${name} failed (${error.message.split('\n')[0]}); trying again`);
      await page.waitForTimeout(500 * attempt);
    }
  }
}

// At one width: axe's violations, the horizontal overflow with its widest culprits, the visible text.
async function inspect(page) {
  return page.evaluate(async (tags) => {
    /* eslint-disable no-undef */
    const r = await axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    const violations = r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
    const viewport = window.innerWidth;
    const scrollWidth = document.documentElement.scrollWidth;
    const describe = (el) => {
      let d = el.tagName.toLowerCase();
      if (el.id) d += `#${el.id}`;
      if (typeof el.className === 'string' && el.className.trim()) d += `.${el.className.trim().split(/\s+/).join('.')}`;
      const parent = el.parentElement && el.parentElement !== document.body ? `${describe.short(el.parentElement)} > ` : '';
      return `${parent}${d}`;
    };
    describe.short = (el) => el.tagName.toLowerCase() + (el.id ? `#${el.id}` : '') + (typeof el.className === 'string' && el.className.trim() ? `.${el.className.trim().split(/\s+/)[0]}` : '');
    let culprits = [];
    if (scrollWidth > viewport) {
      const clipped = (el) => {
        for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
          if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(p).overflowX)) return true;
        }
        return false;
      };
      const over = [...document.body.querySelectorAll('*')].filter((el) => {
        const box = el.getBoundingClientRect();
        return box.right > viewport + 0.5 && box.width > 1 && !clipped(el);
      });
      const leaves = over.filter((el) => !over.some((other) => other !== el && el.contains(other)));
      culprits = leaves
        .map((el) => ({ el, right: el.getBoundingClientRect().right, width: el.getBoundingClientRect().width }))
        .sort((a, b) => b.right - a.right)
        .slice(0, 5)
        .map(({ el, right, width }) => `${describe(el)} (${Math.round(width)} px de large, bord droit à ${Math.round(right)} px)`);
    }
    return { violations, viewport, scrollWidth, culprits, text: document.body.innerText };
    /* eslint-enable no-undef */
  }, AXE_TAGS);
}

// Checks a page state at 1280, 390 and 320 px (the page is re-laid out, never reloaded: a page shown after a POST
// stays the same): a screenshot NN-name-<width>.png at each, axe (WCAG 2.0/2.1 A and AA), no horizontal scroll, and
// the visible-text bar (bar.mjs); then lang="fr" and one h1. A problem does not stop the journey: it is recorded
// for the page and fails the step that checked it once the step is over (so every page of a run is reported).
async function check(page, name) {
  const started = Date.now();
  try {
    await checkWidths(page, name);
  } finally {
    checkMs += Date.now() - started;
  }
}

async function checkWidths(page, name) {
  await page.waitForLoadState('load');
  shotCount += 1;
  const prefix = `${String(shotCount).padStart(2, '0')}-${name}`;
  const path = new URL(page.url()).pathname;
  const label = `${name} (${path})`;
  const found = new Map(); // sentence -> widths
  const note = (sentence, width) => {
    if (!found.has(sentence)) found.set(sentence, []);
    found.get(sentence).push(width);
  };
  // Evaluated through the DevTools protocol, not a <script> tag: works under the portal's CSP also in a context
  // opened without bypassCSP (the journey modules' own contexts).
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE);
  const axeByWidth = [];
  try {
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: VIEWPORT.height });
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      await screenshot(page, join(SHOTS, `${prefix}-${width}.png`), `${name} at ${width} px`);
      const seen = await inspect(page);
      axeByWidth.push(seen.violations.length);
      for (const v of seen.violations) note(`axe ${v.id} (${v.impact}) : ${v.help} — ${v.nodes.join(' ; ')}`, width);
      if (seen.scrollWidth > seen.viewport) {
        note(`défilement horizontal (${seen.scrollWidth} px de contenu pour ${seen.viewport} px) : ${seen.culprits.join(' ; ')}`, width);
      }
      const statistics = path.includes('statistiques') || /arrondissement/i.test(seen.text);
      for (const sentence of findings(seen.text, { ...barContext, statistics })) note(sentence, width);
    }
  } finally {
    await page.setViewportSize(VIEWPORT);
  }
  axeReport.push({ page: label, violations: axeByWidth.reduce((a, b) => a + b, 0) });
  const lang = await page.getAttribute('html', 'lang');
  if (lang !== 'fr') note(`<html lang="${lang}">`, 'toutes');
  const h1 = await page.locator('h1').count();
  if (h1 !== 1) note(`${h1} titres h1 au lieu d'un`, 'toutes');
  const sentences = [...found].map(([sentence, widths]) =>
    widths.length === WIDTHS.length || widths[0] === 'toutes' ? sentence : `${sentence} [à ${widths.join(', ')} px]`,
  );
  barReport.push({ page: label, findings: sentences });
  if (sentences.length) {
    log(`BAR ${label}: ${sentences.length} problem(s)\n    - ${sentences.join('\n    - ')}`);
    if (stepStack.length) stepStack[stepStack.length - 1].push(...sentences.map((s) => `${label} : ${s}`));
    else throw new Error(`${label} : ${sentences.join(' | ')}`);
  }
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function text(page, selector) {
  return (await page.locator(selector).first().innerText()).trim();
}

async function step(name, fn) {
  const started = Date.now();
  const bar = [];
  stepStack.push(bar);
  let error = null;
  try {
    await fn();
  } catch (thrown) {
    error = thrown;
  } finally {
    stepStack.pop();
  }
  if (bar.length) {
    const summary = `${bar.length} problème(s) de la barre : ${bar.join(' | ')}`;
    error = error ? new Error(`${error.message}\n${summary}`, { cause: error }) : new Error(summary);
  }
  if (error) {
    results.push({ name, ok: false, error });
    log(`FAIL ${name}: ${error.stack || error}`);
  } else {
    results.push({ name, ok: true });
    log(`PASS ${name} (${Date.now() - started} ms)`);
  }
}

async function login(page, base, email, password) {
  await page.goto(`${base}/connexion`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/connexion')), page.click('form[action="/connexion"] button[type="submit"]')]);
}

// Clicks a form's button (a selector or a locator) and waits for the page the POST leads to, also when that page
// has the URL of the current one.
async function submit(page, target) {
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    typeof target === 'string' ? page.click(target) : target.click(),
  ]);
}

async function logout(page) {
  await Promise.all([page.waitForURL(/\/connexion/), page.click('form[action="/deconnexion"] button')]);
}

async function eventually(what, timeoutMs, fn) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// The providers (code and name) the gateway lists: the portal may show a provider's code (until it shows names
// everywhere) or its name; the journeys need its code (its agent's login is agent.<code>@id77.demo).
const providerList = [];
function providerCode(shown) {
  const value = (shown || '').trim();
  const match = providerList.find((p) => p.code === value || p.name === value)
    ?? providerList.find((p) => value.includes(p.name))
    ?? providerList.find((p) => value.split(/[\s(),]+/).includes(p.code));
  return match ? match.code : null;
}
function providerNames(code) {
  const provider = providerList.find((p) => p.code === code);
  return provider ? [provider.code, provider.name] : [code];
}

async function listAll(gateway, path) {
  const items = [];
  let cursor = '';
  for (let guard = 0; guard < 100; guard++) {
    const url = `${gateway}${path}${path.includes('?') ? '&' : '?'}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const response = await fetch(url);
    if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
    const page = await response.json();
    items.push(...page.items);
    if (!page.next_cursor) return items;
    cursor = page.next_cursor;
  }
  throw new Error(`GET ${path}: more than 100 pages`);
}

// What the visible-text checks need to know: the provider codes (GET /v1/providers) and the SIRENs of the EPCIs
// (GET /v1/collectivities?kind=epci), from the gateway of this run.
async function loadBarContext(ready) {
  const providers = await listAll(ready.gateway, '/v1/providers');
  providerList.push(...providers.map((p) => ({ code: p.code, name: p.name })));
  const { kept, skipped } = providerCodesToCheck(providers.map((p) => p.code));
  barContext.providers = kept;
  if (skipped.length) log(`provider codes not checked as raw codes (common words or too short): ${skipped.join(', ')}`);
  const epcis = await listAll(ready.gateway, '/v1/collectivities?kind=epci');
  barContext.epciSirens = new Set(epcis.map((c) => c.siren));
  log(`bar: ${kept.length} provider codes, ${barContext.epciSirens.size} EPCI SIRENs`);
}

// ---- the journeys -------------------------------------------------------------------------------------------

async function journeys(browser, ready) {
  const base = ready.portal;
  const password = ready.password;
  const state = {};
  const context = await browser.newContext({ bypassCSP: true, locale: 'fr-FR', acceptDownloads: true });
  const page = await context.newPage();

  await step('anonyme : accueil, catalogue avec recherche et facettes, fiche d\'une offre', async () => {
    await page.goto(`${base}/`);
    await check(page, 'accueil');
    expect((await text(page, 'h1')) === 'Bienvenue sur ID 77', 'home title');
    await page.goto(`${base}/catalogue`);
    await check(page, 'catalogue');
    await page.fill('#q', 'voirie');
    await Promise.all([page.waitForURL(/q=voirie/), page.click('form[role="search"] button[type="submit"]')]);
    await check(page, 'catalogue-recherche');
    const count = await page.locator('ul.offers li').count();
    expect(count > 0, 'a search for voirie finds offers');
    const categories = await page.locator('#categorie option').count();
    expect(categories > 1, 'the category facet lists values with counts');
    await page.selectOption('#categorie', { index: 1 });
    await Promise.all([page.waitForURL(/categorie=/), page.click('form[role="search"] button[type="submit"]')]);
    await check(page, 'catalogue-facette');
    await Promise.all([page.waitForURL(/\/offres\//), page.locator('ul.offers li h3 a').first().click()]);
    await check(page, 'offre');
    expect((await page.locator('h2', { hasText: 'Éligibilité' }).count()) === 1, 'offer page shows eligibility');
    expect((await page.locator('h2', { hasText: 'Tarif' }).count()) === 1, 'offer page shows the price');
  });

  await step('collectivité : adhérer (annuaire, erreurs de formulaire, demande envoyée)', async () => {
    await page.goto(`${base}/adherer`);
    await check(page, 'adherer');
    await page.fill('#q', 'Meaux');
    await page.selectOption('#type', 'commune');
    await Promise.all([page.waitForURL(/q=Meaux/), page.click('form[role="search"] button[type="submit"]')]);
    await check(page, 'adherer-resultats');
    const row = page.locator('tbody tr', { hasText: 'Meaux' }).first();
    await Promise.all([page.waitForURL(/\/adherer\/\d{9}/), row.locator('a').click()]);
    state.siren = page.url().split('/').pop();
    await check(page, 'adherer-formulaire');
    await page.fill('#courriel', 'pas-une-adresse');
    await page.click('form button[type="submit"]');
    await page.waitForSelector('.error-summary');
    await check(page, 'adherer-erreurs');
    const summary = await text(page, '.error-summary');
    expect(summary.includes('obligatoire') && summary.includes('adresse électronique valide'), `French errors: ${summary}`);
    expect((await page.getAttribute('#contact', 'aria-invalid')) === 'true', 'the wrong field is marked invalid');
    expect((await page.locator('.error-summary a[href="#contact"]').count()) === 1, 'the summary links to the field');
    state.adminEmail = `dgs-${RUN_ID}@meaux.fr`;
    await page.fill('#contact', 'Secrétariat général');
    await page.fill('#courriel', state.adminEmail);
    await page.click('form button[type="submit"]');
    await page.waitForSelector('.notice.success');
    await check(page, 'adherer-envoyee');
    expect((await text(page, 'h1')) === "Demande d'adhésion envoyée", 'application confirmed');
  });

  await step('clavier seul : le formulaire de connexion', async () => {
    await page.goto(`${base}/connexion`);
    await check(page, 'connexion');
    // The first Tab reaches the skip link, which moves the focus to the main content.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.classList.contains('skip-link')), 'first Tab: skip link');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id === 'contenu'), 'the skip link focuses the main content');
    // Then Tab order reaches the e-mail field, the password field and the button.
    let guard = 0;
    while (!(await page.evaluate(() => document.activeElement?.id === 'email')) && guard++ < 10) await page.keyboard.press('Tab');
    expect(guard < 10, 'Tab reaches the e-mail field');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    expect(outline && outline !== 'none', `focus is visible (outline ${outline})`);
    await page.keyboard.type('coordination@id77.demo');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id === 'password'), 'Tab: password field');
    await page.keyboard.type(password);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.tagName === 'BUTTON'), 'Tab: submit button');
    await Promise.all([page.waitForURL((u) => u.pathname === '/'), page.keyboard.press('Enter')]);
    expect((await text(page, '.who')).includes('Coordination'), 'signed in as the coordinator with the keyboard');
  });

  await step('coordination : valider l\'adhésion et inviter l\'administrateur', async () => {
    await page.goto(`${base}/coordination/adhesions`);
    await check(page, 'coordination-adhesions');
    const row = page.locator('tbody tr', { hasText: state.siren }).first();
    await Promise.all([page.waitForURL(/statut=active/), row.locator('button', { hasText: 'Valider' }).click()]);
    await check(page, 'coordination-adhesions-actives');
    const active = page.locator('tbody tr', { hasText: state.siren }).first();
    await active.locator('input[name="nom"]').fill('Direction générale des services');
    await active.locator('input[name="courriel"]').fill(state.adminEmail);
    await active.locator('button', { hasText: "Inviter l'administrateur" }).click();
    await page.waitForSelector('#lien-invitation');
    await check(page, 'coordination-invitation');
    state.invitation = await page.getAttribute('#lien-invitation', 'href');
  });

  await step('coordination : orientations à risque, règles d\'orientation (liste, erreurs, création, communes, suppression)', async () => {
    await page.goto(`${base}/coordination/orientations?a_risque=1`);
    await check(page, 'coordination-orientations-a-risque');
    await page.goto(`${base}/coordination/regles`);
    await check(page, 'coordination-regles');
    await page.selectOption('#condition', 'population');
    await page.click('form[action="/coordination/regles"] button[type="submit"]');
    await page.waitForSelector('.error-summary');
    await check(page, 'coordination-regles-erreurs');
    const errors = await text(page, '.error-summary');
    expect(errors.includes('Nom de la règle') && errors.includes('population'), `rule errors: ${errors}`);
    await page.fill('#nom', `Grandes collectivités ${RUN_ID}`);
    await page.selectOption('#partenaire', { index: 1 });
    await page.selectOption('#condition', 'population');
    await page.fill('#min', '900000000');
    await Promise.all([page.waitForURL(/\/coordination\/regles$/), page.click('form[action="/coordination/regles"] button[type="submit"]')]);
    await check(page, 'coordination-regles-creee');
    expect((await page.locator('tbody tr', { hasText: `Grandes collectivités ${RUN_ID}` }).count()) === 1, 'the new rule is listed');
    // Communes are ticked in the directory's list, grouped by intercommunalité, and named in the list of rules;
    // that rule is then deleted (it would route the journey's requests otherwise).
    await page.fill('#nom', `Commune ${RUN_ID}`);
    await page.selectOption('#partenaire', { index: 1 });
    await page.selectOption('#condition', 'commune');
    await page.locator('details.picker-group', { has: page.locator('#commune-77001') }).locator('summary').click();
    await page.check('#commune-77001');
    await check(page, 'coordination-regles-communes');
    await Promise.all([page.waitForURL(/\/coordination\/regles$/), page.click('form[action="/coordination/regles"] button[type="submit"]')]);
    const communeRule = page.locator('tbody tr', { hasText: `Commune ${RUN_ID}` });
    const communeText = await communeRule.innerText();
    expect(communeText.includes('Achères-la-Forêt (77001)'), `the commune is named: ${communeText}`);
    await Promise.all([page.waitForURL(/\/coordination\/regles$/), communeRule.locator('button', { hasText: 'Supprimer' }).click()]);
    expect((await page.locator('tbody tr', { hasText: `Commune ${RUN_ID}` }).count()) === 0, 'the commune rule is deleted');
    await logout(page);
    await check(page, 'deconnexion');
  });

  await step('collectivité : activer le compte, chercher une offre éligible, déposer une demande', async () => {
    expect(state.invitation, 'an invitation link');
    await page.goto(`${base}${state.invitation}`);
    await check(page, 'invitation');
    await page.fill('#password', MEMBER_PASSWORD);
    await page.fill('#confirmation', 'autre chose');
    await page.click('form[action="/invitation"] button');
    await page.waitForSelector('.error-summary');
    await check(page, 'invitation-erreurs');
    await page.fill('#password', MEMBER_PASSWORD);
    await page.fill('#confirmation', MEMBER_PASSWORD);
    await Promise.all([page.waitForURL((u) => u.pathname === '/'), page.click('form[action="/invitation"] button')]);
    await check(page, 'accueil-collectivite');
    // The approval reaches the catalogue's and requests' read models by event: retry until eligible offers show.
    await eventually('eligible flat-priced offers', 30000, async () => {
      await page.goto(`${base}/catalogue?eligibles=1&tarif=flat`);
      return (await page.locator('ul.offers li').count()) > 0;
    });
    await check(page, 'catalogue-eligibles');
    await Promise.all([page.waitForURL(/\/offres\//), page.locator('ul.offers li h3 a').first().click()]);
    await check(page, 'offre-eligible');
    expect((await page.locator('.badge.ok').count()) === 1, 'the member is told it is eligible');
    await Promise.all([page.waitForURL(/\/demandes\/nouvelle/), page.click('a.button:has-text("Déposer une demande")')]);
    await check(page, 'demande-formulaire');
    await page.click('form[action="/demandes"] button');
    await page.waitForSelector('.error-summary');
    await check(page, 'demande-erreurs');
    await page.fill('#objet', 'Réfection de la voirie du centre-bourg');
    await page.fill('#description', 'Diagnostic de la chaussée et chiffrage, rue de l\'Église — « urgent ».');
    // Member approval travels by event to requests: a 409 (adhésion pas encore active) is retried.
    await eventually('the request to be filed', 30000, async () => {
      await page.click('form[action="/demandes"] button');
      await page.waitForLoadState('load');
      if (/\/demandes\/[0-9a-f-]{36}$/.test(page.url())) return true;
      const summary = await page.locator('.error-summary').innerText().catch(() => '');
      expect(summary.includes("n'est pas encore active") || summary === '', `unexpected error: ${summary}`);
      return false;
    });
    state.requestUrl = page.url();
    await check(page, 'demande-deposee');
    // Routing refers it to a provider; the status and history follow.
    await eventually('the request to be referred', 40000, async () => {
      await page.goto(state.requestUrl);
      return providerCode((await page.locator('.facts dt:has-text("Partenaire") + dd').innerText()).trim());
    });
    await check(page, 'demande-orientee');
    state.provider = providerCode((await page.locator('.facts dt:has-text("Partenaire") + dd').innerText()).trim());
    await page.goto(`${base}/demandes`);
    await check(page, 'mes-demandes');
    expect((await page.locator('tbody tr', { hasText: 'Réfection de la voirie' }).count()) === 1, 'listed');
  });

  await step('collectivité : échanges avec le partenaire (message, pièce jointe, refus d\'un faux PDF)', async () => {
    expect(state.requestUrl, 'a filed request');
    await page.goto(state.requestUrl);
    // An empty message is refused by the portal, in French, as an alert.
    await submit(page, 'form[action$="/messages"] button');
    expect((await text(page, '.error-summary')).includes('obligatoire'), 'an empty message is refused');
    await check(page, 'conversation-message-vide');
    await page.fill('#message', 'Bonjour, le plan du centre-bourg suit en pièce jointe.');
    await submit(page, 'form[action$="/messages"] button');
    expect((await text(page, '.notice')).includes('message est envoyé'), 'message sent');
    // A file that says it is a PDF but is not: the API refuses it, the portal says why.
    const fake = join(RUN_DIR, 'faux-plan.pdf');
    writeFileSync(fake, Buffer.concat([Buffer.from('MZ'), randomBytes(64)]));
    await page.setInputFiles('#fichier', fake);
    await submit(page, 'form[action$="/pieces"] button');
    const refusal = await text(page, '.error-summary');
    expect(refusal.includes('ne correspond pas'), `a fake PDF is refused clearly: ${refusal}`);
    await check(page, 'conversation-fichier-refuse');
    // A real PDF (streamed through the portal to the gateway).
    state.pdf = join(RUN_DIR, 'plan-centre-bourg.pdf');
    writeFileSync(state.pdf, `%PDF-1.4\n% plan ${RUN_ID}\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n`);
    await page.fill('#legende', 'Plan du centre-bourg');
    await page.setInputFiles('#fichier', state.pdf);
    await submit(page, 'form[action$="/pieces"] button');
    expect((await text(page, '.notice')).includes('plan-centre-bourg.pdf'), 'file sent');
    const thread = page.locator('#conversation ol.thread > li');
    expect((await thread.count()) === 2, `two messages in the thread (${await thread.count()})`);
    expect((await thread.nth(1).innerText()).includes('Plan du centre-bourg'), 'the file comes with its message');
    expect((await page.locator('#conversation a[href*="/pieces/"]', { hasText: 'plan-centre-bourg.pdf' }).count()) === 1, 'attachment link');
    await check(page, 'conversation-collectivite');
  });

  await step('collectivité : un fichier de plus de 10 Mo est refusé', async () => {
    expect(state.requestUrl, 'a filed request');
    await page.goto(state.requestUrl);
    const big = join(RUN_DIR, 'gros-plan.pdf');
    writeFileSync(big, Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(10 * 1024 * 1024 + 10, 0x20)]));
    await page.setInputFiles('#fichier', big);
    await submit(page, 'form[action$="/pieces"] button');
    const refusal = await text(page, '.error-summary');
    expect(refusal.includes('10 Mo'), `a file over 10 MiB is refused clearly: ${refusal}`);
    expect((await page.locator('#conversation ol.thread > li').count()) === 2, 'nothing was added to the thread');
    await check(page, 'conversation-fichier-trop-gros');
  });

  await step('collectivité : prêt d\'exposition, les dates du prêt sont vérifiées', async () => {
    await page.goto(`${base}/catalogue?categorie=exhibition_loan`);
    await Promise.all([page.waitForURL(/\/offres\//), page.locator('ul.offers li h3 a').first().click()]);
    const offerId = new URL(page.url()).pathname.split('/').pop();
    await page.goto(`${base}/demandes/nouvelle?offre=${offerId}`);
    expect((await page.locator('fieldset legend', { hasText: 'Période du prêt' }).count()) === 1, 'loan dates asked');
    expect((await page.locator('#adresse').count()) === 0, 'no site for a loan');
    await check(page, 'pret-formulaire');
    const day = (offset) => new Date(Date.now() + offset * 86400000).toISOString().slice(0, 10);
    await page.fill('#objet', 'Exposition sur la biodiversité à la médiathèque');
    await page.fill('#debut', day(10));
    await page.fill('#fin', day(5));
    await submit(page, 'form[action="/demandes"] button');
    const errors = await text(page, '.error-summary');
    expect(errors.includes('doit suivre le premier jour'), `loan dates errors: ${errors}`);
    expect((await page.getAttribute('#fin', 'aria-invalid')) === 'true', 'the end date is marked invalid');
    expect((await page.inputValue('#debut')) === day(10), 'the typed dates are kept');
    await check(page, 'pret-erreurs');
  });

  await step('collectivité : demande d\'orientation ouverte (« Je ne sais pas quelle offre choisir »)', async () => {
    await page.goto(`${base}/demandes`);
    await Promise.all([page.waitForURL(/\/demandes\/nouvelle$/), page.click('a:has-text("Je ne sais pas quelle offre choisir")')]);
    await check(page, 'orientation-formulaire');
    await page.click('form[action="/demandes"] button');
    await page.waitForSelector('.error-summary');
    await check(page, 'orientation-erreurs');
    const errors = await text(page, '.error-summary');
    expect(errors.includes('Objet de la demande') && errors.includes('Description du besoin'), `orientation errors: ${errors}`);
    expect((await page.getAttribute('#description', 'aria-invalid')) === 'true', 'the description is required');
    state.orientationSubject = `Projet de tiers-lieu ${RUN_ID}`;
    await page.fill('#objet', state.orientationSubject);
    await page.fill('#description', 'Nous voulons transformer l\'ancienne poste en tiers-lieu : par où commencer ?');
    await Promise.all([page.waitForURL(/\/demandes\/[0-9a-f-]{36}$/), page.click('form[action="/demandes"] button')]);
    state.orientationUrl = page.url();
    await check(page, 'orientation-deposee');
    expect((await text(page, '.facts')).includes("Demande d'orientation"), 'an open orientation request has no offer');
    await logout(page);
  });

  await step('partenaire : orientation reçue avec échéance, refus sans motif, acceptation (le devis attend la collectivité)', async () => {
    expect(state.provider, 'the provider of the request');
    await login(page, base, `agent.${state.provider}@id77.demo`, password);
    await page.goto(`${base}/orientations`);
    await check(page, 'partenaire-orientations');
    const open = page.locator('table', { has: page.locator('caption', { hasText: 'en attente de votre réponse' }) });
    expect((await open.locator('tbody tr').count()) >= 1, 'the agent sees the referral to answer, with its deadline');
    await Promise.all([page.waitForURL(/\/orientations\/[0-9a-f-]+$/), open.locator('tbody tr a').first().click()]);
    state.referralUrl = page.url();
    await check(page, 'partenaire-orientation');
    expect((await page.locator('h2', { hasText: 'La demande' }).count()) === 1, 'the request is shown to its provider');
    await page.click('form[action$="/decliner"] button');
    await page.waitForSelector('.error-summary');
    await check(page, 'partenaire-refus-sans-motif');
    expect((await text(page, '.error-summary')).includes('Motif du refus'), 'a decline needs a reason');
    await Promise.all([page.waitForURL(state.referralUrl), page.click('form[action$="/accepter"] button')]);
    await check(page, 'partenaire-acceptee');
    expect((await text(page, '.notice')).includes('accepté'), 'acceptance confirmed');
    // The same thread on the referral's page: the member's message and file, downloaded through the portal.
    expect((await page.locator('#conversation', { hasText: 'le plan du centre-bourg suit' }).count()) === 1, 'the agent reads the thread');
    const [pdf] = await Promise.all([page.waitForEvent('download'), page.locator('#conversation a[href*="/pieces/"]').first().click()]);
    const saved = join(RUN_DIR, 'piece-recue.pdf');
    await pdf.saveAs(saved);
    expect(readFileSync(saved).equals(readFileSync(state.pdf)), 'the attachment comes back byte for byte');
    expect(pdf.suggestedFilename() === 'plan-centre-bourg.pdf', `file name: ${pdf.suggestedFilename()}`);
    await page.fill('#message', 'Bien reçu, merci : visite de terrain la semaine prochaine.');
    await submit(page, 'form[action$="/messages"] button');
    expect((await text(page, '.notice')).includes('message est envoyé'), 'reply sent');
    expect((await page.locator('#conversation ol.thread > li').count()) === 3, 'the reply is in the thread');
    await check(page, 'partenaire-conversation');
    // A billed offer: the work waits for the member admin's agreement to the quote (ADR 0013).
    expect((await text(page, '#accord-devis h2')) === "En attente de l'accord de la collectivité sur le devis", 'the agent is told the quote awaits the member');
    expect((await page.locator('form[action$="/avancement"], form[action$="/terminer"]').count()) === 0, 'no progress nor completion before the agreement');
    await check(page, 'partenaire-attente-accord-devis');
    await logout(page);
  });

  await step('collectivité : l\'administrateur accepte le devis (signataire, n° d\'engagement)', async () => {
    expect(state.requestUrl && state.adminEmail, 'a request accepted by its provider');
    await login(page, base, state.adminEmail, MEMBER_PASSWORD);
    // The provider's reply is unread on the list, read once the page is opened.
    await page.goto(`${base}/demandes`);
    const row = page.locator('tbody tr', { hasText: 'Réfection de la voirie' });
    expect((await row.locator('.unread').innerText()).startsWith('1'), 'one unread message on the list');
    await check(page, 'mes-demandes-non-lus');
    // Billing proposes the quote on the provider's acceptance (by event).
    await eventually('the proposed quote and its acceptance form', 40000, async () => {
      await page.goto(state.requestUrl);
      return (await page.locator('form[action*="/devis/"][action$="/accepter"]').count()) === 1;
    });
    const quoteFacts = page.locator('dl.facts', { hasText: 'Statut du devis' });
    expect((await quoteFacts.locator('.status').innerText()).trim() === 'Proposé', 'the quote is proposed');
    expect((await quoteFacts.innerText()).includes('Montant TTC'), 'amounts excluding and including VAT');
    expect((await page.locator('form[action*="/devis/"][action$="/refuser"]').count()) === 1, 'the admin may refuse it too');
    await check(page, 'demande-devis-propose');
    // The signatory is required: the portal says so next to the field.
    await submit(page, 'form[action$="/accepter"] button');
    expect((await text(page, '.error-summary')).includes('Nom du signataire'), 'a signatory is required');
    expect((await page.getAttribute('#signataire', 'aria-invalid')) === 'true', 'the signatory field is marked invalid');
    expect((await page.locator('.error-summary a[href="#signataire"]').count()) === 1, 'the summary links to the field');
    await check(page, 'demande-devis-erreurs');
    state.purchaseOrder = `EJ-${RUN_ID}`;
    await page.fill('#signataire', 'Claire Martin, maire de Meaux');
    await page.fill('#engagement', state.purchaseOrder);
    await submit(page, 'form[action$="/accepter"] button');
    expect(new URL(page.url()).pathname === new URL(state.requestUrl).pathname, `back on the request: ${page.url()}`);
    expect((await text(page, '.notice')).includes('accepté le devis'), 'acceptance confirmed');
    const decided = page.locator('dl.facts', { hasText: 'Statut du devis' });
    expect((await decided.locator('.status').innerText()).trim() === 'Accepté', 'the quote is accepted');
    const facts = await decided.innerText();
    expect(facts.includes('Claire Martin, maire de Meaux') && facts.includes(state.purchaseOrder), `signatory and purchase order shown: ${facts}`);
    expect(!facts.includes('@'), 'who decided is named, not an e-mail address');
    expect((await page.locator('form[action*="/devis/"]').count()) === 0, 'no second decision offered');
    await check(page, 'demande-devis-accepte');
    await logout(page);
  });

  await step('partenaire : après l\'accord de la collectivité, avancement et fin de la prestation', async () => {
    expect(state.referralUrl, 'the referral accepted by the agent');
    await login(page, base, `agent.${state.provider}@id77.demo`, password);
    // Routing learns of the agreement by event (quote.accepted).
    await eventually('the progress form once the quote is accepted', 30000, async () => {
      await page.goto(state.referralUrl);
      return (await page.locator('form[action$="/avancement"]').count()) === 1;
    });
    expect((await page.locator('#accord-devis').count()) === 0, 'no longer waiting for the member');
    await page.fill('#note', 'Visite de terrain faite, diagnostic en cours de rédaction.');
    await page.fill('#pourcentage', '60');
    await Promise.all([page.waitForURL(state.referralUrl), page.click('form[action$="/avancement"] button')]);
    await check(page, 'partenaire-avancement');
    expect((await page.locator('h2', { hasText: 'Avancement' }).count()) === 1, 'progress shown');
    // Declaring the work done asks for a confirmation that states what will be invoiced; « Annuler » declares
    // nothing, only « Confirmer » does.
    await Promise.all([page.waitForURL((u) => u.pathname.endsWith('/terminer')), page.click('form[action$="/terminer"] button')]);
    await check(page, 'partenaire-confirmer-fin');
    expect((await text(page, 'h1')) === 'Confirmer la fin de la prestation', 'a confirmation page');
    const confirmation = await text(page, 'main');
    expect(/HT[\s\S]*TVA[\s\S]*TTC|aucune facture ne sera émise/.test(confirmation), `the amount invoiced is stated: ${confirmation}`);
    await Promise.all([page.waitForURL(state.referralUrl), page.click('a:has-text("Annuler")')]);
    expect((await page.locator('.badge.ok', { hasText: 'Prestation terminée' }).count()) === 0, 'cancelled: not declared');
    await Promise.all([page.waitForURL((u) => u.pathname.endsWith('/terminer')), page.click('form[action$="/terminer"] button')]);
    await Promise.all([page.waitForURL(state.referralUrl), page.click('form[action$="/terminer"] button:has-text("Confirmer")')]);
    await check(page, 'partenaire-terminee');
    expect((await text(page, '.badge.ok')).includes('Prestation terminée'), 'completion shown');
    // Another role's screens are not offered, and refused when typed in.
    expect((await page.locator('nav a[href="/coordination/regles"]').count()) === 0, 'no coordination link');
    const refused = await page.goto(`${base}/coordination/regles`);
    expect(refused.status() === 403, `a provider agent is refused the rules page (${refused.status()})`);
    await check(page, 'acces-refuse');
    await logout(page);
  });

  await step('collectivité : statut, historique, devis et facture téléchargée', async () => {
    await login(page, base, state.adminEmail, MEMBER_PASSWORD);
    // The provider's reply (unread on the list until the admin opened the request to accept the quote) is shown.
    const row = page.locator('tbody tr', { hasText: 'Réfection de la voirie' });
    await page.goto(state.requestUrl);
    expect((await page.locator('#conversation', { hasText: 'Bien reçu, merci' }).count()) === 1, 'the reply is shown');
    await page.goto(`${base}/demandes`);
    expect((await row.locator('.unread').count()) === 0, 'read once the page was opened');
    await page.goto(state.requestUrl);
    const status = await text(page, '.facts dd .status');
    expect(['Acceptée', 'En cours', 'Terminée'].includes(status), `status after the provider's answer: ${status}`);
    expect((await page.locator('table tbody tr').count()) >= 3, 'the history shows each step');
    await check(page, 'demande-suivie');
    await eventually('the invoice', 40000, async () => {
      await page.goto(`${base}/factures`);
      return (await page.locator('table caption', { hasText: 'Factures' }).count()) === 1;
    });
    await check(page, 'devis-et-factures');
    expect((await page.locator('table caption', { hasText: 'Devis' }).count()) === 1, 'the quote is listed');
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('a[href$=".xml"]').first().click()]);
    const file = join(RUN_DIR, 'facture.xml');
    await download.saveAs(file);
    const xml = readFileSync(file, 'utf8');
    expect(xml.includes('CrossIndustryInvoice'), 'the downloaded invoice is Factur-X (CII) XML');
    const [csv] = await Promise.all([page.waitForEvent('download'), page.locator('a[href$=".csv"]').first().click()]);
    expect(/\.csv$/.test(csv.suggestedFilename()), `CSV download: ${csv.suggestedFilename()}`);
    const [ubl] = await Promise.all([page.waitForEvent('download'), page.locator('a[href^="/factures/"][href$=".ubl.xml"]').first().click()]);
    await ubl.saveAs(join(RUN_DIR, 'facture.ubl.xml'));
    expect(readFileSync(join(RUN_DIR, 'facture.ubl.xml'), 'utf8').includes('urn:oasis:names:specification:ubl'), 'UBL XML download');
    const [invoicePdf] = await Promise.all([page.waitForEvent('download'), page.locator('a[href^="/factures/"][href$=".pdf"]').first().click()]);
    await invoicePdf.saveAs(join(RUN_DIR, 'facture.pdf'));
    expect(readFileSync(join(RUN_DIR, 'facture.pdf')).subarray(0, 5).toString() === '%PDF-', 'invoice PDF download');
    const [quotePdf] = await Promise.all([page.waitForEvent('download'), page.locator('a[href^="/devis/"][href$=".pdf"]').first().click()]);
    await quotePdf.saveAs(join(RUN_DIR, 'devis.pdf'));
    expect(readFileSync(join(RUN_DIR, 'devis.pdf')).subarray(0, 5).toString() === '%PDF-', 'quote PDF download');
    // Feedback once the provider has completed.
    await eventually('the request to be completed', 30000, async () => {
      await page.goto(state.requestUrl);
      return (await page.locator('form[action$="/avis"]').count()) === 1;
    });
    await submit(page, 'form[action$="/avis"] button');
    expect((await text(page, '.error-summary')).includes('note de 1 à 5'), 'a rating is required');
    await page.check('#note-4');
    await page.fill('#commentaire', 'Diagnostic clair et rapide.');
    await submit(page, 'form[action$="/avis"] button');
    expect((await text(page, '.notice')).includes('avis est enregistré'), 'feedback saved');
    expect((await page.locator('h2', { hasText: 'Avis de la collectivité' }).count()) === 1, 'feedback shown');
    await check(page, 'demande-avis');
    await logout(page);
  });

  await step('collectivité : l\'administrateur refuse le devis d\'une autre demande, qui est annulée à son nom', async () => {
    expect(state.adminEmail, 'an activated member account');
    await login(page, base, state.adminEmail, MEMBER_PASSWORD);
    await page.goto(`${base}/catalogue?eligibles=1&tarif=flat`);
    await Promise.all([page.waitForURL(/\/offres\//), page.locator('ul.offers li h3 a').first().click()]);
    await Promise.all([page.waitForURL(/\/demandes\/nouvelle/), page.click('a.button:has-text("Déposer une demande")')]);
    state.refusedSubject = `Étude du stationnement ${RUN_ID}`;
    await page.fill('#objet', state.refusedSubject);
    await page.fill('#description', 'Étude du stationnement autour de la gare.');
    await Promise.all([page.waitForURL(/\/demandes\/[0-9a-f-]{36}$/), page.click('form[action="/demandes"] button')]);
    state.refusedUrl = page.url();
    const provider = await eventually('the second request to be referred', 40000, async () => {
      await page.goto(state.refusedUrl);
      return providerCode((await page.locator('.facts dt:has-text("Partenaire") + dd').innerText()).trim());
    });
    await logout(page);

    // Its provider's agent accepts it: billing proposes the quote.
    await login(page, base, `agent.${provider}@id77.demo`, password);
    state.refusedReferralUrl = await eventually('the referral of the second request', 30000, async () => {
      await page.goto(`${base}/orientations`);
      const open = page.locator('table', { has: page.locator('caption', { hasText: 'en attente de votre réponse' }) });
      const hrefs = await open.locator('tbody tr a').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
      for (const href of hrefs) {
        await page.goto(`${base}${href}`);
        if ((await page.locator('main', { hasText: state.refusedSubject }).count()) === 1) return page.url();
      }
      return null;
    });
    await submit(page, 'form[action$="/accepter"] button');
    expect((await text(page, '.notice')).includes('accepté la demande'), 'acceptance confirmed');
    expect((await page.locator('#accord-devis').count()) === 1, 'the work waits for the member');
    await logout(page);

    // The member admin refuses the quote, with a reason.
    await login(page, base, state.adminEmail, MEMBER_PASSWORD);
    await eventually('the proposed quote of the second request', 40000, async () => {
      await page.goto(state.refusedUrl);
      return (await page.locator('form[action*="/devis/"][action$="/refuser"]').count()) === 1;
    });
    await submit(page, 'form[action$="/refuser"] button');
    expect((await text(page, '.error-summary')).includes('Motif du refus'), 'a reason is required');
    expect((await page.getAttribute('#motif-refus', 'aria-invalid')) === 'true', 'the reason field is marked invalid');
    await check(page, 'demande-devis-refus-sans-motif');
    await page.fill('#motif-refus', 'Budget non voté cette année');
    await submit(page, 'form[action$="/refuser"] button');
    expect((await text(page, '.notice')).includes('refusé le devis'), 'refusal confirmed');
    const refused = page.locator('dl.facts', { hasText: 'Statut du devis' });
    expect((await refused.locator('.status').innerText()).trim() === 'Refusé', 'the quote is refused');
    expect((await refused.innerText()).includes('Budget non voté cette année'), 'the reason is shown with the quote');
    // Requests cancels the request on quote.refused: the history names the admin, never an address.
    await eventually('the request to be cancelled', 30000, async () => {
      await page.goto(state.refusedUrl);
      return (await text(page, '.facts dd .status')) === 'Annulée';
    });
    const line = page.locator('table tbody tr').filter({ hasText: 'Annulée' }).last();
    const who = await line.innerText();
    expect(who.includes('Direction générale des services') && who.includes('Administrateur de la collectivité'), `the history names the admin who refused: ${who}`);
    expect(who.includes('Budget non voté cette année'), `the history gives the reason: ${who}`);
    expect(!who.includes('@'), 'no e-mail address in the history');
    expect((await page.locator('form[action*="/devis/"], form[action$="/annuler"]').count()) === 0, 'nothing left to decide');
    await check(page, 'demande-devis-refuse-annulee');
    await logout(page);

    // The provider's agent is told who cancelled and why, with no action left.
    await login(page, base, `agent.${provider}@id77.demo`, password);
    await eventually('the referral to be withdrawn', 30000, async () => {
      await page.goto(state.refusedReferralUrl);
      return (await page.locator('#demande-annulee').count()) === 1;
    });
    expect((await text(page, '#demande-annulee h2')) === 'La collectivité a annulé la demande', 'who cancelled');
    expect((await text(page, '#demande-annulee')).includes('Budget non voté cette année'), 'why');
    expect((await text(page, '#conversation')).includes('ne sont plus accessibles'), 'the thread is closed, said in words');
    expect((await page.locator('form[action$="/avancement"], form[action$="/terminer"], form[action$="/accepter"]').count()) === 0, 'no action form');
    await check(page, 'partenaire-demande-annulee');
    await logout(page);
  });

  await step('collectivité : mes notifications (couper « Nouveaux messages », enregistré après rechargement)', async () => {
    expect(state.adminEmail, 'an activated member account');
    await login(page, base, state.adminEmail, MEMBER_PASSWORD);
    await Promise.all([page.waitForURL(/\/compte\/notifications$/), page.click('nav a[href="/compte/notifications"]')]);
    expect((await text(page, 'h1')) === 'Mes notifications', 'the page is reached from the navigation');
    expect((await page.getAttribute('nav a[href="/compte/notifications"]', 'aria-current')) === 'page', 'current entry');
    const status = page.getByLabel('Changements de statut de mes demandes');
    const messages = page.getByLabel('Nouveaux messages');
    expect((await page.locator('fieldset legend').count()) === 1, 'the checkboxes are grouped under a legend');
    expect((await status.isChecked()) && (await messages.isChecked()), 'both kinds are on by default');
    await messages.uncheck();
    await submit(page, 'form[action="/compte/notifications"] button[type="submit"]');
    expect(new URL(page.url()).pathname === '/compte/notifications', `back on the page after saving: ${page.url()}`);
    expect((await text(page, '.notice')).includes('préférences de notification sont enregistrées'), 'saving confirmed');
    await check(page, 'mes-notifications-enregistrees');
    await page.reload();
    expect((await page.locator('.notice').count()) === 0, 'the confirmation is shown once');
    expect(!(await page.getByLabel('Nouveaux messages').isChecked()), 'still off after a reload');
    expect(await page.getByLabel('Changements de statut de mes demandes').isChecked(), 'the other kind is still on');
    await check(page, 'mes-notifications');
    await logout(page);
  });

  await step('coordination : file de triage (la demande d\'orientation est confiée), statistiques', async () => {
    expect(state.orientationSubject && state.provider, 'an open orientation request and a provider');
    await login(page, base, 'coordination@id77.demo', password);
    await eventually('the orientation request in the triage queue', 30000, async () => {
      await page.goto(`${base}/coordination/triage`);
      return (await page.locator('li.triage-item', { hasText: state.orientationSubject }).count()) === 1;
    });
    await check(page, 'coordination-triage');
    const item = page.locator('li.triage-item', { hasText: state.orientationSubject });
    await submit(page, item.locator('button[type="submit"]'));
    expect((await text(page, '.error-summary')).includes("Choisissez l'offre"), 'an open request needs an offer');
    await check(page, 'coordination-triage-erreur');
    const again = page.locator('li.triage-item', { hasText: state.orientationSubject });
    // An offer of the provider the first request went to, and that provider.
    const offer = await again.locator('select[name="offre"] option').evaluateAll(
      (options, names) => (options.find((o) => names.some((n) => o.textContent.trim().endsWith(`, ${n})`))) ?? options[1])?.value,
      providerNames(state.provider),
    );
    expect(offer, `an offer of ${state.provider} in the list`);
    await again.locator('select[name="offre"]').selectOption(offer);
    await again.locator('select[name="partenaire"]').selectOption(state.provider);
    await again.locator('textarea[name="note"]').fill('Projet de tiers-lieu : premier rendez-vous à caler.');
    await submit(page, again.locator('button[type="submit"]'));
    const assigned = await text(page, '.notice');
    expect(providerNames(state.provider).some((n) => assigned.includes(`partenaire ${n}`)), `assigned: ${assigned}`);
    expect((await page.locator('li.triage-item', { hasText: state.orientationSubject }).count()) === 0, 'no longer in the queue');
    await eventually('the orientation request to be referred', 30000, async () => {
      await page.goto(state.orientationUrl);
      return providerCode(await text(page, '.facts dt:has-text("Partenaire") + dd')) === state.provider;
    });
    await check(page, 'coordination-demande-orientee');
    // The coordinator cancels it (before completion): the history says who, from what, and why.
    await page.fill('#motif-annulation', 'Doublon avec un projet intercommunal');
    await submit(page, 'form[action$="/annuler"] button');
    expect((await text(page, '.notice')).includes('La demande est annulée'), 'cancelled');
    expect((await text(page, '.facts dd .status')) === 'Annulée', 'status: cancelled');
    const last = page.locator('table tbody tr').filter({ hasText: 'Doublon avec un projet intercommunal' });
    expect((await last.innerText()).includes('Coordination (guichet unique)'), 'the history names the coordinator');
    expect((await page.locator('form[action$="/annuler"]').count()) === 0, 'no second cancellation offered');
    await check(page, 'coordination-demande-annulee');
    await page.goto(`${base}/coordination/statistiques`);
    await check(page, 'coordination-statistiques');
    expect((await page.locator('table caption', { hasText: 'Demandes par statut' }).count()) === 1, 'by status');
    expect((await page.locator('table caption', { hasText: 'Demandes par partenaire' }).count()) === 1, 'by provider');
    const total = Number((await text(page, '.facts dt:has-text("Demandes déposées") + dd')).trim());
    expect(total >= 2, `the period counts this run's requests (${total})`);
    expect((await text(page, '.facts')).includes('4,0 sur 5') || (await text(page, '.facts')).includes('sur 5'), 'satisfaction shown');
    await page.fill('#du', '2026-02-01');
    await page.fill('#au', '2026-01-01');
    await Promise.all([page.waitForURL(/du=2026-02-01/), page.click('form[action="/coordination/statistiques"] button')]);
    expect((await text(page, '.error-summary')).includes('doit suivre son début'), 'a reversed period is refused');
    await check(page, 'coordination-statistiques-erreur');
    await logout(page);
  });

  await step('sécurité : un POST sans jeton CSRF est refusé', async () => {
    const response = await page.request.post(`${base}/connexion`, { form: { email: 'x@y.fr', password: 'x' } });
    expect(response.status() === 403, `POST without CSRF token: ${response.status()}`);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'id77_session');
    expect(session && session.httpOnly && session.sameSite === 'Strict', `session cookie flags: ${JSON.stringify(session)}`);
  });

  await context.close();
  return state;
}

// ---- every role's main pages, at the three widths ----------------------------------------------------------

// One context (one page, logged in once) per role; each page is checked by check(). A page that answers 404 while
// optional (legal pages, account pages still to come) is skipped with a note; any other problem is recorded for the
// role's step, which goes on with the next page.
async function tour(browser, ready, state) {
  const base = ready.portal;
  const password = ready.password;
  const skipped = [];
  const roles = [
    { role: 'anonyme', pages: async (page) => {
      const offer = await firstHref(page, `${base}/catalogue`, 'ul.offers li h3 a');
      const forgotten = await firstHref(page, `${base}/connexion`, 'a:has-text("Mot de passe oublié")');
      return [
        ['accueil', '/'], ['catalogue', '/catalogue'], ['recherche', '/catalogue?q=voirie'],
        ['recherche-globale', '/recherche?q=voirie', true], ['offre', offer], ['adherer', '/adherer'],
        ['adherer-resultats', '/adherer?q=Meaux&type=commune'], ['connexion', '/connexion'],
        ['mentions-legales', '/mentions-legales', true], ['accessibilite', '/accessibilite', true],
        ['plan-du-site', '/plan-du-site', true], ['contact', '/contact', true], ['mot-de-passe-oublie', forgotten, true],
      ];
    } },
    { role: 'collectivite', email: state.adminEmail, password: MEMBER_PASSWORD, pages: async () => [
      ['accueil', '/'], ['demandes', '/demandes'], ['demande', state.requestUrl], ['devis-et-factures', '/factures'],
      ['compte', '/compte'], ['equipe', '/compte/equipe', true], ['preferences-notifications', '/compte/notifications'],
      ['notifications', '/notifications', true], ['inscriptions', '/inscriptions'],
    ] },
    { role: 'partenaire', email: state.provider && `agent.${state.provider}@id77.demo`, password, pages: async () => [
      ['accueil', '/'], ['orientations', '/orientations'], ['orientation', state.referralUrl], ['factures', '/factures'],
      ['compte', '/compte'], ['notifications', '/notifications', true], ['sessions', '/sessions'],
    ] },
    { role: 'coordination', email: 'coordination@id77.demo', password, pages: async () => [
      ['accueil', '/'], ['triage', '/coordination/triage'], ['adhesions', '/coordination/adhesions'],
      ['orientations', '/coordination/orientations'], ['regles', '/coordination/regles'],
      ['statistiques', '/coordination/statistiques'], ['notifications', '/notifications', true],
      ['sessions', '/sessions'], ['remplissage-sessions', '/coordination/sessions'],
    ] },
    { role: 'operateur', email: 'operateur@id77.demo', password, optional: true, pages: async () => [
      ['accueil', '/'], ['catalogue', '/catalogue'], ['notifications', '/compte/notifications'],
    ] },
  ];
  for (const { role, email, password: secret, optional, pages } of roles) {
    await step(`tour des pages (1280, 390, 320 px) : ${role}`, async () => {
      const context = await browser.newContext({ bypassCSP: true, locale: 'fr-FR', viewport: VIEWPORT });
      const page = await context.newPage();
      const problems = [];
      try {
        if (role !== 'anonyme') {
          expect(email, `no ${role} account from the journeys`);
          await page.goto(`${base}/connexion`);
          await page.fill('#email', email);
          await page.fill('#password', secret);
          await submit(page, 'form[action="/connexion"] button[type="submit"]');
          if (new URL(page.url()).pathname.startsWith('/connexion')) {
            if (optional) {
              skipped.push(`${role} (${email} ne se connecte pas)`);
              log(`tour ${role}: ${email} cannot log in: skipped`);
              return;
            }
            throw new Error(`${email} cannot log in`);
          }
        }
        for (const [name, target, maybe] of await pages(page)) {
          try {
            if (maybe && !target) {
              skipped.push(`${role} ${name}`);
              log(`tour ${role}: no link to ${name} yet, skipped`);
              continue;
            }
            expect(target, `${name}: no address from the journeys`);
            const response = await page.goto(target.startsWith('http') ? target : `${base}${target}`);
            const status = response ? response.status() : 0;
            if (maybe && status === 404) {
              skipped.push(`${role} ${target}`);
              log(`tour ${role}: ${target} answers 404, skipped for now`);
              continue;
            }
            expect(status === 200, `${target} answers HTTP ${status}`);
            await check(page, `tour-${role}-${name}`);
          } catch (error) {
            problems.push(`${name} : ${error.message.split('\n')[0]}`);
          }
        }
      } finally {
        await context.close();
      }
      if (problems.length) throw new Error(problems.join(' | '));
    });
  }
  if (skipped.length) log(`tour: skipped (404 or no account yet): ${skipped.join(', ')}`);
  return skipped;
}

async function firstHref(page, url, selector) {
  await page.goto(url);
  if ((await page.locator(selector).count()) === 0) return null;
  const href = await page.locator(selector).first().getAttribute('href');
  return href ? new URL(href, url).href : null;
}

// ---- the journeys of tests/browser/journeys/*.mjs (written with the features they test) ----------------------

function journeyFiles() {
  const dir = join(HERE, 'journeys');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.mjs')).sort() : [];
  if (!files.length) log('no journey modules in tests/browser/journeys/');
  return files.map((file) => ({ file, href: pathToFileURL(join(dir, file)).href }));
}

// A module may export `prepare(t)`, run before the main journeys; what it returns is handed to its `run(t, …)`
// (e.g. the sessions journey schedules a session that must have started before attendance is recorded).
async function prepareModules(t) {
  const prepared = new Map();
  for (const { file, href } of journeyFiles()) {
    const mod = await import(href);
    if (typeof mod.prepare !== 'function') continue;
    await step(`module journeys/${file} (préparation)`, async () => {
      prepared.set(file, await mod.prepare(t));
    });
  }
  return prepared;
}

async function modules(t, prepared) {
  for (const { file, href } of journeyFiles()) {
    await step(`module journeys/${file}`, async () => {
      const mod = await import(href);
      expect(typeof mod.run === 'function', `journeys/${file} exports no run(t)`);
      await mod.run(t, prepared.get(file));
    });
  }
}

// `id77-admin reconcile` (ADR 0013) against the services run.sh started, as the demo coordinator: every request's
// referral, quote and invoice must agree once the journeys are over. Throws with the report otherwise.
function reconcile(ready) {
  const base = Number(ready.grpc_base);
  const url = (offset) => `http://127.0.0.1:${base + offset}`;
  try {
    const out = execFileSync(join(ready.bin, 'id77-admin'), ['reconcile'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ID77_MEMBERSHIP_URL: url(0),
        ID77_REQUESTS_URL: url(2),
        ID77_ROUTING_URL: url(3),
        ID77_BILLING_URL: url(4),
        ID77_ADMIN_EMAIL: 'coordination@id77.demo',
        ID77_ADMIN_PASSWORD: ready.password,
      },
    });
    log(out.trim());
  } catch (error) {
    throw new Error(`the reconciler found disagreements (exit ${error.status}):\n${error.stdout || ''}${error.stderr || ''}`);
  }
}

async function main() {
  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });
  const executablePath = execFileSync('bash', [join(HERE, 'ensure-chromium.sh')], { encoding: 'utf8' }).trim();
  let browser = null;
  const started = Date.now();
  let platformMs = 0;
  try {
    const ready = await startPlatform();
    platformMs = Date.now() - started;
    browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
    await step('barre : codes des partenaires et SIREN des EPCI lus à la passerelle', () => loadBarContext(ready));
    const base = ready.portal;
    const password = ready.password;
    const t = { browser, base, ready, step, check, login, submit, logout, expect, eventually, text, password };
    const prepared = await prepareModules(t);
    const state = await journeys(browser, ready);
    await modules(t, prepared);
    await tour(browser, ready, state);
    await step('cohérence : le réconciliateur ne trouve aucun désaccord entre les services', async () => {
      reconcile(ready);
    });
  } catch (error) {
    results.push({ name: 'platform and browser start', ok: false, error });
    log(`FAIL ${error.stack || error}`);
  } finally {
    if (browser) await browser.close().catch(() => {});
    await cleanup();
  }
  const failed = results.filter((r) => !r.ok);
  const pages = axeReport.length;
  const violations = axeReport.reduce((n, r) => n + r.violations, 0);
  console.log(`\nAccessibility (axe-core ${JSON.parse(readFileSync(join(HERE, 'node_modules/axe-core/package.json'), 'utf8')).version}, tags ${AXE_TAGS.join(', ')}, at ${WIDTHS.join(', ')} px): ${pages} page states checked, ${violations} violations`);
  const failing = barReport.filter((r) => r.findings.length);
  console.log(`Bar (axe, horizontal scroll, identifiers, codes, English words, UTC/ISO dates, lang, h1, at ${WIDTHS.join(', ')} px): ${failing.length} of ${barReport.length} page states fail`);
  for (const r of barReport) {
    console.log(`  ${r.findings.length ? 'FAIL' : 'ok  '} ${r.page}`);
    for (const f of r.findings) console.log(`         - ${f}`);
  }
  console.log(`Screenshots: ${SHOTS}`);
  console.log(`Time: ${Math.round((Date.now() - started) / 1000)} s in all, of which ${Math.round(platformMs / 1000)} s to start the platform and ${Math.round(checkMs / 1000)} s in ${barReport.length} checks at ${WIDTHS.length} widths`);
  for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'} ${r.name}${r.ok ? '' : `: ${String(r.error?.message || r.error).split('\n')[0]}`}`);
  console.log(`${results.length - failed.length} passed, ${failed.length} failed`);
  process.exitCode = failed.length || results.length === 0 ? 1 : 0;
}

// Run when started (node run.mjs); importing it (a quick check of check() on a static page) runs nothing.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
export { check, barReport, SHOTS };
