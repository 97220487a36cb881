// The portal's frame (docs/portal.md): the footer's pages (legal notice, accessibility statement, site map,
// contact), the phone menu (a <details> that opens without any script), and the rule for form errors: the title
// starts with « Erreur : » and the error summary has the focus when the page loads.

export async function run(t) {
  const { browser, base, check, expect, text } = t;
  const context = await browser.newContext({ bypassCSP: true, locale: 'fr-FR' });
  const page = await context.newPage();
  try {
    await page.goto(`${base}/`);
    for (const [label, path, h1] of [
      ['Mentions légales', '/mentions-legales', 'Mentions légales'],
      ['Accessibilité : partiellement conforme', '/accessibilite', "Déclaration d'accessibilité"],
      ['Plan du site', '/plan-du-site', 'Plan du site'],
      ['Contact', '/contact', 'Contact'],
    ]) {
      await Promise.all([page.waitForURL((u) => u.pathname === path), page.click(`footer a:text-is("${label}")`)]);
      expect((await text(page, 'h1')) === h1, `${path}: h1 « ${h1} »`);
      expect((await page.getAttribute('meta[name="description"]', 'content'))?.length > 20, `${path}: a description`);
      await check(page, `pied-${path.slice(1)}`);
    }
    const icon = await page.request.get(`${base}/static/favicon.svg`);
    expect(icon.status() === 200 && icon.headers()['content-type'] === 'image/svg+xml', 'the favicon is served as SVG');

    // On a phone the navigation is behind « Menu », which opens and closes without script.
    await page.setViewportSize({ width: 390, height: 800 });
    await page.goto(`${base}/plan-du-site`);
    expect(!(await page.isVisible('nav.nav-wide')), 'no wide navigation on a phone');
    expect(!(await page.isVisible('details.menu nav a[href="/catalogue"]')), 'the menu starts closed');
    const header = await page.evaluate(() => document.querySelector('.site-header').getBoundingClientRect().height);
    expect(header <= 100, `the header is compact on a phone (${header} px)`);
    await page.click('details.menu > summary');
    expect(await page.isVisible('details.menu nav a[href="/catalogue"]'), 'the menu opens');
    await check(page, 'menu-ouvert');
    await page.setViewportSize({ width: 390, height: 800 }); // check() leaves the page at 1280 px
    await Promise.all([page.waitForURL(/\/catalogue/), page.click('details.menu nav a[href="/catalogue"]')]);
    await page.setViewportSize({ width: 1280, height: 720 });

    // A form sent with errors: « Erreur : » in the title, the focus on the summary.
    await page.goto(`${base}/connexion`);
    await Promise.all([page.waitForNavigation(), page.click('form[action="/connexion"] button[type="submit"]')]);
    expect((await page.title()).startsWith('Erreur : '), `the title says so: « ${await page.title()} »`);
    const focused = await page.evaluate(() => document.activeElement?.id);
    expect(focused === 'erreurs', `the error summary has the focus (${focused})`);
  } finally {
    await context.close();
  }
}
