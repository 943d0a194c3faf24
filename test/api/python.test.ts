/**
 * The notebook verbs (notebooks/bridge_notebook.py): open_encoder on a tiny run, embed to numpy (bridge
 * embed's vectors, bit for bit), search (the TypeScript API's hits), and the errors: a closed encoder, a
 * missing run, a bad sentence, a call interrupted half way; an encoder collected unclosed stops its process. Python runs in the project's venv; the pipe it drives is ts/api/pipe.ts.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { openEncoder } from "../../ts/api/index.js";
import { backendPython, projectRoot } from "../../ts/paths.js";
import { makeFixtureRun } from "../eval/fixtures.js";
import { bridgeEmbedBytes, tempFolder, testWithData } from "../helpers.js";

const run = promisify(execFile);

const SCRIPT = `
import json, sys
from bridge_notebook import EncoderError, open_encoder

run_dir, *sentences = sys.argv[1:]
out = {}
with open_encoder(run_dir, device="cpu") as enc:
    v = enc.embed(sentences)
    out["shape"] = list(v.shape)
    out["dtype"] = str(v.dtype)
    out["hex"] = v.tobytes().hex()
    out["dim"] = enc.dim
    corpus = enc.embed(sentences)  # a corpus embedded once, searched twice
    out["hits"] = enc.search(["A dog runs .", "Someone plays music ."], corpus, top_k=3)
    out["hits_texts"] = enc.search(["A dog runs .", "Someone plays music ."], sentences, top_k=3)
    out["norms"] = [float(x) for x in (enc.embed(sentences, normalize=True) ** 2).sum(axis=1)]
    try:
        enc.embed(["fine", 3])
    except EncoderError as e:
        out["bad"] = str(e)
out["after_close"] = None
try:
    enc.embed(["x"])
except EncoderError as e:
    out["after_close"] = str(e)
try:
    open_encoder(run_dir + "-missing")
except FileNotFoundError as e:
    out["missing"] = str(e)

# a call interrupted half way (Ctrl-C in a notebook) closes the encoder: the next call must not read its reply
import os, signal, gc
enc = open_encoder(run_dir, device="cpu")
pid = enc._proc.pid
def interrupt(*_):
    raise KeyboardInterrupt()
signal.signal(signal.SIGALRM, interrupt)
signal.setitimer(signal.ITIMER_REAL, 0.05)
try:
    enc.embed(["sentence number %d with a few words" % i for i in range(40000)])
    out["interrupted"] = "not interrupted"
except KeyboardInterrupt:
    try:
        enc.embed(["A man plays a guitar ."])
        out["interrupted"] = "answered after an interrupt"
    except EncoderError as e:
        out["interrupted"] = str(e)
out["interrupted_pid_gone"] = enc._proc.poll() is not None

# an encoder dropped without close() stops its process when collected (a notebook cell run again)
enc = open_encoder(run_dir, device="cpu")
proc = enc._proc
del enc
gc.collect()
out["collected_exit"] = proc.wait(timeout=30)

# run names are looked up in BRIDGE_RUNS_DIR, as the command line looks them up
os.environ["BRIDGE_RUNS_DIR"] = os.path.dirname(run_dir)
with open_encoder(os.path.basename(run_dir), device="cpu") as enc:
    out["by_name_dim"] = enc.dim
print(json.dumps(out))
`;

testWithData(test, "open_encoder, embed to numpy (bridge embed's bits), search (the API's hits), and clear errors", async (dataDir) => {
  const root = tempFolder("bridge-py-api-");
  await makeFixtureRun({ root, name: "py", dataDir, pairs: 300, lmSteps: 4, siameseSteps: 4 });
  const runDir = join(root, "py");
  const sentences = ["A man plays a guitar .", "Dogs run .", "", "A woman walks down the street .", "Music is playing ."];
  const env = { ...process.env, PYTHONPATH: join(projectRoot, "notebooks"), BRIDGE_NODE: process.execPath };
  const { stdout } = await run(backendPython(), ["-c", SCRIPT, runDir, ...sentences], { env, maxBuffer: 64 * 1024 * 1024 });
  const got = JSON.parse(stdout) as {
    shape: number[];
    dtype: string;
    hex: string;
    dim: number;
    hits: { corpus_id: number; score: number }[][];
    hits_texts: { corpus_id: number; score: number }[][];
    norms: number[];
    bad: string;
    after_close: string | null;
    missing: string;
    interrupted: string;
    interrupted_pid_gone: boolean;
    collected_exit: number;
    by_name_dim: number;
  };
  const want = await bridgeEmbedBytes(runDir, sentences, root);
  assert.equal(got.shape, [sentences.length, got.dim]);
  assert.is(got.dtype, "float32");
  assert.is(got.hex, want.toString("hex"), "numpy vectors are bridge embed's, bit for bit");
  await using enc = await openEncoder(runDir, { device: "cpu" });
  const ts = await enc.search(["A dog runs .", "Someone plays music ."], sentences, { topK: 3 });
  assert.equal(got.hits, got.hits_texts);
  got.hits.forEach((hits, i) =>
    hits.forEach((h, j) => {
      assert.is(h.corpus_id, ts[i][j].corpusId, `query ${i} rank ${j}`);
      assert.ok(Math.abs(h.score - ts[i][j].score) < 1e-5);
    }),
  );
  for (const [i, n] of got.norms.entries()) assert.ok(Math.abs(n - 1) < 1e-5, `normalised row ${i}: ${n}`);
  assert.match(got.bad, "sentences[1]");
  assert.match(got.after_close ?? "", "closed");
  assert.match(got.missing, "py-missing");
  assert.match(got.missing, "no run.json");
  assert.match(got.interrupted, "closed (a call was interrupted by KeyboardInterrupt: open it again)");
  assert.ok(got.interrupted_pid_gone, "an interrupted encoder's process is stopped");
  assert.type(got.collected_exit, "number");
  assert.is(got.by_name_dim, got.dim, "a run name found in BRIDGE_RUNS_DIR");
});

test.run();
