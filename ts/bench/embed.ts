/**
 * `npx bridge bench embed`: sentences/s of bridge's encode path (batching longest first, Arrow
 * over ZeroMQ, a few calls in flight, vectors back in input order) against a native PyTorch loop
 * (bridge_backend.bench_embed: the same checkpoint, the same token ids, the same batch size) in one
 * Python process, in the same benchmark run. Both start from token ids; tokenising is timed apart
 * (`bridge_tokenize_sentences_per_s`). Target: ratio >= 0.9.
 *
 * Beside them, from texts (tokenising included): the library API (`Encoder.embed` of the sentences) and
 * the command line's path (`embedFile`: a text file in, an Arrow file out, on the same open encoder, so
 * without the process and backend start `bridge embed` also pays). Target: api_vs_bridge >= 0.9.
 *
 * Sentences: the unique sentences of SNLI dev from the data dir (else the Brown corpus). Model:
 * the given run's, or a fresh model of `preset` (random weights: speed does not depend on them).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { embedFile } from "../api/embedFile.js";
import { openEncoder } from "../api/encoder.js";
import { startBackend } from "../backend/client.js";
import { parseSplitRef, splitExists, splitTexts } from "../data/datasets.js";
import { Tokenizer } from "../data/tokenize.js";
import { TokenCounter, Vocab } from "../data/vocab.js";
import { RunModel } from "../eval/runModel.js";
import { MANIFEST_VERSION, runPaths, writeManifest } from "../run/manifest.js";
import { CostTally, costSince, ownCost, pidCost } from "./processCost.js";
import { runPythonJson } from "./python.js";

export interface EmbedBenchOptions {
  /** A trained run to time; default: a fresh model of `preset`. */
  run?: string;
  preset?: string;
  dataDir?: string;
  sentences?: number;
  batchSize?: number;
  repeats?: number;
  device?: string;
}

export interface EmbedBenchResult {
  bridge_sentences_per_s: number;
  native_sentences_per_s: number;
  ratio: number;
  /** Encoder.embed of the texts (tokenising included). */
  api_sentences_per_s: number;
  /** embedFile on the same encoder: read a text file, embed, write an Arrow file. */
  cli_path_sentences_per_s: number;
  api_vs_bridge: number;
  api_vs_native: number;
  cli_path_vs_native: number;
  bridge_tokenize_sentences_per_s: number;
  sentences: number;
  batch_size: number;
  model: string;
  source: string;
  device: string;
  /** Per pass over the sentences, mean over the rounds: what the bridge's encode cost the client (this process)
   * and the backend (null off Linux), against the native loop's one process. */
  profile: {
    bridge_client_cpu_ms: number;
    bridge_client_minor_faults: number;
    bridge_backend_cpu_ms: number | null;
    bridge_backend_minor_faults: number | null;
    native_cpu_ms: number;
    native_minor_faults: number;
  };
}

interface NativeEmbedResult {
  native_sentences_per_s: number;
  device: string;
  /** The timed pass's CPU time and minor page faults. */
  native_cpu_ms: number;
  native_minor_faults: number;
}

export async function benchSentences(dataDir: string | undefined, n: number): Promise<{ sentences: string[]; source: string }> {
  let ref = parseSplitRef("snli:dev", dataDir);
  if (!splitExists(ref)) ref = parseSplitRef("brown");
  const seen = new Set<string>();
  for await (const s of splitTexts(ref, {})) {
    if (s.trim() !== "" && !/[\r\n]/.test(s)) seen.add(s); // one a line: the command line's path reads them from a file
    if (seen.size >= n) break;
  }
  return { sentences: [...seen], source: ref.id };
}

/** A throwaway run folder (root/bench) holding a fresh model of `preset` with a vocabulary of the sentences. */
export async function freshRun(root: string, sentences: string[], preset: string, device?: string): Promise<void> {
  const paths = runPaths("bench", root);
  mkdirSync(paths.checkpoints, { recursive: true });
  const tokenizer = new Tokenizer();
  const counter = new TokenCounter();
  for (const s of sentences) counter.add(tokenizer.tokenize(s));
  const vocab = Vocab.fromCounts(counter.counts, { minFreq: 1 });
  await vocab.save(paths.vocab);
  const model = { preset, vocab_sz: vocab.size, vocab_fingerprint: vocab.fingerprint, seed: 0 };
  const client = await startBackend({ device });
  try {
    await client.call("build", model);
    await client.call("save", { path: join(paths.checkpoints, "0-fresh.pt") });
  } finally {
    await client.close();
  }
  await writeManifest(paths, {
    version: MANIFEST_VERSION,
    name: "bench",
    created: new Date().toISOString(),
    seed: 0,
    model,
    tokenizer: tokenizer.settings,
    vocab: { size: vocab.size, fingerprint: vocab.fingerprint },
    stages: [],
    finalCheckpoint: "checkpoints/0-fresh.pt",
  });
}

function runNative(args: string[]): Promise<NativeEmbedResult> {
  return runPythonJson("bridge bench embed: the native loop", ["-m", "bridge_backend.bench_embed", ...args]);
}

export async function benchEmbed(opts: EmbedBenchOptions = {}): Promise<EmbedBenchResult> {
  const batchSize = opts.batchSize ?? 128;
  const repeats = opts.repeats ?? 3;
  const preset = opts.preset ?? "cpu_small";
  const { sentences, source } = await benchSentences(opts.dataDir, opts.sentences ?? 5000);
  const tmp = mkdtempSync(join(tmpdir(), "bridge-bench-embed-"));
  try {
    if (opts.run === undefined) await freshRun(tmp, sentences, preset, opts.device);
    const runSpec = opts.run === undefined ? join(tmp, "bench") : opts.run;
    const model = await RunModel.open(opts.run === undefined ? { run: "bench", runsDir: tmp, device: opts.device } : { run: opts.run, device: opts.device });
    const encoder = await openEncoder(runSpec, { device: opts.device });
    let bridgeBest = Number.POSITIVE_INFINITY;
    let apiBest = Number.POSITIVE_INFINITY;
    let cliBest = Number.POSITIVE_INFINITY;
    let nativeBest = 0;
    let device = "";
    const [client, backend, native] = [new CostTally(), new CostTally(), new CostTally()];
    let tokenizeSeconds: number;
    try {
      const t0 = performance.now();
      const rows = model.numericalise(sentences);
      tokenizeSeconds = (performance.now() - t0) / 1000;
      const ids = join(tmp, "ids");
      mkdirSync(ids);
      writeFileSync(join(ids, "offsets.bin"), new Uint8Array(rows.offsets.buffer, rows.offsets.byteOffset, rows.offsets.byteLength));
      writeFileSync(join(ids, "ids.bin"), new Uint8Array(rows.ids.buffer, rows.ids.byteOffset, rows.offsets[rows.offsets.length - 1] * 4));
      const input = join(tmp, "sentences.txt");
      writeFileSync(input, `${sentences.join("\n")}\n`);
      const nativeArgs = ["--checkpoint", model.resolveCheckpoint(model.checkpoint), "--ids", ids, "--batch-size", String(batchSize), "--repeats", "1"];
      if (opts.device) nativeArgs.push("--device", opts.device);
      await model.encode(rows, { batchSize }); // warm-up
      await encoder.embed(sentences, { batchSize });
      const timed = async (work: () => Promise<unknown>) => {
        const t = performance.now();
        await work();
        return (performance.now() - t) / 1000;
      };
      // Rounds alternate the paths, so that load from other processes hits all alike; best of each.
      for (let r = 0; r < repeats; r++) {
        const [client0, backend0] = [ownCost(), pidCost(model.client.process?.pid)];
        bridgeBest = Math.min(bridgeBest, await timed(() => model.encode(rows, { batchSize })));
        client.add(costSince(client0, ownCost()));
        backend.add(costSince(backend0, pidCost(model.client.process?.pid)));
        apiBest = Math.min(apiBest, await timed(() => encoder.embed(sentences, { batchSize })));
        cliBest = Math.min(cliBest, await timed(() => embedFile({ run: runSpec, input, output: join(tmp, "out.arrow"), batchSize, encoder, progress: false })));
        const nat = await runNative(nativeArgs);
        nativeBest = Math.max(nativeBest, nat.native_sentences_per_s);
        native.add({ cpuMs: nat.native_cpu_ms, minorFaults: nat.native_minor_faults });
        device = nat.device;
      }
    } finally {
      await encoder.close();
      await model.close();
    }
    const perPass = { client: client.per(repeats), backend: backend.per(repeats), native: native.per(repeats) };
    const bridge = sentences.length / bridgeBest;
    const api = sentences.length / apiBest;
    const cli = sentences.length / cliBest;
    return {
      bridge_sentences_per_s: bridge,
      native_sentences_per_s: nativeBest,
      ratio: bridge / nativeBest,
      api_sentences_per_s: api,
      cli_path_sentences_per_s: cli,
      api_vs_bridge: api / bridge,
      api_vs_native: api / nativeBest,
      cli_path_vs_native: cli / nativeBest,
      bridge_tokenize_sentences_per_s: sentences.length / tokenizeSeconds,
      sentences: sentences.length,
      batch_size: batchSize,
      model: opts.run ?? `fresh ${preset}`,
      source,
      device,
      profile: {
        bridge_client_cpu_ms: Math.round(perPass.client!.cpuMs),
        bridge_client_minor_faults: Math.round(perPass.client!.minorFaults),
        bridge_backend_cpu_ms: perPass.backend && Math.round(perPass.backend.cpuMs),
        bridge_backend_minor_faults: perPass.backend && Math.round(perPass.backend.minorFaults),
        native_cpu_ms: Math.round(perPass.native!.cpuMs),
        native_minor_faults: Math.round(perPass.native!.minorFaults),
      },
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
