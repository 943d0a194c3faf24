/**
 * The README's command sequence, run as written, in order, in a fresh folder: train, eval (the latest
 * run, no --run), write sentences.txt, embed (the latest run). Two additions keep it to a minute on a
 * CPU, and are the only changes: train gets `--config configs/tiny.yaml`, eval `--tasks separation,sts`.
 * If the README's commands stop working (a renamed flag, a run name it cannot find), this fails.
 *
 * Then, in the same folder, "Use it from code": the TypeScript block compiled as it stands against the
 * package's declarations (node_modules/bridge links to this repo; strict, NodeNext) and run, and the
 * Python block run with notebooks/ on PYTHONPATH.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { tableFromIPC } from "apache-arrow";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { backendPython, projectRoot } from "../../ts/paths.js";
import { bridgeBin, tempFolder, testWithData } from "../helpers.js";

/** The lines of the README's block marked `readme-flow`, comments dropped. */
export function readmeFlow(readme: string): string[] {
  const at = readme.indexOf("<!-- readme-flow");
  assert.ok(at >= 0, "the README has no readme-flow block");
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(block, "no ```sh block after the readme-flow mark");
  return block[1]
    .split("\n")
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => l !== "");
}

/** The code block of `lang` after the README's `<!-- mark` comment. */
export function readmeBlock(readme: string, mark: string, lang: string): string {
  const at = readme.indexOf(`<!-- ${mark}`);
  assert.ok(at >= 0, `the README has no ${mark} block`);
  const block = new RegExp(`\`\`\`${lang}\n([\\s\\S]*?)\`\`\``).exec(readme.slice(at));
  assert.ok(block, `no \`\`\`${lang} block after the ${mark} mark`);
  return block[1];
}

testWithData(test, "the README's commands work as written, in order (tiny config)", async (dataDir) => {
  const lines = readmeFlow(readFileSync(join(projectRoot, "README.md"), "utf8"));
  assert.equal(
    lines.map((l) => l.split(" ").slice(0, 3).join(" ")),
    ["npx bridge train", "npx bridge eval", "printf 'A man", "npx bridge embed"],
    "the README's flow changed: update this test's expectations with it",
  );
  const cwd = tempFolder("bridge-readme-");
  const { BRIDGE_RUNS_DIR: _runsDir, ...env } = process.env; // runs/ in the fresh folder, as a user's would be
  try {
    for (const line of lines) {
      const cmd = line
        .replace(/^npx bridge /, `${JSON.stringify(process.execPath)} ${JSON.stringify(bridgeBin)} `)
        .replaceAll("../shared/data", JSON.stringify(dataDir))
        .replace(/ train /, ` train --config ${JSON.stringify(join(projectRoot, "configs", "tiny.yaml"))} --quiet `)
        .replace(/ eval /, " eval --tasks separation,sts ");
      await promisify(execFile)("bash", ["-c", cmd], { cwd, env, maxBuffer: 64 * 1024 * 1024 }).catch((e: Error & { stderr?: string }) => {
        throw new Error(`README line failed: ${line}\n${e.stderr ?? e.message}`);
      });
    }
    const latest = readlinkSync(join(cwd, "runs", "latest"));
    assert.match(latest, /^tiny-/, "runs/latest names the run train made");
    const metrics = JSON.parse(readFileSync(join(cwd, "runs", "latest", "eval", "metrics.json"), "utf8"));
    assert.type(metrics.separation?.roc_auc, "number");
    assert.ok(existsSync(join(cwd, "runs", "latest", "eval", "report.html")));
    const vectors = tableFromIPC(readFileSync(join(cwd, "vectors.arrow")));
    assert.is(vectors.numRows, 2, "one vector per line of sentences.txt");
    assert.equal(Array.from(vectors.getChild("text") ?? []), ["A man plays a guitar.", "Someone is making music."]);
    await useItFromCode(cwd, readFileSync(join(projectRoot, "README.md"), "utf8"), env);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

/** The README's TypeScript and Python examples, in `cwd` where runs/latest is a trained run. */
async function useItFromCode(cwd: string, readme: string, env: NodeJS.ProcessEnv): Promise<void> {
  const app = join(cwd, "app");
  mkdirSync(join(app, "node_modules"), { recursive: true });
  symlinkSync(projectRoot, join(app, "node_modules", "bridge"));
  symlinkSync(join(projectRoot, "node_modules", "@types"), join(app, "node_modules", "@types"));
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "readme-example", private: true, type: "module" }));
  writeFileSync(join(app, "example.ts"), readmeBlock(readme, "readme-ts", "ts"));
  const compilerOptions = { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, skipLibCheck: true, types: ["node"] };
  writeFileSync(join(app, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["example.ts"] }));
  await promisify(execFile)(join(projectRoot, "node_modules", ".bin", "tsc"), ["-p", app]).catch((e: Error & { stdout?: string }) => {
    throw new Error(`the README's TypeScript does not compile:\n${e.stdout ?? e.message}`);
  });
  // FORCE_COLOR=0: console.log of numbers without the colour codes a test runner's FORCE_COLOR would add
  const ts = await promisify(execFile)(process.execPath, [join(app, "example.js")], { cwd, env: { ...env, FORCE_COLOR: "0" } });
  const [shape, ...hits] = ts.stdout.trim().split("\n");
  assert.match(shape, /^2 \d+ \d+$/, `rows, dim and a row's length, in:\n${ts.stdout}`);
  const [rows, dim, rowLength] = shape.split(" ").map(Number);
  assert.is(rows, 2);
  assert.is(rowLength, dim);
  assert.match(hits.join("\n"), /corpusId: \d[\s\S]*corpusId: \d/, "two hits");
  const py = await promisify(execFile)(backendPython(), ["-c", readmeBlock(readme, "readme-py", "python")], {
    cwd,
    env: { ...env, PYTHONPATH: join(projectRoot, "notebooks"), BRIDGE_NODE: process.execPath },
  });
  assert.match(py.stdout, new RegExp(`^\\(2, ${dim}\\) \\[\\[\\{'corpus_id': [01], 'score': [-0-9.e]+\\}\\]\\]`));
}

test.run();
