/**
 * `npm install` stays quiet: every locked package accepts the Node versions package.json promises
 * (else npm prints EBADENGINE), and every dependency with an install script is approved in
 * package.json's allowScripts (else npm 11 lists it as not yet reviewed).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { projectRoot } from "../../ts/paths.js";

interface LockEntry {
  engines?: { node?: string } | string[];
  hasInstallScript?: boolean;
}
const pkg = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as {
  engines: { node: string };
  allowScripts?: Record<string, boolean | string>;
};
const lock = JSON.parse(readFileSync(join(projectRoot, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> };

type Version = [number, number, number];
const cmp = (a: Version, b: Version) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

function parseVersion(text: string): Version {
  const m = /^v?(\d+)(?:\.(\d+|\*|x))?(?:\.(\d+|\*|x))?$/.exec(text.trim());
  if (!m) throw new Error(`not a version: ${JSON.stringify(text)}`);
  const part = (s: string | undefined) => (s === undefined || s === "*" || s === "x" ? 0 : Number(s));
  return [Number(m[1]), part(m[2]), part(m[3])];
}

/** Whether `v` satisfies an npm engines range of the forms the lockfile holds (>=, ^, N.*, *, ||). */
function satisfies(v: Version, range: string): boolean {
  return range.split("||").some((alt) => {
    const a = alt.trim();
    if (a === "*" || a === "") return true;
    const ge = /^>=\s*(.+)$/.exec(a);
    if (ge) return cmp(v, parseVersion(ge[1])) >= 0;
    const caret = /^\^\s*(.+)$/.exec(a);
    if (caret) {
      const low = parseVersion(caret[1]);
      return cmp(v, low) >= 0 && v[0] === low[0];
    }
    const major = /^(\d+)\.(\*|x)$/.exec(a);
    if (major) return v[0] === Number(major[1]);
    throw new Error(`engines range ${JSON.stringify(range)}: form ${JSON.stringify(a)} not understood by this test`);
  });
}

/** The lowest version of each alternative of package.json's own engines.node. */
const promised = pkg.engines.node.split("||").map((alt) => parseVersion(alt.trim().replace(/^(\^|>=)\s*/, "")));

test("the promised Node versions include this one", () => {
  assert.ok(satisfies(parseVersion(process.version), pkg.engines.node), `${process.version} vs engines ${pkg.engines.node}`);
});

test("every locked package accepts every Node version package.json promises (no EBADENGINE)", () => {
  const refusing: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
    if (path === "" || range === undefined) continue;
    for (const v of promised) if (!satisfies(v, range)) refusing.push(`${path} (engines ${range}) refuses Node ${v.join(".")}`);
  }
  assert.equal(refusing, [], `package.json promises Node ${pkg.engines.node}`);
});

test("every dependency with an install script is approved in allowScripts (npm 11)", () => {
  const unapproved = Object.entries(lock.packages)
    .filter(([path, e]) => path !== "" && e.hasInstallScript)
    .map(([path]) => path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length))
    .filter((name) => pkg.allowScripts?.[name] !== true);
  assert.equal(unapproved, []);
});

test.run();
