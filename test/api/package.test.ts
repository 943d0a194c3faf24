/**
 * The package as a consumer gets it: `npm pack`, installed from the tarball into a fresh project, a small
 * TypeScript file compiled against its declarations with the project's compiler (strict, NodeNext) and run:
 * open, embed, search, close. Its vectors must be `bridge embed`'s, to the bit.
 *
 * The install is offline. Where the npm cache holds bridge's dependencies, `npm install --offline` from the
 * tarball does it all; where it does not (this machine: no registry), the tarball is unpacked where npm puts
 * it (node_modules/bridge) and its dependencies are this repo's node_modules, linked. Either way the code
 * compiled and run is the tarball's. The backend's Python is this repo's .venv (BRIDGE_PYTHON), as a user
 * who set up the environment once would point it.
 */
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { backendPython, projectRoot } from "../../ts/paths.js";
import { makeFixtureRun } from "../eval/fixtures.js";
import { bridgeEmbedBytes, tempFolder, testWithData } from "../helpers.js";

const run = promisify(execFile);

const CONSUMER = `import { openEncoder, type SearchHit } from "bridge";

const [runDir, ...sentences] = process.argv.slice(2);
await using enc = await openEncoder(runDir, { device: "cpu" });
const v = await enc.embed(sentences);
const data: Float32Array = v.data;
const hits: SearchHit[][] = await enc.search(["A dog runs ."], sentences, { topK: 2 });
const id: number = hits[0][0].corpusId;
// @ts-expect-error: sentences are strings (fails to compile if the declarations were lost and embed were any)
const refused = await enc.embed([1, 2]).then(() => "accepted", (e: Error) => e.message);
console.log(JSON.stringify({ rows: v.rows, dim: v.dim, hex: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("hex"), hits, id, refused }));
`;

const TSCONFIG = {
  compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, skipLibCheck: true, types: ["node"], outDir: "out" },
  files: ["main.ts"],
};

testWithData(test, "npm pack, install the tarball in a fresh project, compile against its types, run: bridge embed's vectors", async (dataDir) => {
  const root = tempFolder("bridge-consumer-");
  await makeFixtureRun({ root, name: "pkg", dataDir, pairs: 300, lmSteps: 4, siameseSteps: 4 });
  const runDir = join(root, "pkg");
  const { stdout: packed } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", root], { cwd: projectRoot });
  const tarball = join(root, (JSON.parse(packed) as { filename: string }[])[0].filename);
  const app = join(root, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), `${JSON.stringify({ name: "consumer", private: true, type: "module" })}\n`);
  let how = "npm install --offline from the tarball";
  try {
    await run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball], { cwd: app });
  } catch {
    how = "tarball unpacked into node_modules/bridge, dependencies linked from this repo (no registry or cache here)";
    mkdirSync(join(app, "node_modules"), { recursive: true });
    await run("tar", ["-xzf", tarball, "-C", join(app, "node_modules")]);
    await run("mv", [join(app, "node_modules", "package"), join(app, "node_modules", "bridge")]);
    symlinkSync(join(projectRoot, "node_modules"), join(app, "node_modules", "bridge", "node_modules"));
  }
  console.log(`  (consumer install: ${how})`);
  // the consumer's own dev dependency: node's types, for its tsconfig's types: ["node"]
  symlinkSync(join(projectRoot, "node_modules", "@types"), join(app, "node_modules", "@types"));
  writeFileSync(join(app, "main.ts"), CONSUMER);
  writeFileSync(join(app, "tsconfig.json"), JSON.stringify(TSCONFIG));
  await run(join(projectRoot, "node_modules", ".bin", "tsc"), ["-p", app]).catch((e: Error & { stdout?: string }) => {
    throw new Error(`the consumer does not compile against the package's types:\n${e.stdout ?? e.message}`);
  });
  const sentences = ["A man plays a guitar .", "Dogs run .", "", "A woman walks down the street ."];
  const env = { ...process.env, BRIDGE_PYTHON: backendPython() };
  const { stdout } = await run(process.execPath, [join(app, "out", "main.js"), runDir, ...sentences], { cwd: app, env });
  const got = JSON.parse(stdout) as { rows: number; dim: number; hex: string; hits: { corpusId: number; score: number }[][]; id: number; refused: string };
  assert.is(got.rows, sentences.length);
  assert.is(got.hits[0].length, 2);
  assert.is(got.id, got.hits[0][0].corpusId);
  assert.match(got.refused, "embed: sentences[0]: a number, not a string");
  const want = await bridgeEmbedBytes(runDir, sentences, root);
  assert.is(got.hex, want.toString("hex"), "the packaged API's vectors are bridge embed's, bit for bit");
  // the package carries its backend and none of the tests
  const unpacked = join(app, "node_modules", "bridge");
  assert.ok(readFileSync(join(unpacked, "py", "bridge_backend", "__init__.py")));
  await run("test", ["!", "-e", join(unpacked, "dist", "test")]);
});

test.run();
