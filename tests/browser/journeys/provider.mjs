// The provider's screens (issue 21): the referrals list names the collectivité, its contact and the offer (never
// an id), and « Déclarer la prestation terminée » asks for a confirmation that states what will be invoiced before
// anything is declared (« Annuler » changes nothing; only « Confirmer » declares it).
//
// Runs after the main journeys: it looks for a provider whose agent has referrals (the member's requests of the
// main journey), through the public providers list, and signs in as `agent.<code>@id77.demo`.

const UUID_OR_PREFIX = /\b[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\b|Orientation [0-9a-f]{8}\b/i;

async function providers(gateway) {
  const res = await fetch(`${gateway}/v1/providers?limit=100`);
  if (!res.ok) throw new Error(`GET /v1/providers: ${res.status}`);
  return (await res.json()).items.map((p) => p.code);
}

export async function run(t) {
  const { browser, base, ready, step, check, login, submit, logout, expect, text, password } = t;
  const page = await browser.newPage();
  const found = { code: null, offered: null };

  await step('partenaire : la liste des orientations nomme la collectivité, son contact et l\'offre, sans identifiant', async () => {
    for (const code of await providers(ready.gateway)) {
      await login(page, base, `agent.${code}@id77.demo`, password);
      await page.goto(`${base}/orientations`);
      const rows = page.locator('table tbody tr');
      if ((await rows.count()) > 0) {
        found.code = code;
        break;
      }
      await logout(page);
    }
    expect(found.code, 'a provider with referrals after the main journeys');
    await check(page, 'partenaire-orientations-nommees');
    const main = await text(page, 'main');
    expect(!UUID_OR_PREFIX.test(main), `no id on the list: ${main.match(UUID_OR_PREFIX)}`);
    const headers = await page.locator('table thead th').allInnerTexts();
    for (const h of ['Demande', 'Collectivité', 'Contact', 'Offre', 'Répondre avant le']) {
      expect(headers.includes(h), `column « ${h} » (${headers.join(', ')})`);
    }
    const row = page.locator('table tbody tr').first();
    const commune = (await row.locator('td').nth(0).innerText()).trim();
    expect(commune && commune !== 'Collectivité non renseignée', `the collectivité is named: « ${commune} »`);
    expect((await row.locator('td a[href^="/offres/"]').count()) === 1, 'the offer is named and linked');
    expect((await row.locator('th a[href^="/orientations/"]').count()) === 1, 'the line links to the referral');
    const open = page.locator('table', { has: page.locator('caption', { hasText: 'en attente de votre réponse' }) });
    if ((await open.count()) > 0) found.offered = await open.locator('tbody tr th a').first().getAttribute('href');
    await Promise.all([page.waitForURL(/\/orientations\/[0-9a-f-]+$/), row.locator('th a').click()]);
    await check(page, 'partenaire-orientation-nommee');
    const facts = await text(page, '.facts');
    expect(facts.includes('Collectivité') && facts.includes('Contact') && facts.includes('Offre'), `the referral's facts: ${facts}`);
    expect(!UUID_OR_PREFIX.test(await text(page, 'main')), 'no id on the referral page');
  });

  await step('partenaire : « Déclarer la prestation terminée » demande une confirmation qui annonce le montant facturé', async () => {
    expect(found.offered, 'a referral still waiting for the agent (the main journey\'s exhibition loan)');
    const url = `${base}${found.offered}`;
    await page.goto(url);
    await submit(page, 'form[action$="/accepter"] button');
    if ((await page.locator('.error-summary').count()) > 0) {
      // An offer priced on quote: its amount is required.
      await page.fill('#montant', '1 000,00');
      await submit(page, 'form[action$="/accepter"] button');
    }
    const finish = page.locator('form[action$="/terminer"] button');
    if ((await finish.count()) === 0) {
      // A billed offer waits for the member's agreement to its quote: nothing to declare yet, and the
      // confirmation page is not reachable as a shortcut either.
      expect((await page.locator('#accord-devis').count()) === 1, 'no completion before the agreement');
      return;
    }
    await Promise.all([page.waitForURL(/\/terminer$/), finish.click()]);
    await check(page, 'partenaire-confirmer-fin');
    const body = await text(page, 'main');
    expect(body.includes('Confirmer la fin de la prestation'), 'a confirmation page');
    expect(/Montant HT[\s\S]*TVA[\s\S]*Montant TTC|aucune facture ne sera émise/.test(body), `the amount invoiced is stated: ${body}`);
    // « Annuler » goes back and declares nothing.
    await Promise.all([page.waitForURL(url), page.click('a:has-text("Annuler")')]);
    expect((await page.locator('.badge.ok', { hasText: 'Prestation terminée' }).count()) === 0, 'cancelled: not declared');
    // « Confirmer » declares it.
    await Promise.all([page.waitForURL(/\/terminer$/), page.locator('form[action$="/terminer"] button').click()]);
    await Promise.all([page.waitForURL(url), page.click('form[action$="/terminer"] button:has-text("Confirmer")')]);
    await check(page, 'partenaire-fin-confirmee');
    expect((await text(page, '.badge.ok')).includes('Prestation terminée'), 'declared once confirmed');
    await logout(page);
  });

  await page.close();
}
