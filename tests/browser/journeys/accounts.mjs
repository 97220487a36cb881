// Accounts journey: a user who forgot its password asks for a link on the sign-in page, opens the link of the
// mail caught by the local SMTP sink (run.sh writes each mail to `ready.mail`/<n>.eml), chooses a new password
// and signs in with it; the old one no longer works.
//
// The account is a fresh one (a referent invited by the operator through the gateway), so that the demo accounts
// the other journeys use keep their password.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const NEW_PASSWORD = 'Nouveau-Secret-2026!';

async function api(gateway, method, path, token, body) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${gateway}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

// The text of a raw mail: headers unfolded, the body decoded (quoted-printable or base64).
function decodeMail(raw) {
  const split = raw.search(/\r?\n\r?\n/);
  const head = raw.slice(0, split).replace(/\r?\n[ \t]+/g, ' ');
  let body = raw.slice(split).trim();
  const encoding = (head.match(/^content-transfer-encoding:\s*(\S+)/im) || [])[1]?.toLowerCase();
  if (encoding === 'base64') {
    body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  } else if (encoding === 'quoted-printable') {
    const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16)));
    body = Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return { head, body };
}

// The mails of the sink sent to `to`, oldest first.
function mailsTo(dir, to) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.eml'))
    .sort((a, b) => parseInt(a, 10) - parseInt(b, 10))
    .map((f) => decodeMail(readFileSync(join(dir, f), 'utf8')))
    .filter((m) => new RegExp(`^to:.*${to.replace(/[.+]/g, '\\$&')}`, 'im').test(m.head));
}

export async function run(t) {
  const { browser, base, ready, step, check, login, submit, expect, eventually, text, password } = t;
  if (!ready.mail) {
    console.log('accounts journey skipped: the mails go to a real relay (no local SMTP sink folder)');
    return;
  }
  const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const email = `oubli-${suffix}@id77.demo`;
  const firstPassword = 'Premier-Secret-2026!';

  await step('compte : créer un compte de test (invitation par l’opérateur, via l’API)', async () => {
    const operator = await api(ready.gateway, 'POST', '/v1/auth/token', null, { email: 'operateur@id77.demo', password });
    expect(operator.status === 200, `operator login: ${operator.status}`);
    const invite = { email, display_name: 'Agent de test', role: 'referent' };
    const invited = await api(ready.gateway, 'POST', '/v1/users', operator.body.access_token, invite);
    expect(invited.status === 201, `invitation: ${invited.status} ${JSON.stringify(invited.body)}`);
    const accept = { invitation_token: invited.body.invitation_token, password: firstPassword };
    const accepted = await api(ready.gateway, 'POST', '/v1/auth/invitations/accept', null, accept);
    expect(accepted.status === 200, `activation: ${accepted.status}`);
  });

  const context = await browser.newContext({ locale: 'fr-FR' });
  const page = await context.newPage();
  try {
    await step('mot de passe oublié : demander un lien depuis la page de connexion', async () => {
      await page.goto(`${base}/connexion`);
      await Promise.all([page.waitForURL(/\/mot-de-passe\/oublie$/), page.click('a[href="/mot-de-passe/oublie"]')]);
      await check(page, 'mot-de-passe-oublie');
      await page.fill('#email', email);
      await submit(page, 'form[action="/mot-de-passe/oublie"] button[type="submit"]');
      expect((await text(page, 'main')).includes('Si un compte existe pour cette adresse'), 'the one answer is shown');
      await check(page, 'mot-de-passe-oublie-envoye');
    });

    let link = null;
    await step('mot de passe oublié : ouvrir le lien du courriel et choisir un nouveau mot de passe', async () => {
      link = await eventually('the reset mail in the SMTP sink', 30000, async () => {
        const mail = mailsTo(ready.mail, email).find((m) => /Nouveau mot de passe ID 77/.test(m.head));
        const found = mail && mail.body.match(/https?:\/\/\S+\/mot-de-passe\/nouveau\?jeton=[A-Za-z0-9_%-]+/);
        return found ? found[0] : null;
      });
      const url = new URL(link);
      await page.goto(`${base}${url.pathname}${url.search}`);
      expect((await page.locator('input[type="hidden"][name="jeton"]').count()) === 1, 'the code of the link is hidden');
      await check(page, 'mot-de-passe-nouveau');
      await page.fill('#password', NEW_PASSWORD);
      await page.fill('#confirmation', 'autre chose');
      await submit(page, 'form[action="/mot-de-passe/nouveau"] button[type="submit"]');
      await page.waitForSelector('.error-summary');
      await check(page, 'mot-de-passe-nouveau-erreurs');
      await page.fill('#password', NEW_PASSWORD);
      await page.fill('#confirmation', NEW_PASSWORD);
      await Promise.all([page.waitForURL(/\/connexion/), page.click('form[action="/mot-de-passe/nouveau"] button[type="submit"]')]);
      expect((await text(page, 'main')).includes('nouveau mot de passe est enregistré'), 'the confirmation is shown');
    });

    await step('mot de passe oublié : se connecter avec le nouveau mot de passe, plus avec l’ancien', async () => {
      await page.fill('#email', email);
      await page.fill('#password', firstPassword);
      await submit(page, 'form[action="/connexion"] button[type="submit"]');
      expect(new URL(page.url()).pathname.startsWith('/connexion'), 'the old password is refused');
      await login(page, base, email, NEW_PASSWORD);
      expect(!new URL(page.url()).pathname.startsWith('/connexion'), 'signed in with the new password');
      await check(page, 'connecte-apres-nouveau-mot-de-passe');
      // The link works once.
      const url = new URL(link);
      const again = await api(ready.gateway, 'POST', '/v1/auth/password-reset/confirm', null, {
        token: decodeURIComponent(url.searchParams.get('jeton')),
        password: 'Encore-Autre-2026!',
      });
      expect(again.status === 404, `a used link is gone: ${again.status}`);
    });
  } finally {
    await context.close();
  }
}
