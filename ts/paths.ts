/** Where the project's own files live, whatever the working directory. */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

function findProjectRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "py", "bridge_backend"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`bridge: cannot find the project root above ${start}`);
    dir = parent;
  }
}

export const projectRoot: string = findProjectRoot(dirname(fileURLToPath(import.meta.url)));
export const pythonSourceDir: string = join(projectRoot, "py");
export const venvDir: string = join(projectRoot, ".venv");
export const requirementsFile: string = join(projectRoot, "requirements.txt");

/** The interpreter the backend runs on: BRIDGE_PYTHON, else the project's .venv. */
export function backendPython(): string {
  const override = process.env.BRIDGE_PYTHON;
  if (override && override.trim() !== "") return resolve(override);
  return process.platform === "win32" ? join(venvDir, "Scripts", "python.exe") : join(venvDir, "bin", "python");
}

/** The environment a backend-side Python process runs with: ours, plus py/ on PYTHONPATH. */
export function backendEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const pythonPath = [pythonSourceDir, process.env.PYTHONPATH].filter(Boolean).join(":");
  return { ...process.env, ...extra, PYTHONPATH: pythonPath };
}
