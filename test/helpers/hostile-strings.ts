/**
 * The hostile inputs of the property-based security tests (issue #16, point 5), shared by
 * test/security/fuzz-properties.test.ts (the OAuth endpoints) and
 * test/security/fuzz-forms.test.ts (the HTML forms): full Unicode including astral planes,
 * combining marks, RTL overrides and zero-width characters, lone surrogates sent as CESU-8
 * bytes, control characters CR/LF/NUL/TAB, overlong strings, overlong UTF-8, percent- and
 * double-encodings, raw `&`/`=` that inject parameters; valid values with something hostile
 * put before, after or inside them; and markup that must come back escaped.
 *
 * Replay: FUZZ_SEED (default 16016) fixes every run; FUZZ_RUNS (default 300) is the number of
 * runs of a property (some properties run a stated fraction of it).
 */
import fc from 'fast-check';

export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 16016);
export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** what a reply must never show: a stack trace, a file path, an internal error name */
export const LEAKS = [/\n\s+at [\w.<]/, /node_modules/, /\/dist\/src\//, /\.ts:\d+/, /SqliteError|ReplyError|TypeError|ReferenceError/];

/** a value as it goes on the wire: text is UTF-8 percent-encoded; raw goes verbatim (may inject `&`, `=`, bad bytes) */
export type Value = { text: string } | { raw: string };

export function encodeText(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
export const wire = (v: Value) => ('raw' in v ? v.raw : encodeText(v.text));

export const SPECIAL_CHARS = [
  '\r', '\n', '\r\n', '\0', '\t', '\u000b', '\u001b', '\u007f', '\u0085', '\u2028', '\u202e', '\u202d', '\u200b', '\u200d', '\u2060', '\ufeff',
  '\u0301', '\u0336', '\u20dd', '\ud83d\ude00', '\u{1f1fa}\u{1f1f8}', '\u{10ffff}', '\u{e0041}', '\ud800', '\udfff', '\uffff', 'İ', 'ß', 'ﬀ', 'Ａ',
  '%', '+', '&', '=', '#', '?', '/', '\\', '@', ':', ' ', '"', "'", '<', '>', '[', ']', '.', '..',
];
/** pieces sent verbatim: encodings, double encodings, overlong and invalid UTF-8, CESU-8 surrogates, injected parameters */
export const RAW_PIECES = [
  '%00', '%0d%0a', '%0D%0ALocation:%20https://evil.example.com', '%09', '%25', '%2525', '%252F', '%2F', '%2f%2e%2e', '%C0%AF', '%C0%80', '%E0%80%AF',
  '%ED%A0%80', '%ED%BF%BF', '%FF', '%FE%FF', '%F4%90%80%80', '%', '%g0', '%E2%80%AE', '%EF%BB%BF', '+', '%2B', '&', '=', '&&', '&=', '==',
  '&client_id=web-app', '&redirect_uri=https%3A%2F%2Fevil.example.com%2Fcallback', '&grant_type=client_credentials', '&code_challenge_method=plain',
  '\r\n', '\0', '\t',
];

export const hostileText = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme-composite', maxLength: 12 }) },
  { weight: 3, arbitrary: fc.array(fc.oneof(fc.constantFrom(...SPECIAL_CHARS), fc.string({ unit: 'binary-ascii', maxLength: 4 })), { maxLength: 8 }).map((a) => a.join('')) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('a', '\u00e9', '\u{1f600}', '%41', '\u0301'), fc.integer({ min: 300, max: 20_000 })).map(([c, n]) => c.repeat(n)) },
);
export const hostileRaw = fc.array(fc.oneof(fc.constantFrom(...RAW_PIECES), fc.string({ unit: 'binary-ascii', maxLength: 6 })), { minLength: 1, maxLength: 5 }).map((a) => a.join(''));

/** a valid value with something hostile put before, after or inside it */
export function nearMiss(valid: string) {
  return fc.tuple(fc.constantFrom('prefix', 'suffix', 'middle', 'case', 'space', 'pct'), fc.oneof(fc.constantFrom(...SPECIAL_CHARS), hostileText)).map(([how, junk]) => {
    switch (how) {
      case 'prefix': return junk + valid;
      case 'suffix': return valid + junk;
      case 'middle': return valid.slice(0, valid.length >> 1) + junk + valid.slice(valid.length >> 1);
      case 'case': return valid.toUpperCase() === valid ? valid.toLowerCase() : valid.toUpperCase();
      case 'space': return ` ${valid}\t`;
      default: return encodeURIComponent(valid);
    }
  });
}

// ---- requests made of pairs -------------------------------------------------------------

export type Pair = [string, Value];
/** a valid value (or one of `extra`), often as is, else a near miss, hostile text or raw bytes */
export const valueOf = (valid: readonly string[], extra: readonly string[] = []) =>
  fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...valid, ...extra).map((t): Value => ({ text: t })) },
    { weight: 2, arbitrary: fc.constantFrom(...valid).chain(nearMiss).map((t): Value => ({ text: t })) },
    { weight: 2, arbitrary: hostileText.map((t): Value => ({ text: t })) },
    { weight: 1, arbitrary: hostileRaw.map((r): Value => ({ raw: r })) },
  );
/** each field present or not, plus up to three extra pairs: repeated, unknown or hostile names */
export const pairsFrom = (fields: Record<string, fc.Arbitrary<Value>>, names: string[]) =>
  fc.tuple(
    // the base request: each field present or not
    fc.record(Object.fromEntries(Object.entries(fields).map(([k, a]) => [k, fc.option(a, { freq: 6 })])) as Record<string, fc.Arbitrary<Value | null>>),
    // extra pairs: repeated, unknown or hostile names
    fc.array(fc.tuple(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...names) }, { weight: 1, arbitrary: hostileText }), fc.oneof(...Object.values(fields))), { maxLength: 3 }),
  ).map(([base, extra]) => {
    const pairs: Pair[] = [];
    for (const [k, v] of Object.entries(base)) if (v) pairs.push([k, v]);
    for (const [k, v] of extra) pairs.push([k, v]);
    return pairs;
  });
export const serialize = (pairs: Pair[]) => pairs.map(([k, v]) => `${encodeText(k)}=${wire(v)}`).join('&');


// ---- markup that must come back escaped -----------------------------------------------------

/**
 * Markup that breaks out of text or of an attribute, each with a marker (`xss<digits>`): a reply
 * that shows a marker right after the raw markup before it did not escape what it reflected
 * ({@link unescapedMarkup}).
 */
export const markup = fc
  .tuple(
    fc.constantFrom('<script>', '"><script>', "'><img src=x onerror=", '" autofocus onfocus="', "' onmouseover='", '</textarea><svg onload=', '<!--', '"/><a href="javascript:'),
    fc.integer({ min: 1000, max: 9999 }),
    fc.constantFrom('', 'alice', '\u202e', '\0', '\r\n'),
  )
  .map(([breakout, n, around]) => `${around}${breakout}xss${n}${around}`);

/** The raw markup of `sent` (decoded form values) that `body` shows unescaped, if any. */
export function unescapedMarkup(sent: readonly string[], body: string): string | undefined {
  for (const value of sent) {
    for (const m of value.matchAll(/(<script>|"><script>|'><img src=x onerror=|" autofocus onfocus="|' onmouseover='|<\/textarea><svg onload=|<!--|"\/><a href="javascript:)xss\d{4}/g)) {
      if (body.includes(m[0])) return m[0];
    }
  }
  return undefined;
}
