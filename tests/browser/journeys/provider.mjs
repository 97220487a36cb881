// The provider's screens (issue 21): the referrals list names the collectivité, its contact and the offer (never
// an id). (The confirmation before « Déclarer la prestation terminée » is walked by the main journey in run.mjs.)
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
  const { browser, base, ready, step, check, login, logout, expect, text, password } = t;
  const page = await browser.newPage();
  const found = { code: null };

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
    await Promise.all([page.waitForURL(/\/orientations\/[0-9a-f-]+$/), row.locator('th a').click()]);
    await check(page, 'partenaire-orientation-nommee');
    const facts = await text(page, '.facts');
    expect(facts.includes('Collectivité') && facts.includes('Contact') && facts.includes('Offre'), `the referral's facts: ${facts}`);
    expect(!UUID_OR_PREFIX.test(await text(page, 'main')), 'no id on the referral page');
  });

  await page.close();
}
