/**
 * scripts/gpu-check.sh's CPU-skip path, as CI runs it: an `nvidia-smi` that finds no device stands first on
 * PATH, so the path is taken on any machine. It must say no GPU was found, run the cuda-marked tests, write
 * summary.json naming every skipped step, and exit 0, quickly.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { projectRoot } from "../../ts/paths.js";
import { tempFolder } from "../helpers.js";

interface Summary {
  gpu: string | null;
  cuda_path: boolean;
  cuda_tests: { passed: number; failed: number; skipped: number; errors: number; skip_reasons: string[] } | null;
  steps: { name: string; status: string; note?: string }[];
  skipped: string[];
  failed: string[];
}

test("gpu-check.sh without a GPU: says so, runs the cuda tests (skipped), records what it skipped, exits 0", () => {
  const dir = tempFolder("bridge-gpu-check-");
  try {
    const bin = join(dir, "bin");
    const fake = join(bin, "nvidia-smi");
    mkdirSync(bin);
    writeFileSync(fake, '#!/bin/sh\necho "No devices were found"\nexit 6\n'); // what nvidia-smi says without a GPU
    chmodSync(fake, 0o755);
    const out = join(dir, "out");
    const t0 = Date.now();
    const r = spawnSync("bash", [join(projectRoot, "scripts", "gpu-check.sh"), "--skip-install", out], {
      cwd: projectRoot,
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      timeout: 180_000,
    });
    const seconds = (Date.now() - t0) / 1000;
    assert.is(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, "no GPU found");
    assert.ok(seconds < 120, `the CPU-skip path took ${seconds.toFixed(0)} s`);
    const s = JSON.parse(readFileSync(join(out, "summary.json"), "utf8")) as Summary;
    assert.is(s.gpu, null);
    assert.is(s.cuda_path, false);
    assert.equal(s.failed, []);
    for (const name of ["install-cuda", "doctor", "bench-model", "bench-train-depth2", "bench-embed", "nproc2"]) {
      assert.ok(s.skipped.includes(name), `${name} should be listed as skipped: ${s.skipped}`);
    }
    const ran = s.steps.find((x) => x.name === "cuda-tests");
    assert.is(ran?.status, "ok");
    const tests = s.cuda_tests!;
    assert.is(tests.failed + tests.errors, 0);
    assert.ok(tests.passed + tests.skipped >= 5, `cuda tests: ${JSON.stringify(tests)}`);
    if (tests.skipped > 0)
      assert.ok(
        tests.skip_reasons.some((m) => /no CUDA device/.test(m)),
        `skip reasons: ${tests.skip_reasons}`,
      );
    assert.ok(readFileSync(join(out, "cuda-tests.log"), "utf8").length > 0, "the cuda tests' log is beside the summary");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
