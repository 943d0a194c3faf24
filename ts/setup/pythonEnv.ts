/**
 * Builds the backend's Python environment (.venv) from requirements.txt; run by `npm install`
 * (the `prepare` script) and before `npm test`.
 *
 * - BRIDGE_PYTHON=/path/to/python: use that interpreter as it is; nothing is installed, its
 *   packages are only checked.
 * - BRIDGE_TORCH=cpu|cuda: which torch build to install (default: cuda where `nvidia-smi -L`
 *   lists a GPU, else cpu). The CPU build is pinned as `torch==X+cpu`, so pip never pulls the
 *   gigabytes of CUDA wheels onto a machine without a GPU.
 * - Idempotent: a stamp in .venv records what was installed; a re-run with the same
 *   requirements, interpreter and torch build returns at once.
 *
 * `node dist/ts/setup/pythonEnv.js --exec ARGS...` runs the backend's interpreter with ARGS.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { writeFileAtomicSync } from "../core/atomic.js";
import { backendPython, projectRoot, requirementsFile, venvDir } from "../paths.js";

export type TorchBuild = "cpu" | "cuda";

const MIN_PYTHON: [number, number] = [3, 10];
const STAMP_FILE = join(venvDir, ".bridge-setup.json");
/** Where pip finds CPU builds of torch when it has the internet. */
const TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu";
/** What the backend imports; checked after every install and for BRIDGE_PYTHON. */
const REQUIRED_MODULES = ["torch", "zmq", "pyarrow", "numpy", "orjson"];

export class SetupError extends Error {
  override name = "SetupError";
}

interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  error?: Error;
}

function run(cmd: string, args: string[], opts: { inherit?: boolean; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const r = spawnSync(cmd, args, {
    cwd: projectRoot,
    encoding: "utf8",
    stdio: opts.inherit ? "inherit" : "pipe",
    env: opts.env ?? process.env,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", error: r.error };
}

function pythonVersion(python: string): [number, number, number] | null {
  const r = run(python, ["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"]);
  if (r.status !== 0) return null;
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(r.stdout.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/** A system interpreter new enough to make the venv from. */
function findSystemPython(): string {
  for (const candidate of ["python3", "python"]) {
    const v = pythonVersion(candidate);
    if (v && (v[0] > MIN_PYTHON[0] || (v[0] === MIN_PYTHON[0] && v[1] >= MIN_PYTHON[1]))) return candidate;
  }
  throw new SetupError(
    `no Python ${MIN_PYTHON.join(".")}+ found on PATH (tried python3, python).\n` +
      "  Install one (Debian/Ubuntu: apt-get install python3 python3-venv; macOS: brew install python),\n" +
      "  or point BRIDGE_PYTHON at an interpreter that has torch, pyzmq, pyarrow, numpy and orjson, then run `npm install` again.",
  );
}

export function detectTorchBuild(): TorchBuild {
  const forced = process.env.BRIDGE_TORCH?.trim().toLowerCase();
  if (forced === "cpu" || forced === "cuda") return forced;
  if (forced) throw new SetupError(`BRIDGE_TORCH=${forced} is not understood: use cpu or cuda`);
  const r = run("nvidia-smi", ["-L"]);
  return r.status === 0 && /GPU \d+/.test(r.stdout) ? "cuda" : "cpu";
}

/** The torch pin in requirements.txt (`torch==X`), which the CPU build gets as `X+cpu`. */
function torchPin(requirements: string): string {
  const m = /^\s*torch\s*==\s*([0-9][^\s;#+]*)/m.exec(requirements);
  if (!m) throw new SetupError(`${requirementsFile}: expected a line 'torch==VERSION'`);
  return m[1];
}

function missingModules(python: string): string[] {
  const code = `import importlib.util as u; print(' '.join(m for m in ${JSON.stringify(REQUIRED_MODULES)} if u.find_spec(m) is None))`;
  const r = run(python, ["-c", code]);
  if (r.status !== 0) return REQUIRED_MODULES;
  return r.stdout.trim().split(/\s+/).filter(Boolean);
}

function tail(text: string, lines = 25): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

function pipInstall(python: string, args: string[], what: string, quiet: boolean, env?: NodeJS.ProcessEnv): RunResult {
  if (!quiet) console.log(`bridge setup: installing ${what}`);
  return run(python, ["-m", "pip", "install", "--disable-pip-version-check", ...args], { env });
}

/**
 * pip without retries (unless PIP_RETRIES is set): where pip is configured with local wheel indexes beside an
 * unreachable default index, each lookup there is otherwise retried for minutes (measured: requirements.txt
 * 27 s vs over 7 min). A failure is tried once more with pip's own retries, for a flaky network.
 */
function pipFast(python: string, args: string[], what: string, quiet: boolean): RunResult {
  if (process.env.PIP_RETRIES !== undefined) return pipInstall(python, args, what, quiet);
  const fast = pipInstall(python, args, what, quiet, { ...process.env, PIP_RETRIES: "0" });
  if (fast.status === 0) return fast;
  return pipInstall(python, args, `${what} (again, with retries)`, quiet);
}

function tryPip(python: string, args: string[], what: string, quiet: boolean): boolean {
  return pipFast(python, args, what, quiet).status === 0;
}

function pip(python: string, args: string[], what: string, quiet: boolean): void {
  const r = pipFast(python, args, what, quiet);
  if (r.status !== 0) {
    throw new SetupError(
      `pip failed while installing ${what}:\n${tail(r.stdout + r.stderr)}\n` +
        "  What to do: check that pip can reach its package index (or a local wheel index in pip.conf),\n" +
        "  then run `npm install` again; or set BRIDGE_PYTHON to an interpreter that already has the packages.",
    );
  }
}

export interface SetupOptions {
  quiet?: boolean;
}

/** Makes sure the backend's interpreter exists and has its packages; returns its path. */
export function ensurePythonEnv(opts: SetupOptions = {}): string {
  const quiet = opts.quiet ?? false;
  const say = (msg: string) => {
    if (!quiet) console.log(`bridge setup: ${msg}`);
  };

  if (process.env.BRIDGE_PYTHON) {
    const python = backendPython();
    if (!pythonVersion(python)) throw new SetupError(`BRIDGE_PYTHON=${python} does not run as a Python interpreter`);
    const missing = missingModules(python);
    if (missing.length) {
      throw new SetupError(
        `BRIDGE_PYTHON=${python} lacks ${missing.join(", ")}: install them there ` +
          `(${python} -m pip install -r ${requirementsFile}) or unset BRIDGE_PYTHON to let bridge build .venv`,
      );
    }
    say(`using BRIDGE_PYTHON=${python}`);
    return python;
  }

  const requirements = readFileSync(requirementsFile, "utf8");
  const build = detectTorchBuild();
  const python = backendPython();
  const systemPython = existsSync(python) ? null : findSystemPython();
  const fingerprint = createHash("sha256")
    .update(requirements)
    .update(`\0${build}\0`)
    .update(String(pythonVersion(systemPython ?? python)))
    .digest("hex");

  if (existsSync(python) && existsSync(STAMP_FILE)) {
    try {
      const stamp = JSON.parse(readFileSync(STAMP_FILE, "utf8")) as { fingerprint?: string };
      if (stamp.fingerprint === fingerprint && missingModules(python).length === 0) {
        say(`Python environment is up to date (${venvDir}, torch ${build})`);
        return python;
      }
    } catch {
      // an unreadable stamp means: install again
    }
  }

  if (systemPython) {
    say(`creating ${venvDir} with ${systemPython}`);
    const r = run(systemPython, ["-m", "venv", venvDir]);
    if (r.status !== 0) {
      throw new SetupError(
        `could not create the virtual environment ${venvDir}:\n${tail(r.stdout + r.stderr)}\n` +
          "  What to do: install the venv module (Debian/Ubuntu: apt-get install python3-venv), or set BRIDGE_PYTHON.",
      );
    }
  }

  const version = torchPin(requirements);
  if (build === "cpu") {
    // The indexes pip is configured with first (a local wheel mirror answers at once); the
    // PyTorch CPU index only when they lack the build, since an unreachable index costs minutes.
    const spec = `torch==${version}+cpu`;
    if (!tryPip(python, [spec], `torch ${version} (CPU build)`, quiet)) {
      pip(python, [spec, "--extra-index-url", TORCH_CPU_INDEX], `torch ${version} (CPU build) from ${TORCH_CPU_INDEX}`, quiet);
    }
  }
  pip(python, ["-r", requirementsFile], `the packages in requirements.txt`, quiet);

  const missing = missingModules(python);
  if (missing.length) throw new SetupError(`after installing, ${python} still lacks ${missing.join(", ")}`);

  writeFileAtomicSync(STAMP_FILE, JSON.stringify({ fingerprint, torch: build, at: new Date().toISOString() }, null, 2));
  say(`Python environment ready (${venvDir}, torch ${build})`);
  return python;
}

function main(argv: string[]): number {
  const execAt = argv.indexOf("--exec");
  try {
    const python = ensurePythonEnv({ quiet: argv.includes("--quiet") || execAt >= 0 });
    if (execAt >= 0) {
      const r = run(python, argv.slice(execAt + 1), { inherit: true });
      return r.status ?? 1;
    }
    return 0;
  } catch (err) {
    if (err instanceof SetupError) {
      console.error(`bridge setup failed: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  process.exitCode = main(process.argv.slice(2));
}
