// The portal's bar, as checks on a page's visible text (pure functions; run.mjs applies them to every checked page
// at every width, bar.test.mjs tests them): no identifier, code or English word that a French reader should not
// see, no time in UTC nor ISO 8601 date.
//
// `findings(text, context)` answers a list of French sentences, one per problem (empty when the page is fine).
// context: { providers: [code...], epciSirens: Set of SIRENs, statistics: bool, ignore: [strings of the test's
// own data to leave out, e.g. its run id] }.

// Letters, digits, '_' and '-' make one token: « auto-école » is not « auto », « dir-routes » is one code.
const WORD = '[\\p{L}\\p{N}_-]';
function wholeWord(word, flags = 'u') {
  const escaped = word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<!${WORD})${escaped}(?!${WORD})`, flags);
}

// English words with no place on a French page (whole words, any case). Words that are also French (« on »,
// « or », « a », « active », « commune », « agent », « page »...) are left out on purpose.
export const ENGLISH_WORDS = [
  'referred', 'accepted', 'declined', 'submitted', 'pending', 'invalid', 'request', 'requests', 'provider',
  'providers', 'offer', 'offers', 'auto', 'default', 'rule', 'rules', 'the', 'by', 'of', 'is', 'and', 'with',
  'from', 'for', 'not', 'none', 'null', 'undefined', 'true', 'false', 'NaN', 'status', 'draft', 'completed',
  'cancelled', 'canceled', 'withdrawn', 'refused', 'rejected', 'approved', 'closed', 'paid', 'issued', 'overdue',
  'quote', 'quotes', 'invoice', 'invoices', 'member', 'members', 'user', 'users', 'error', 'unknown', 'flat',
  'hourly', 'free', 'per', 'loan', 'exhibition', 'coordinator', 'operator', 'settings', 'dashboard', 'login',
  'logout', 'password', 'search', 'submit', 'save', 'cancel', 'delete', 'edit', 'next', 'previous', 'home', 'back',
  'progress', 'deadline', 'assigned', 'unassigned', 'expired', 'yes',
];

const ENGLISH_PATTERNS = ENGLISH_WORDS.map((word) => [word, wholeWord(word, 'iu')]);
const PATTERNS = new Map();
function cached(code) {
  if (!PATTERNS.has(code)) PATTERNS.set(code, wholeWord(code));
  return PATTERNS.get(code);
}

// Proper nouns and brands that contain one of those words as a token (removed from the text before the check).
export const ALLOWED_PHRASES = [];

// Provider codes that are common French words: seen as a whole word, they would be read as French, not as a code.
const COMMON_WORDS = new Set(['eau', 'routes', 'culture', 'numerique', 'environnement', 'archives', 'energie']);

export function providerCodesToCheck(codes) {
  const kept = [];
  const skipped = [];
  for (const code of codes) (COMMON_WORDS.has(code.toLowerCase()) || code.length < 3 ? skipped : kept).push(code);
  return { kept, skipped };
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
// An 8-hex-digit token (an id prefix such as « Orientation 01a24bb4 »): letters and digits around it, or a '-' after
// it, make it part of something else; it must hold at least one digit and one letter (not a number, not a word).
const HEX8 = /(?<![\p{L}\p{N}_])[0-9a-f]{8}(?![\p{L}\p{N}_])/giu;
const EMAIL = /[^\s@<>«»()]+@[^\s@<>«»()]+\.[^\s@<>«»().,;:]+/g;
const URL_TEXT = /\bhttps?:\/\/\S+/g;
const SIREN_EPCI = /(?<![\p{N}])2\d{2}(?: ?\d{3}){2}(?![\p{N}])/gu;
const ARRONDISSEMENT = /(?<![\p{L}\p{N}_-])77[1-5](?![\p{L}\p{N}_-])/gu;
const ISO_DATE = /(?<![\p{N}])\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?![\p{N}])/gu;
const ZULU = /\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z(?![\p{L}\p{N}])/gu;
const UTC = /(?<![\p{L}\p{N}])UTC(?![\p{L}\p{N}])/gu;
const SNAKE = /(?<![\p{L}\p{N}_./-])[a-z]+(?:_[a-z0-9]+)+(?![\p{L}\p{N}_])/gu;

function quote(values) {
  return [...new Set(values)].slice(0, 5).map((v) => `« ${v} »`).join(', ');
}

// The visible text without what a page may show on purpose: e-mail addresses, URLs, the test's own data.
export function cleanText(text, ignore = []) {
  let out = text.replace(EMAIL, ' ').replace(URL_TEXT, ' ');
  for (const value of ignore) if (value) out = out.split(value).join(' ');
  for (const phrase of ALLOWED_PHRASES) out = out.split(phrase).join(' ');
  return out;
}

export function findings(rawText, context = {}) {
  const { providers = [], epciSirens = new Set(), statistics = false, ignore = [] } = context;
  const text = cleanText(rawText, ignore);
  const out = [];
  const uuids = text.match(UUID) || [];
  if (uuids.length) out.push(`identifiant (UUID) visible : ${quote(uuids)}`);
  const rest = text.replace(UUID, ' ');
  const hex = (rest.match(HEX8) || []).filter((t) => /\d/.test(t) && /[a-f]/i.test(t));
  if (hex.length) out.push(`début d'identifiant (8 chiffres hexadécimaux) visible : ${quote(hex)}`);
  const codes = providers.filter((code) => cached(code).test(rest));
  if (codes.length) out.push(`code de partenaire brut visible : ${quote(codes)}`);
  const sirens = (rest.match(SIREN_EPCI) || []).filter((s) => epciSirens.has(s.replace(/ /g, '')));
  if (sirens.length) out.push(`SIREN d'EPCI brut visible : ${quote(sirens)}`);
  if (statistics) {
    const arrondissements = rest.match(ARRONDISSEMENT) || [];
    if (arrondissements.length) out.push(`code d'arrondissement seul : ${quote(arrondissements)}`);
  }
  const english = ENGLISH_PATTERNS.filter(([, pattern]) => pattern.test(rest)).map(([word]) => word);
  if (english.length) out.push(`mot anglais : ${quote(english)}`);
  const snake = rest.match(SNAKE) || [];
  if (snake.length) out.push(`code brut (snake_case) visible : ${quote(snake)}`);
  const utc = [...(rest.match(UTC) || []), ...(rest.match(ZULU) || [])];
  if (utc.length) out.push(`heure en UTC : ${quote(utc)}`);
  const iso = rest.match(ISO_DATE) || [];
  if (iso.length) out.push(`date au format ISO 8601 : ${quote(iso)}`);
  return out;
}
