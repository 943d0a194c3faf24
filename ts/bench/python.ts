/** The benchmarks' Python references: run one in the backend's environment, read its JSON. */
import { spawn } from "node:child_process";
import { backendEnv, backendPython } from "../paths.js";

/**
 * Runs the backend's interpreter with `args` and parses the last line of its stdout as JSON;
 * a non-zero exit or a missing JSON line is an error that quotes the tail of its stderr.
 */
export async function runPythonJson<T>(what: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<T> {
  const child = spawn(backendPython(), args, { env: backendEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  const tail = stderr.trim().split("\n").slice(-15).join("\n");
  if (code !== 0) throw new Error(`${what}: python exited with code ${code}\n${tail}`);
  try {
    return JSON.parse(stdout.trim().split("\n").pop() ?? "") as T;
  } catch {
    throw new Error(`${what}: no JSON on its stdout: ${JSON.stringify(stdout.slice(-300))}\n${tail}`);
  }
}
