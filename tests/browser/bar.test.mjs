// Tests of bar.mjs, the visible-text checks every browser check applies (node --test tests/browser/bar.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findings, providerCodesToCheck } from './bar.mjs';

const ctx = { providers: ['dir-routes', 'caue77', 'sdesm'], epciSirens: new Set(['200072130']) };
const one = (text, extra = {}) => findings(text, { ...ctx, ...extra });

test('a clean French page has no finding', () => {
  const page = `Bienvenue sur ID 77. Direction des routes du Département — SDESM, CAUE 77.
  Demande déposée le 6 décembre 2026 à 14 h 05. Montant TTC 1 200,00 €. SIREN de Meaux : 217702844.
  Auto-école, thé, l'offre « Voirie », 12345678, abcdefab, deadbeef. Contact : agent.sdesm@id77.demo`;
  assert.deepEqual(one(page), []);
});

test('UUIDs and 8-hex id prefixes are found, numbers and words are not', () => {
  assert.match(one('Demande 0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b')[0], /UUID/);
  assert.match(one('Orientation 01a24bb4 en attente')[0], /01a24bb4/);
  assert.match(one('Orientation 01A24BB4.')[0], /01A24BB4/);
  assert.deepEqual(one('Dossier 20261206 et cafebabe'), []);
  assert.deepEqual(one('Objet EJ-01a24bb4', { ignore: ['01a24bb4'] }), []);
});

test('provider codes are found as whole words only, case-sensitive', () => {
  assert.match(one('Partenaire : dir-routes')[0], /dir-routes/);
  assert.match(one('Orientée vers caue77.')[0], /caue77/);
  assert.deepEqual(one('Partenaire : SDESM — Syndicat départemental'), []);
  assert.deepEqual(one('Partenaire : dir-routes-nord'), []);
  assert.deepEqual(providerCodesToCheck(['eau', 'dir-eau', 'ab']), { kept: ['dir-eau'], skipped: ['eau', 'ab'] });
});

test('EPCI SIRENs and arrondissement codes', () => {
  assert.match(one('Collectivité 200072130')[0], /SIREN/);
  assert.match(one('Collectivité 200 072 130')[0], /SIREN/);
  assert.deepEqual(one('Collectivité 217702844 et 2000721300'), []);
  assert.match(one('Arrondissement 771 : 4 demandes', { statistics: true })[0], /771/);
  assert.deepEqual(one('Arrondissement 771 : 4 demandes'), []);
  assert.deepEqual(one('Meaux (77100) : 771 €'.replace('771 €', '7710'), { statistics: true }), []);
});

test('English words, whole words, any case; French look-alikes pass', () => {
  assert.match(one('Statut : pending')[0], /pending/);
  assert.match(one('Status: Accepted by the provider')[0], /accepted.*by.*the|status/i);
  assert.deepEqual(one('Une auto-école a offert le thé ; statut acceptée, invalide, règle, offre.'), []);
  assert.match(one('Tarif : flat')[0], /flat/);
  assert.match(one('Catégorie : exhibition_loan')[0], /exhibition_loan|exhibition/);
});

test('UTC, Z-suffixed times and ISO 8601 dates', () => {
  assert.match(one('Reçue le 6 décembre 2026 à 13:05 UTC')[0], /UTC/);
  assert.match(one('Reçue 2026-12-06T13:05:00Z')[0], /UTC|ISO/);
  assert.match(one('Échéance 2026-12-06')[0], /ISO/);
  assert.deepEqual(one('Facture F-2026-000123, n° 2026-12-0001'), []);
});
