import { test } from "uvu";
import * as assert from "uvu/assert";
import { detokenize, splitChunk, Tokenizer } from "../../ts/data/tokenize.js";

const tok = (s: string, settings: ConstructorParameters<typeof Tokenizer>[0] = {}) => new Tokenizer(settings).tokenize(s).join(" ");

test("case markers: xxmaj for Capitalised, xxup for ALL CAPS, lower-cased; xxbos first", () => {
  assert.is(tok("Hello World"), "xxbos xxmaj hello xxmaj world");
  assert.is(tok("THIS is BIG"), "xxbos xxup this is xxup big");
  assert.is(tok("I saw A cat"), "xxbos xxmaj i saw xxmaj a cat");
  assert.is(tok("McDonald"), "xxbos mcdonald"); // mixed case: lower-cased, no marker (fastai's rule)
  assert.is(tok("Hello", { caseMarkers: false }), "xxbos Hello");
  assert.is(tok("hi", { addEos: true }), "xxbos hi xxeos");
  assert.is(tok("hi", { addBos: false }), "hi");
});

test("repetitions: xxrep for 3+ characters, xxwrep for 3+ repeated words", () => {
  assert.is(tok("sooo good!!!"), "xxbos s xxrep 3 o good xxrep 3 !");
  assert.is(tok("this is is is it"), "xxbos this xxwrep 3 is it");
  assert.is(tok("no no"), "xxbos no no");
  assert.is(tok("😀😀😀"), "xxbos xxrep 3 😀"); // counts code points, not UTF-16 units
});

test("English contractions split as spaCy does", () => {
  assert.is(tok("don't can't won't it's I'm they'll we've he'd"), "xxbos do n't ca n't wo n't it 's xxmaj i 'm they 'll we 've he 'd");
  assert.is(tok("isn’t John’s"), "xxbos is n’t xxmaj john ’s");
  assert.is(tok("cannot gonna"), "xxbos can not gon na");
  assert.is(tok("a man 's hat"), "xxbos a man 's hat"); // SentEval-tokenised text stays as it is
});

test("punctuation: prefixes, suffixes, infixes, abbreviations", () => {
  assert.is(tok('"Hello," she said.'), 'xxbos " xxmaj hello , " she said .');
  assert.is(tok("(really) well-known end."), "xxbos ( really ) well - known end .");
  assert.is(tok("The U.S. and e.g. Mr. Smith"), "xxbos xxmaj the xxup u.s. and e.g. xxmaj mr. xxmaj smith");
  assert.is(tok("$5 (50%) 3.5 10-20"), "xxbos $ 5 ( 50 % ) 3.5 10 - 20");
  assert.is(tok("wait... what?!"), "xxbos wait xxrep 3 . what ? !");
  assert.is(tok("a/b #tag"), "xxbos a / b # tag");
  assert.equal(splitChunk("hello..."), ["hello", "..."]);
  assert.equal(splitChunk("me@example.com"), ["me@example.com"]);
});

test("spaCy's splits for hyphens after digits, state abbreviations, dropped g, missing apostrophes", () => {
  const split = (s: string) =>
    s
      .split(" ")
      .flatMap((c) => splitChunk(c))
      .join(" ");
  assert.is(split("a 10-year-old boy"), "a 10 - year - old boy");
  assert.is(split("Austin, Tex. and Sacramento, Calif."), "Austin , Tex . and Sacramento , Calif.");
  assert.is(split("goin' home"), "goin' home");
  assert.is(split("I dont know, im sure"), "I do nt know , i m sure");
  assert.is(split("the U.N.'s plan..."), "the U.N. 's plan ...");
  assert.is(split("mg/l and/or"), "mg / l and/or");
  assert.is(split("''Quoted''"), "'' Quoted ''");
});

test("fix_html and WikiText markers", () => {
  assert.is(tok("Tom &amp; Jerry quot;hiquot; <br />x"), "xxbos xxmaj tom & xxmaj jerry ' hi ' x");
  assert.is(tok("a @-@ b 1 @.@ 5 <unk>"), "xxbos a - b 1.5 xxunk");
  assert.is(tok("caf&#233;"), "xxbos café");
});

test("Unicode: accents, NFC, CJK, RTL, emoji, zero-width characters, lone surrogates", () => {
  assert.is(tok("Café ÉCOLE naïve"), "xxbos xxmaj café xxup école naïve");
  assert.is(tok("Cafe\u0301"), tok("Café")); // decomposed and composed forms give the same tokens
  assert.is(tok("東京は大きい"), "xxbos 東京は大きい");
  assert.is(tok("שלום, עולם"), "xxbos שלום , עולם");
  assert.is(tok("hi😀there 👍🏽 👨‍👩‍👧 🇫🇷!"), "xxbos hi 😀 there 👍🏽 👨‍👩‍👧 🇫🇷 !");
  assert.is(tok("zero\u200bwidth\ufeff"), "xxbos zerowidth");
  assert.is(tok("a\u00a0b\u2003c"), "xxbos a b c");
  assert.is(tok("bad\ud800x"), "xxbos bad\ufffdx");
  assert.is(tok("مي\u200cخواهم"), "xxbos مي\u200cخواهم"); // ZWNJ is part of Persian words: kept
});

test("empty and blank strings give just the markers", () => {
  assert.is(tok(""), "xxbos");
  assert.is(tok("   \t\n"), "xxbos");
  assert.is(tok("", { addEos: true }), "xxbos xxeos");
});

test("max_len truncation is explicit and counted, keeping xxeos", () => {
  const t = new Tokenizer({ maxLen: 4, addEos: true });
  assert.equal(t.tokenize("one two three four five"), ["xxbos", "one", "two", "xxeos"]);
  assert.equal(t.tokenize("one"), ["xxbos", "one", "xxeos"]);
  assert.equal(t.stats, { texts: 2, tokens: 7, truncated: 1, truncatedTokens: 3 });
  assert.throws(() => new Tokenizer({ maxLen: 1, addBos: true }), /maxLen/);
});

test("deterministic: same output with a warm cache, a cold one, and no shared state", () => {
  const text = "The quick brown Fox's JUMPS... over 3 lazy dogs!!! 😀";
  const a = new Tokenizer();
  const first = a.tokenize(text);
  assert.equal(a.tokenize(text), first);
  assert.equal(new Tokenizer().tokenize(text), first);
  assert.ok(!first.some((t) => t === "" || /\s/u.test(t)));
});

test("detokenize: case markers and repetitions undone, markers dropped; round trip through tokenize", () => {
  const tok = new Tokenizer();
  const text = "The CAT sat!!!! on the mat mat mat mat. McDonald's is in the U.S. — Élan";
  const tokens = tok.tokenize(text);
  const back = detokenize(tokens);
  assert.is(back.startsWith("The CAT sat !!!! on the mat mat mat mat ."), true, back);
  assert.not.ok(/xx(maj|up|rep|wrep|bos)/.test(back), back);
  assert.equal(tok.tokenize(back), tokens);
  assert.is(detokenize(["xxbos", "xxmaj", "hello", "xxunk", "xxup", "world", "xxoov17", "xxeos", "xxpad"]), "Hello WORLD");
});

test("object-prototype names are ordinary words", () => {
  assert.is(tok("constructor toString __proto__ hasOwnProperty"), "xxbos constructor tostring __proto__ hasownproperty");
});

test.run();
