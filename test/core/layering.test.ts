/**
 * Dependencies point down: the layers of ts/ and what each may import, checked on the source. A leaf module of
 * the training loop never imports the loop (ts/train/context.ts holds what they share); data, backend, config and
 * core never import the stages above them; evaluation never imports training; the library API (ts/api) imports
 * nothing of the command line or the orchestrators.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { projectRoot } from "../../ts/paths.js";

const ts = join(projectRoot, "ts");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Each project import of a file (static or dynamic), as a path relative to ts/ without the extension. */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found = [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)\.js"/g)].map((m) => m[1]);
  return found.map((spec) => relative(ts, resolve(dirname(file), spec)));
}

/** Top folder (or file) under ts/ of a path relative to ts/. */
const layer = (rel: string) => rel.split("/")[0];

const FORBIDDEN: Record<string, string[]> = {
  core: ["data", "backend", "config", "run", "train", "eval", "api", "commands", "bench", "ablate", "setup", "ui", "cli"],
  data: ["backend", "run", "train", "eval", "api", "commands", "bench", "ablate", "cli"],
  backend: ["data", "config", "run", "train", "eval", "api", "commands", "bench", "ablate", "cli"],
  config: ["backend", "run", "train", "eval", "api", "commands", "bench", "ablate", "cli"],
  run: ["train", "eval", "api", "commands", "bench", "ablate", "cli"],
  train: ["eval", "api", "commands", "bench", "ablate", "cli"],
  eval: ["train", "api", "commands", "bench", "ablate", "cli"],
  // the library API sits on the run model (eval/runModel.ts), below the command line and the orchestrators
  api: ["train", "commands", "bench", "ablate", "cli", "setup"],
};

test("each layer of ts/ imports only the layers below it", () => {
  const problems: string[] = [];
  for (const file of sources(ts)) {
    const from = relative(ts, file);
    const banned = FORBIDDEN[layer(from)] ?? [];
    for (const target of imports(file)) if (banned.includes(layer(target))) problems.push(`${from} imports ${target}`);
  }
  assert.equal(problems, []);
});

test("no module of ts/train but the loop's callers imports loop.ts", () => {
  const callers = new Set(["train/loop.ts"]);
  const problems = sources(join(ts, "train"))
    .map((f) => relative(ts, f))
    .filter((f) => !callers.has(f) && imports(join(ts, f)).includes("train/loop"));
  assert.equal(problems, []);
});

test("the check sees imports: a file that imports the loop is caught", () => {
  assert.ok(imports(join(ts, "commands", "train.ts")).includes("train/loop"));
});

test.run();
