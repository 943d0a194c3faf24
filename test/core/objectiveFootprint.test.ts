/**
 * docs/design.md, "Where to change what", says a new objective is its backend module, its line in the backend's
 * registry and its entry in ts/config/objectives.ts, options included. This keeps that true: an objective's name
 * in code (a string literal or an object key) appears nowhere else. lm and siamese are left out on purpose: other
 * stages name them (LM text and streams; the NLI classifier the snli eval task needs).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { OBJECTIVES } from "../../ts/config/objectives.js";
import { projectRoot } from "../../ts/paths.js";

const NAMED_ELSEWHERE = ["lm", "siamese"];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.(ts|py)$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

const files = [...sources(join(projectRoot, "ts")), ...sources(join(projectRoot, "py", "bridge_backend"))].map((f) => ({
  path: relative(projectRoot, f),
  text: readFileSync(f, "utf8"),
}));

/** Where `objective` is named in code: as "name" / 'name', or as a key at the start of a line (name: ...). */
function namedIn(objective: string, among: { path: string; text: string }[] = files): string[] {
  const pattern = new RegExp(`["']${objective}["']|^\\s*${objective}:`, "m");
  return among.filter((f) => pattern.test(f.text)).map((f) => f.path);
}

test("an objective is named only in its backend module and its OBJECTIVE_SPECS entry", () => {
  for (const objective of OBJECTIVES.filter((o) => !NAMED_ELSEWHERE.includes(o))) {
    const allowed = ["ts/config/objectives.ts", `py/bridge_backend/objectives/${objective}.py`];
    const extra = namedIn(objective).filter((p) => !allowed.includes(p));
    assert.equal(extra, [], `${objective} is named outside the places docs/design.md lists: ${extra.join(", ")}`);
    assert.ok(namedIn(objective).includes(`py/bridge_backend/objectives/${objective}.py`), `${objective}: no backend module of that name`);
  }
});

test("the check finds a name in code and passes over one in prose", () => {
  const among = [
    { path: "ts/train/special.ts", text: 'if (objective === "cosent") scale = 20;' },
    { path: "py/x.py", text: "OPTS = {\n    'cosent': 20,\n}" },
    { path: "ts/backend/doc.ts", text: "/** cosent / cosine_mse: premise, hypothesis, scores */" },
  ];
  assert.equal(namedIn("cosent", among), ["ts/train/special.ts", "py/x.py"]);
  assert.ok(namedIn("triplet").includes("ts/config/objectives.ts"));
});

test.run();
