// Training sessions journey (issue 22, item 8): the agent of a provider schedules a session of one of its
// training offers in the portal (a form error first), a member's user registers two participants from the offer's
// page and finds them in « Mes inscriptions » (with the cancellation page and the calendar feed), then the agent
// marks attendance once the session has started. Every page is checked by check() (axe at 1280, 390 and 320 px,
// no horizontal scroll, the bar).
//
// The member is a fresh one (Provins, through the gateway as the coordinator: application, approval, invitation of
// a member_user) so that the main journeys' member keeps its state. The session starts a few minutes after it is
// scheduled (Paris time): `prepare` (run before the main journeys) schedules it and registers the participants
// before its start; `run` (after them) records attendance once it has started, so the suite seldom waits for it.

const MEMBER_PASSWORD = 'Sessions-Solide-2026!';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

async function api(gateway, method, path, token, body) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${gateway}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: response.status, body: json };
}

async function token(gateway, email, password) {
  const answer = await api(gateway, 'POST', '/v1/auth/token', null, { email, password });
  if (answer.status !== 200) throw new Error(`login ${email}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body.access_token;
}

// The date (aaaa-mm-jj, what a date input takes) and the time (hh:mm) in Paris of `at`.
function paris(at) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('fr-FR', {
      timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
    }).formatToParts(at).map((p) => [p.type, p.value]),
  );
  return { day: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}` };
}

export async function prepare(t) {
  const { browser, base, ready, step, check, login, submit, logout, expect, eventually, text, password } = t;
  const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const memberEmail = `formation-${suffix}@provins.example.fr`;
  const found = {};

  await step('sessions : une offre de formation, une collectivité adhérente et son agent (via l’API)', async () => {
    const coordinator = await token(ready.gateway, 'coordination@id77.demo', password);
    const search = await api(ready.gateway, 'GET', '/v1/collectivities?kind=commune&q=Provins&limit=5', null);
    const provins = (search.body.items || []).find((c) => c.name === 'Provins');
    expect(provins, 'Provins in the directory');
    const applied = await api(ready.gateway, 'POST', '/v1/memberships', null, {
      siren: provins.siren, contact_name: 'Secrétariat de mairie', contact_email: `mairie-${suffix}@provins.example.fr`,
    });
    expect([200, 201].includes(applied.status), `application: ${applied.status} ${JSON.stringify(applied.body)}`);
    const approved = await api(ready.gateway, 'POST', `/v1/memberships/${applied.body.id}/approve`, coordinator);
    expect(approved.status === 200, `approval: ${approved.status} ${JSON.stringify(approved.body)}`);
    const invite = { email: memberEmail, display_name: 'Agent formation', role: 'member_user', member_id: applied.body.id };
    const invited = await api(ready.gateway, 'POST', '/v1/users', coordinator, invite);
    expect(invited.status === 201, `invitation: ${invited.status} ${JSON.stringify(invited.body)}`);
    const accepted = await api(ready.gateway, 'POST', '/v1/auth/invitations/accept', null, {
      invitation_token: invited.body.invitation_token, password: MEMBER_PASSWORD,
    });
    expect(accepted.status === 200, `activation: ${accepted.status}`);
    // The catalogue knows the member once it has read the approval (its eligibility search answers).
    const member = await token(ready.gateway, memberEmail, MEMBER_PASSWORD);
    await eventually('the catalogue to know the new member', 30000, async () => {
      const eligible = await api(ready.gateway, 'GET', '/v1/offers?eligible=true&limit=1', member);
      return eligible.status === 200;
    });
    // A training offer the member is eligible to.
    const offers = await api(ready.gateway, 'GET', '/v1/offers?category=awareness_training&eligible=true&limit=100', member);
    expect(offers.status === 200 && offers.body.items.length > 0, `training offers open to Provins: ${offers.status}`);
    found.offer = offers.body.items[0];
  });

  const context = await browser.newContext({ locale: 'fr-FR', acceptDownloads: true });
  const page = await context.newPage();
  try {
    await step('partenaire : programmer une session (erreurs, puis session créée)', async () => {
      expect(found.offer, 'a training offer');
      await login(page, base, `agent.${found.offer.provider_code}@id77.demo`, password);
      await page.goto(`${base}/sessions`);
      await check(page, 'sessions-partenaire-liste');
      await page.goto(`${base}/sessions/nouvelle?offre=${found.offer.id}`);
      await check(page, 'sessions-programmer');
      expect((await page.inputValue('#offre')) === found.offer.id, 'the offer of the link is chosen');
      await page.fill('#debut', 'neuf heures');
      await submit(page, 'form[action="/sessions/nouvelle"] button[type="submit"]');
      await page.waitForSelector('.error-summary');
      expect((await page.title()).startsWith('Erreur : '), `the title says the error: ${await page.title()}`);
      await check(page, 'sessions-programmer-erreurs');
      // Starts one to two minutes from now (whole minutes, Paris time), lasts an hour (or until 23 h 59): time
      // enough to register before it (the preparation takes ~15 s), and the main journeys take longer than that
      // before `run` records attendance.
      const start = new Date(Date.now() + 2 * 60 * 1000);
      start.setSeconds(0, 0);
      found.start = start;
      const from = paris(start);
      const until = paris(new Date(start.getTime() + 60 * 60 * 1000));
      await page.fill('#jour', from.day);
      await page.fill('#debut', from.time);
      await page.fill('#fin', until.day === from.day ? until.time : '23:59');
      await page.check('#modalite-presentiel');
      await page.selectOption('#commune', { label: 'Provins' });
      await page.fill('#adresse', `Salle du conseil ${suffix}`);
      await page.fill('#capacite', '10');
      await page.fill('#details', 'Session du parcours de test : apporter un ordinateur.');
      await Promise.all([page.waitForURL(/\/sessions\/[0-9a-f-]{36}$/), page.click('form[action="/sessions/nouvelle"] button[type="submit"]')]);
      found.session = new URL(page.url()).pathname;
      await check(page, 'sessions-session-partenaire');
      const main = await text(page, 'main');
      expect(main.includes('Provins') && main.includes('10 places restantes'), `the new session's facts: ${main.slice(0, 400)}`);
      expect(!UUID.test(main), 'no id on the session page');
      const ics = await page.request.get(`${base}${found.session}/agenda`);
      const calendar = await ics.text();
      expect(ics.status() === 200 && calendar.includes('BEGIN:VEVENT') && calendar.includes('Europe/Paris'), `the .ics download: ${ics.status()}`);
      await page.goto(`${base}/sessions`);
      expect((await page.locator(`a[href="${found.session}"]`).count()) === 1, 'the session is in « Mes sessions »');
      await logout(page);
    });

    await step('collectivité : inscrire deux participants depuis la page de l’offre', async () => {
      expect(found.session, 'a scheduled session');
      await login(page, base, memberEmail, MEMBER_PASSWORD);
      await page.goto(`${base}/offres/${found.offer.id}`);
      await check(page, 'sessions-offre');
      const register = page.locator(`a[href="${found.session}#inscription"]`);
      expect((await register.count()) === 1, 'a « S’inscrire » link to the new session');
      await Promise.all([page.waitForURL((u) => u.pathname === found.session), register.click()]);
      await check(page, 'sessions-session-membre');
      await page.fill('#nom-1', 'Marie Dupont');
      await page.fill('#fonction-1', 'Maire adjointe');
      await page.fill('#courriel-1', `marie-${suffix}@provins.example.fr`);
      await page.fill('#nom-2', 'Paul Martin');
      await submit(page, `form[action="${found.session}/inscription"] button[type="submit"]`);
      await page.waitForSelector('.error-summary');
      await check(page, 'sessions-inscription-erreurs');
      await page.fill('#fonction-2', 'Secrétaire de mairie');
      await page.fill('#courriel-2', `paul-${suffix}@provins.example.fr`);
      await submit(page, `form[action="${found.session}/inscription"] button[type="submit"]`);
      await check(page, 'sessions-inscription-confirmee');
      const confirmed = await text(page, 'main');
      expect(confirmed.includes('Inscriptions confirmées') && confirmed.includes('Marie Dupont') && confirmed.includes('Paul Martin'), `confirmation: ${confirmed.slice(0, 400)}`);
    });

    await step('collectivité : « Mes inscriptions », annulation à confirmer, adresse de l’agenda', async () => {
      await page.goto(`${base}/inscriptions`);
      await check(page, 'sessions-mes-inscriptions');
      const rows = page.locator('table tbody tr');
      const all = (await rows.allInnerTexts()).join('\n');
      expect(all.includes('Marie Dupont') && all.includes('Paul Martin') && all.includes('Confirmée'), `the registrations: ${all}`);
      const cancel = page.locator('a[href$="/annuler"]').first();
      await Promise.all([page.waitForURL(/\/inscriptions\/[0-9a-f-]+\/annuler$/), cancel.click()]);
      await check(page, 'sessions-annuler-inscription');
      await Promise.all([page.waitForURL(/\/inscriptions$/), page.click('a.button.secondary[href="/inscriptions"]')]);
      await submit(page, 'form[action="/inscriptions/agenda"] button');
      await check(page, 'sessions-agenda-adresse');
      const url = await page.inputValue('#adresse-agenda');
      expect(/\/v1\/calendar-feeds\/\S+$/.test(url), `a feed address: ${url}`);
      const feed = await fetch(url.replace(/^https?:\/\/[^/]+/, ready.gateway));
      const ics = await feed.text();
      expect(feed.status === 200 && ics.includes('BEGIN:VCALENDAR') && ics.includes('Europe/Paris'), `the feed answers: ${feed.status}`);
      await page.goto(`${base}/inscriptions`);
      await submit(page, 'form[action="/inscriptions/agenda/revoquer"] button');
      await check(page, 'sessions-agenda-revoquee');
      expect((await text(page, 'main')).includes("L'adresse de votre agenda est révoquée"), 'the feed is revoked');
      const revoked = await fetch(url.replace(/^https?:\/\/[^/]+/, ready.gateway));
      expect(revoked.status === 404, `a revoked feed is gone: ${revoked.status}`);
      await logout(page);
    });
  } finally {
    await context.close();
  }
  return { found, memberEmail };
}

export async function run(t, prepared) {
  const { browser, base, step, check, login, submit, logout, expect, text, password } = t;
  const { found, memberEmail } = prepared || {};
  const context = await browser.newContext({ locale: 'fr-FR', acceptDownloads: true });
  const page = await context.newPage();
  try {
    await step('partenaire : saisir les présences une fois la session commencée', async () => {
      expect(found.session && found.start, 'a session with registrations');
      const wait = found.start.getTime() - Date.now() + 2000;
      if (wait > 0) await page.waitForTimeout(wait);
      await login(page, base, `agent.${found.offer.provider_code}@id77.demo`, password);
      await page.goto(`${base}${found.session}`);
      await page.waitForSelector('#presences');
      await check(page, 'sessions-presences');
      const sheet = await page.request.get(`${base}${found.session}/feuille-de-presence`);
      expect(sheet.status() === 200 && (await sheet.body()).subarray(0, 4).toString() === '%PDF', `the attendance sheet: ${sheet.status()}`);
      const boxes = page.locator(`form[action="${found.session}/presences"] input[type="checkbox"]`);
      expect((await boxes.count()) === 2, `one box per confirmed participant: ${await boxes.count()}`);
      await boxes.first().check();
      await submit(page, `form[action="${found.session}/presences"] button[type="submit"]`);
      await check(page, 'sessions-presences-enregistrees');
      const main = await text(page, 'main');
      expect(main.includes('Les présences sont enregistrées : 1 participant présent.'), `the notice: ${main.slice(0, 300)}`);
      expect(main.includes('Tenue'), 'the session is held');
      await page.goto(`${base}/sessions`);
      await check(page, 'sessions-partenaire-apres');
      await logout(page);
    });

    await step('collectivité : attestation de présence et avis après la session', async () => {
      await login(page, base, memberEmail, MEMBER_PASSWORD);
      await page.goto(`${base}/inscriptions`);
      await check(page, 'sessions-mes-inscriptions-apres');
      const attestation = page.locator('a[href$="/attestation"]');
      expect((await attestation.count()) === 1, 'one attestation (one participant came)');
      const href = await attestation.getAttribute('href');
      const response = await page.request.get(`${base}${href}`);
      const body = await response.body();
      expect(response.status() === 200 && body.subarray(0, 4).toString() === '%PDF', `the attestation PDF: ${response.status()}`);
      await page.selectOption('form[action$="/avis"] select[name="note"]', '5');
      await submit(page, 'form[action$="/avis"] button[type="submit"]');
      await check(page, 'sessions-avis');
      expect((await text(page, 'main')).includes('votre avis est enregistré'), 'the rating is recorded');
    });
  } finally {
    await context.close();
  }
}
