/**
 * fastai ULMFiT tokenisation, in TypeScript: fastai's rules (fix_html, replace_rep, replace_wrep,
 * spec_add_spaces, then case markers) around a spaCy-style splitter (whitespace, then prefixes,
 * suffixes, infixes and special cases, English contractions split as spaCy does: don't -> do n't,
 * can't -> ca n't, it's -> it 's). No library: spaCy's splitter is the part a library would do,
 * and no npm package reproduces it; the rules are short, and owning them keeps output identical
 * across machines and versions (the vocabulary fingerprint depends on it).
 *
 * Unicode: text is NFC-normalised, lone surrogates become U+FFFD, zero-width spaces / word
 * joiners / BOMs / soft hyphens are removed (they only hide duplicates), while ZWJ and ZWNJ stay
 * (they belong to emoji sequences and to Persian/Indic words). Emoji sequences are tokens of
 * their own; CJK runs without spaces stay one token, as with spaCy's blank English.
 */

/** fastai's special tokens, in fastai's order (their ids in every vocabulary follow it). */
export const SPECIAL_TOKENS = ["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj"] as const;
export const UNK = "xxunk";
export const PAD = "xxpad";
export const BOS = "xxbos";
export const EOS = "xxeos";
export const TK_REP = "xxrep";
export const TK_WREP = "xxwrep";
export const TK_UP = "xxup";
export const TK_MAJ = "xxmaj";

export interface TokenizerSettings {
  /** Lower-case with xxmaj / xxup markers (fastai's default). false keeps case and adds no markers. */
  caseMarkers: boolean;
  addBos: boolean;
  addEos: boolean;
  /** Longest token list kept, counting xxbos/xxeos; longer ones are cut (and counted). null: no limit. */
  maxLen: number | null;
}

/**
 * The config's default cut for a sentence, in tokens (xxbos included): far above any natural
 * sentence in the corpora here (SNLI's longest is under 100 tokens, MultiNLI's a few hundred),
 * so only broken rows (merged lines, an unclosed quote) reach it; and a batch pads to its longest
 * row, so one 5,000-token row would otherwise cost a whole batch 5,000 steps of time and memory.
 * 512 is also the cut BERT-style encoders use. LM text is a stream cut into bptt windows, not cut here.
 */
export const DEFAULT_MAX_LEN = 512;

export const DEFAULT_TOKENIZER_SETTINGS: TokenizerSettings = { caseMarkers: true, addBos: true, addEos: false, maxLen: null };

/** Bumped whenever a rule changes, so cached numericalised files are rebuilt. */
export const TOKENIZER_VERSION = 2;

export interface TokenizeStats {
  texts: number;
  tokens: number;
  /** Texts cut at maxLen, and the tokens they lost. */
  truncated: number;
  truncatedTokens: number;
}

/** Chunks (whitespace-separated pieces) seen before are looked up, not split again; bounded so memory stays flat. */
const CACHE_LIMIT = 1 << 18;

export class Tokenizer {
  readonly settings: TokenizerSettings;
  readonly stats: TokenizeStats = { texts: 0, tokens: 0, truncated: 0, truncatedTokens: 0 };
  private readonly cache = new Map<string, readonly string[]>();

  constructor(settings: Partial<TokenizerSettings> = {}) {
    this.settings = { ...DEFAULT_TOKENIZER_SETTINGS, ...settings };
    const { maxLen } = this.settings;
    if (maxLen !== null && (!Number.isInteger(maxLen) || maxLen < 1 + Number(this.settings.addBos) + Number(this.settings.addEos))) {
      throw new RangeError(`tokenizer: maxLen must be an integer large enough to hold xxbos/xxeos and a token, got ${maxLen}`);
    }
  }

  /** This tokenizer without the length cap, for language-model text: a stream cut into bptt windows, never cut per text. */
  uncapped(): Tokenizer {
    return this.settings.maxLen === null ? this : new Tokenizer({ ...this.settings, maxLen: null });
  }

  /** A stable description of everything that changes the output (for cache keys and run records). */
  fingerprintInput(): string {
    return JSON.stringify({ version: TOKENIZER_VERSION, ...this.settings });
  }

  /** Tokens of one text; an empty text gives just the markers (xxbos). */
  tokenize(text: string): string[] {
    const out: string[] = [];
    if (this.settings.addBos) out.push(BOS);
    const body = applyTextRules(text);
    let start = -1;
    // Whitespace split by hand: faster than a regex split, and the pieces go to the cache.
    for (let i = 0; i <= body.length; i++) {
      const c = i < body.length ? body.charCodeAt(i) : 32;
      const space = c === 32 || (c <= 13 && c >= 9) || (c > 127 && isSpaceCode(c));
      if (space) {
        if (start >= 0) {
          this.pushChunk(body.slice(start, i), out);
          start = -1;
        }
      } else if (start < 0) start = i;
    }
    if (this.settings.addEos) out.push(EOS);
    this.stats.texts++;
    const { maxLen } = this.settings;
    if (maxLen !== null && out.length > maxLen) {
      this.stats.truncated++;
      this.stats.truncatedTokens += out.length - maxLen;
      out.length = maxLen;
      if (this.settings.addEos) out[maxLen - 1] = EOS;
    }
    this.stats.tokens += out.length;
    return out;
  }

  private pushChunk(chunk: string, out: string[]): void {
    let toks = this.cache.get(chunk);
    if (toks === undefined) {
      toks = this.settings.caseMarkers ? markCase(splitChunk(chunk)) : splitChunk(chunk);
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(chunk, toks);
    }
    for (let k = 0; k < toks.length; k++) out.push(toks[k]);
  }
}

const SPACE_RE = /\s/u;
function isSpaceCode(c: number): boolean {
  return SPACE_RE.test(String.fromCharCode(c));
}

// ---------------------------------------------------------------------------------------------
// Text-level rules (fastai text_proc_rules, applied before splitting)

// biome-ignore lint/suspicious/noControlCharactersInRegex: every code point outside ASCII, control characters included
const NON_ASCII = /[^\x00-\x7f]/;
/** Zero-width space, word joiner, BOM, soft hyphen: invisible, removed. ZWJ (200D) / ZWNJ (200C) stay. */
const INVISIBLE = /[\u200b\u2060\ufeff\u00ad]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const HTML_HINT = /[&#<@\\]|quot;|nbsp;|amp;/;
const REP = /(\S)(\1{2,})/gu;
const WREP = /(?:\s|^)([\p{L}\p{N}_]+)\s+((?:\1\s+)+)\1(\s|[^\p{L}\p{N}_]|$)/gu;
const SPEC = /([/#])/g;

export function applyTextRules(text: string): string {
  let t = text;
  if (NON_ASCII.test(t)) t = t.replace(LONE_SURROGATE, "\ufffd").normalize("NFC").replace(INVISIBLE, "");
  if (HTML_HINT.test(t)) t = fixHtml(t);
  if (t.length > 2) {
    t = t.replace(REP, (_m, c: string, cc: string) => ` ${TK_REP} ${countCodePoints(cc) / countCodePoints(c) + 1} ${c} `);
    if (t.indexOf(" ") >= 0) t = t.replace(WREP, (_m, w: string, ws: string, e: string) => ` ${TK_WREP} ${ws.trim().split(/\s+/u).length + 2} ${w} ${e}`);
  }
  if (t.indexOf("/") >= 0 || t.indexOf("#") >= 0) t = t.replace(SPEC, " $1 ");
  return t;
}

function countCodePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

const ENTITIES = new Map([
  ["amp", "&"],
  ["lt", "<"],
  ["gt", ">"],
  ["quot", '"'],
  ["apos", "'"],
  ["nbsp", " "],
]);

/** fastai's fix_html: HTML debris and WikiText's @-@ / @,@ / @.@ / <unk> markers. */
export function fixHtml(text: string): string {
  // Real entities first (fastai's bare "amp;" replacement would turn "&amp;" into "&&").
  const decoded = text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (m, ref: string) => {
    if (ref[0] === "#") {
      const cp = ref[1] === "x" || ref[1] === "X" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return ENTITIES.get(ref) ?? m;
  });
  // Then the debris of entities whose "&" was lost, and WikiText's markers (fastai's list).
  return decoded
    .replaceAll("#39;", "'")
    .replaceAll("amp;", "&")
    .replaceAll("#146;", "'")
    .replaceAll("nbsp;", " ")
    .replaceAll("#36;", "$")
    .replaceAll("\\n", "\n")
    .replaceAll("quot;", "'")
    .replaceAll("<br />", "\n")
    .replaceAll('\\"', '"')
    .replaceAll("<unk>", UNK)
    .replaceAll(" @.@ ", ".")
    .replaceAll(" @,@ ", ",")
    .replaceAll(" @-@ ", "-")
    .replaceAll("\\", " \\ ");
}

// ---------------------------------------------------------------------------------------------
// Case markers (fastai replace_all_caps, replace_maj, lowercase)

/** ALL CAPS (2+ characters) -> xxup word; Capitalised (first upper, no other upper) -> xxmaj word. */
export function markCase(tokens: readonly string[]): string[] {
  const out: string[] = [];
  for (const t of tokens) {
    const lower = t.toLowerCase();
    if (lower === t) {
      out.push(t);
      continue;
    }
    const first = String.fromCodePoint(t.codePointAt(0)!);
    const rest = t.slice(first.length);
    if (rest.length > 0 && t.toUpperCase() === t) out.push(TK_UP, lower);
    else if (first.toLowerCase() !== first && rest.toLowerCase() === rest) out.push(TK_MAJ, lower);
    else out.push(lower);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The spaCy-style splitter for one whitespace-free chunk

/** Kept whole, as spaCy's English tokenizer exceptions do (abbreviations, emoticons, clitics alone). */
const SPECIAL_CASES = new Set([
  "'s",
  "'S",
  "’s",
  "’S",
  "'m",
  "'M",
  "’m",
  "'re",
  "’re",
  "'ve",
  "’ve",
  "'ll",
  "’ll",
  "'d",
  "’d",
  "n't",
  "N'T",
  "n’t",
  "Mr.",
  "Mrs.",
  "Ms.",
  "Dr.",
  "Prof.",
  "St.",
  "Jr.",
  "vs.",
  "Inc.",
  "Ltd.",
  "Co.",
  "Corp.",
  "Gov.",
  "Sen.",
  "Rep.",
  "Rev.",
  "Gen.",
  "Mt.",
  "a.m.",
  "p.m.",
  "e.g.",
  "i.e.",
  "Jan.",
  "Feb.",
  "Mar.",
  "Apr.",
  "Aug.",
  "Sep.",
  "Sept.",
  "Oct.",
  "Nov.",
  "Dec.",
  "Ala.",
  "Ariz.",
  "Ark.",
  "Calif.",
  "Colo.",
  "Conn.",
  "Del.",
  "Fla.",
  "Ga.",
  "Ill.",
  "Ind.",
  "Kan.",
  "Ky.",
  "La.",
  "Md.",
  "Mass.",
  "Mich.",
  "Minn.",
  "Miss.",
  "Mo.",
  "Neb.",
  "Nev.",
  "Okla.",
  "Ore.",
  "Pa.",
  "Tenn.",
  "Va.",
  "Vt.",
  "Wash.",
  "Wis.",
  "'em",
  "'n'",
  "o'clock",
  "ma'am",
  "y'all",
  "''",
  "``",
  "and/or",
  ":)",
  ":-)",
  ":(",
  ":-(",
  ";)",
  ";-)",
  ":D",
  ":P",
  ":p",
  ":o",
  ":/",
  "<3",
  "=)",
  "(:",
  "):",
  ":')",
  "xD",
  "XD",
  "^_^",
  "-_-",
]);
/** Whole-chunk splits from spaCy's exceptions. */
const SPLIT_CASES = new Map<string, readonly string[]>([
  ["cannot", ["can", "not"]],
  ["Cannot", ["Can", "not"]],
  ["gonna", ["gon", "na"]],
  ["Gonna", ["Gon", "na"]],
  ["gotta", ["got", "ta"]],
  ["Gotta", ["Got", "ta"]],
]);

const PLAIN_WORD = /^[\p{L}\p{M}\p{N}]+$/u;
const URL_LIKE = /^(?:(?:https?|ftp):\/\/|www\.)[^\s]+$|^[\w.+-]+@[\w-]+\.[\w.-]+$/u;
const EMOJI_SEQ =
  /\p{Extended_Pictographic}(?:\p{Emoji_Modifier}|\ufe0f|\u20e3|\u200d\p{Extended_Pictographic}(?:\p{Emoji_Modifier}|\ufe0f)?)*|\p{Regional_Indicator}{2}/gu;
const HAS_EMOJI = /\p{Extended_Pictographic}|\p{Regional_Indicator}/u;
/** Prefix / suffix punctuation: all punctuation and symbols except those that belong to words or numbers. */
const AFFIX = /^[\p{P}\p{S}]$/u;
const NOT_PREFIX = new Set(["_", "@", "-", ".", "/", "\\", "~", "^", "|", "+"]);
const NOT_SUFFIX = new Set(["_", "@", "-", ".", "/", "\\", "~", "^", "|", "+", "$", "£", "€", "¥", "#"]);
const ELLIPSIS_START = /^(?:\.{2,}|…+|''|``)/;
const ALL_DOTS = /^(?:\.{2,}|…+)$/;
/** Dropped g (goin', nothin'): one token, as in spaCy's exceptions. */
const DROPPED_G = /^\p{L}+in'$/iu;
/** Contractions written without the apostrophe (dont, cant, im): split as spaCy does. */
const NO_APOSTROPHE = /^(do|does|did|is|are|was|were|has|have|had|could|should|would|must|need|ca|wo|ai)(nt)$|^(i)(m)$/i;
const ELLIPSIS_END = /(?:\.{2,}|…+|''|``)$/;
/** Clitic at the end of a word: it's, I'm, they're, we've, she'll, he'd, don't (spaCy's English exceptions, generalised). */
const CLITIC = /^(.*?[\p{L}\p{N}.])((?:['’](?:[sSdDmM]|ll|LL|re|RE|ve|VE))|(?:[nN]['’][tT]))$/u;
/** A period stays on abbreviations and initials: U.S., e.g., J. */
const DOTTED = /^(?:\p{L}\.)+$/u;
/** Infixes: hyphens/dashes between letters, ellipses, a comma between letters, :<>= between alphanumerics and a letter, +-*^ between digits. */
const INFIX = /(?<=[\p{L}\p{N}])(?:--+|[-–—~])(?=[\p{L}])|\.{2,}|…|(?<=\p{L}),(?=\p{L})|(?<=[\p{L}\p{N}])[:<>=/](?=\p{L})|(?<=\p{N})[-+*^](?=[\p{N}-])/gu;

export function splitChunk(chunk: string): string[] {
  if (PLAIN_WORD.test(chunk)) {
    const s = SPLIT_CASES.get(chunk);
    if (s) return [...s];
    const m = chunk.length <= 6 ? NO_APOSTROPHE.exec(chunk) : null;
    return m ? (m[1] ? [m[1], m[2]] : [m[3], m[4]]) : [chunk];
  }
  if (SPECIAL_CASES.has(chunk) || URL_LIKE.test(chunk) || ALL_DOTS.test(chunk) || DROPPED_G.test(chunk)) return [chunk];
  if (HAS_EMOJI.test(chunk)) return splitAroundEmoji(chunk);
  const head: string[] = [];
  const tail: string[] = [];
  let rest = chunk;
  // Prefixes, one at a time, stopping as soon as what is left is a special case.
  for (;;) {
    if (rest === "" || SPECIAL_CASES.has(rest)) break;
    const ell = ELLIPSIS_START.exec(rest);
    if (ell && ell[0].length < rest.length) {
      head.push(ell[0]);
      rest = rest.slice(ell[0].length);
      continue;
    }
    const c = firstChar(rest);
    if (c.length < rest.length && AFFIX.test(c) && !NOT_PREFIX.has(c)) {
      head.push(c);
      rest = rest.slice(c.length);
      continue;
    }
    break;
  }
  // Suffixes, innermost last.
  for (;;) {
    if (rest === "" || SPECIAL_CASES.has(rest) || URL_LIKE.test(rest) || DROPPED_G.test(rest)) break;
    const ell = ELLIPSIS_END.exec(rest);
    if (ell && ell[0].length < rest.length) {
      tail.push(ell[0]);
      rest = rest.slice(0, rest.length - ell[0].length);
      continue;
    }
    const c = lastChar(rest);
    if (c.length < rest.length) {
      if (c === ".") {
        if (DOTTED.test(rest)) break;
        tail.push(c);
        rest = rest.slice(0, -1);
        continue;
      }
      if (AFFIX.test(c) && !NOT_SUFFIX.has(c)) {
        tail.push(c);
        rest = rest.slice(0, rest.length - c.length);
        continue;
      }
    }
    const clitic = CLITIC.exec(rest);
    if (clitic) {
      tail.push(clitic[2]);
      rest = clitic[1];
      continue;
    }
    break;
  }
  const out = head;
  if (rest !== "") {
    const split = SPLIT_CASES.get(rest);
    if (split) out.push(...split);
    else if (SPECIAL_CASES.has(rest) || URL_LIKE.test(rest) || ALL_DOTS.test(rest)) out.push(rest);
    else splitInfixes(rest, out);
  }
  for (let i = tail.length - 1; i >= 0; i--) out.push(tail[i]);
  return out;
}

function splitInfixes(s: string, out: string[]): void {
  INFIX.lastIndex = 0;
  let last = 0;
  for (let m = INFIX.exec(s); m !== null; m = INFIX.exec(s)) {
    if (m.index === 0 || m.index + m[0].length === s.length) continue; // an infix needs text on both sides
    if (m.index > last) out.push(s.slice(last, m.index));
    out.push(m[0]);
    last = m.index + m[0].length;
  }
  if (last < s.length) out.push(s.slice(last));
}

function splitAroundEmoji(chunk: string): string[] {
  const out: string[] = [];
  let last = 0;
  EMOJI_SEQ.lastIndex = 0;
  for (let m = EMOJI_SEQ.exec(chunk); m !== null; m = EMOJI_SEQ.exec(chunk)) {
    if (m.index > last) out.push(...splitChunk(chunk.slice(last, m.index)));
    out.push(m[0]);
    last = m.index + m[0].length;
  }
  if (last < chunk.length) out.push(...splitChunk(chunk.slice(last)));
  return out;
}

function firstChar(s: string): string {
  const c = s.charCodeAt(0);
  return c >= 0xd800 && c <= 0xdbff && s.length > 1 ? s.slice(0, 2) : s[0];
}

function lastChar(s: string): string {
  const c = s.charCodeAt(s.length - 1);
  return c >= 0xdc00 && c <= 0xdfff && s.length > 1 ? s.slice(-2) : s[s.length - 1];
}

// ---------------------------------------------------------------------------------------------
// Back to text

/**
 * Readable text of a token list (e.g. what a language model generated): xxmaj / xxup applied to
 * the next word, xxrep / xxwrep expanded, other special tokens (xxbos, xxeos, xxpad, xxfld, xxunk)
 * dropped; words joined by spaces, so `tokenize(detokenize(t))` gives t back (up to dropped tokens).
 */
export function detokenize(tokens: readonly string[]): string {
  const words: string[] = [];
  let marker: typeof TK_MAJ | typeof TK_UP | null = null;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === TK_MAJ || t === TK_UP) {
      marker = t;
      continue;
    }
    if ((t === TK_REP || t === TK_WREP) && i + 2 < tokens.length && /^\d+$/.test(tokens[i + 1])) {
      const n = Number(tokens[i + 1]);
      const what = withCase(tokens[i + 2], marker);
      words.push(t === TK_REP ? what.repeat(n) : Array.from({ length: n }, () => what).join(" "));
      marker = null;
      i += 2;
      continue;
    }
    if (SPECIAL.has(t) || OOV_BUCKET.test(t)) continue;
    words.push(withCase(t, marker));
    marker = null;
  }
  return words.join(" ");
}

const SPECIAL: ReadonlySet<string> = new Set(SPECIAL_TOKENS);
/** An out-of-vocabulary bucket's token (ts/data/vocab.ts): a hashed unseen word, no text to write back. */
const OOV_BUCKET = /^xxoov\d+$/u;

function withCase(word: string, marker: typeof TK_MAJ | typeof TK_UP | null): string {
  if (word === "") return word;
  if (marker === TK_UP) return word.toUpperCase();
  if (marker === TK_MAJ) {
    const first = String.fromCodePoint(word.codePointAt(0)!);
    return first.toUpperCase() + word.slice(first.length);
  }
  return word;
}
