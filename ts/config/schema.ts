/**
 * The training config: one YAML/JSON file, validated here with zod so that a bad value is refused
 * before any data is read, with the field's path, the value and what is allowed. Every default
 * lives in this file; the resolved config (defaults filled in, --set applied) is what a run saves.
 *
 * Shape: seed, data (which splits train and validate), tokenizer, vocab, model (the backend's
 * `build` arguments), stages (run in order, each from the previous stage's encoder).
 */
import { z } from "zod";
import { ARCHS, type Arch, SENTENCE_ATTENTIONS } from "../core/archs.js";
import { NLI_LABELS } from "../data/records.js";
import { DEFAULT_MAX_LEN } from "../data/tokenize.js";
import { METRICS, type Metric, OBJECTIVE_SPECS, OBJECTIVES, type Objective, type ObjectiveSpec, optionsProblems, TASK_OBJECTIVES } from "./objectives.js";

const positiveInt = z.number().int().positive();
const unit = z.number().min(0).lt(1);

export const SCHEDULES = ["one_cycle", "slanted_triangular", "cosine", "constant"] as const;

/** Learning-rate (and momentum) schedule of one stage, computed in TypeScript and sent every step. */
export const LrSchema = z
  .object({
    /** Peak learning rate of the top parameter group. */
    max: z.number().positive().default(1e-3),
    schedule: z.enum(SCHEDULES).default("one_cycle"),
    /** one_cycle / cosine: share of the steps spent warming up. */
    pctStart: unit.default(0.25),
    /** one_cycle starts at max / divFactor ... */
    divFactor: z.number().min(1).default(25),
    /** ... and ends at max / (divFactor * finalDiv); cosine ends at max / finalDiv. */
    finalDiv: z.number().min(1).default(1e4),
    /** slanted_triangular (ULMFiT): share of steps rising, and max / lowest lr. */
    cutFrac: unit.default(0.1),
    ratio: z.number().min(1).default(32),
    /** Discriminative rates: group k below the top gets max / lrDiv**k (ULMFiT's 2.6). 1 = one rate. */
    lrDiv: z.number().min(1).default(1),
    /** Momentum cycled against the lr (one_cycle, slanted_triangular): [high, low]; null keeps it fixed. */
    moms: z.tuple([unit, unit]).nullable().default([0.95, 0.85]),
  })
  .strict();

export const EarlyStoppingSchema = z
  .object({
    /** One of the metrics the stage's objective produces (OBJECTIVE_SPECS). */
    metric: z.enum(METRICS),
    /** Evaluations without improvement before the stage stops. */
    patience: positiveInt.default(3),
    minDelta: z.number().min(0).default(0),
  })
  .strict();

/** A dataset split as NAME:SPLIT (ts/data/datasets.ts), e.g. snli:train, wikitext-2:train, brown. */
const splitRef = z.string().regex(/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/, "NAME or NAME:SPLIT, e.g. snli:train");

/** An objective's loss settings by name (ts/config/objectives.ts lists each objective's, with defaults). */
const OptionsSchema = z.record(z.union([z.number(), z.string()]));

/** One task of a multi-task stage: a pair dataset's training split, the objective it trains, and how often. */
export const TaskSchema = z
  .object({
    /** A pair dataset's training split (NAME:SPLIT or NAME); data.pairs's means that dataset as the run splits it. */
    dataset: splitRef,
    objective: z.enum(OBJECTIVES),
    /** Share of the stage's steps drawn from this task: weight / sum of weights. */
    weight: z.number().positive().default(1),
    /** This task's loss settings, over the stage's (e.g. { temperature: 0.1 }). */
    options: OptionsSchema.optional(),
    /** Names the task in metrics (val_loss/NAME) and logs; default DATASET-OBJECTIVE, e.g. stsb-cosent. */
    name: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, "letters, digits, '_' and '-' only")
      .optional(),
  })
  .strict();

export const StageSchema = z
  .object({
    /** Names the stage in logs and checkpoint files; defaults to the objective (multitask for a stage with tasks). */
    name: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, "letters, digits, '_' and '-' only")
      .optional(),
    /** What the stage trains; give either this (on data.pairs) or `tasks`. */
    objective: z.enum(OBJECTIVES).optional(),
    /** A multi-task stage: each step is one task's batch, tasks drawn in proportion to their weights. */
    tasks: z.array(TaskSchema).min(1).optional(),
    /** Length in epochs, or in steps = batches (steps wins when both are given; accumSteps batches make one optimizer step). */
    epochs: z.number().positive().default(1),
    steps: positiveInt.optional(),
    /** Rows (pairs, or LM stream rows) per step. */
    batchSize: positiveInt.default(64),
    /** LM: tokens per row per step (windows vary around it in training, as AWD-LSTM does). */
    bptt: positiveInt.default(70),
    /** Tokens kept per sentence (longer ones are cut, counted in the log); null: the tokenizer's. */
    maxLen: positiveInt.nullable().default(null),
    opt: z.enum(["adam", "adamw", "sgd"]).default("adamw"),
    lr: LrSchema.default({}),
    wd: z.number().min(0).default(0.01),
    /** Max global gradient norm; 0 = none. */
    clip: z.number().min(0).default(0),
    accumSteps: positiveInt.default(1),
    dropMult: z.number().min(0).lt(10).default(1),
    /** Gradual unfreezing (ULMFiT): the top group first (the classifier head; the head and the top encoder layer
     * where any of the stage's objectives uses no head), one more group every `unfreezeEvery` steps (default: every
     * epoch); false trains every group from the start. */
    gradualUnfreeze: z.boolean().default(false),
    unfreezeEvery: positiveInt.nullable().default(null),
    /** Loss settings of the stage's objectives (ts/config/objectives.ts): e.g. { temperature: 0.05 } for contrastive,
     * { margin: 1, distance: euclidean } for triplet, { alpha: 2, beta: 1 } (AR / TAR) for lm; a task's own win. */
    options: OptionsSchema.optional(),
    /** Head settings of this stage's model (the encoder carries over by name). */
    pool: z.enum(["last", "mean", "max", "concat"]).optional(),
    poolLayers: z.enum(["top", "all", "mix"]).optional(),
    features: z.enum(["uv", "infersent"]).optional(),
    /** Evaluate every N steps (and always at the stage's end); null: every epoch. */
    evalEvery: positiveInt.nullable().default(null),
    earlyStopping: EarlyStoppingSchema.nullable().default(null),
    /** A checkpoint every N steps (and at the stage's end); null: every epoch. */
    checkpointEvery: positiveInt.nullable().default(null),
    /** A step whose loss is not finite: stop the stage (keeping the last good checkpoint) or skip it. */
    nonFinite: z.enum(["stop", "skip"]).default("stop"),
  })
  .strict();

/** A column by header name / JSON key, or by 0-based index (files without a header). */
const columnRef = z.union([z.string().min(1), z.number().int().min(0)]);

/** The user's own TSV / CSV / JSONL dataset (ts/data/datasets.ts registerConfigDatasets): pairs, or text for lmText. */
export const UserDatasetSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.' and '-' only"),
    /** wikiextractor: text, each file a WikiExtractor output folder (or one wiki_NN file), one LM document an article. */
    format: z.enum(["tsv", "csv", "jsonl", "wikiextractor"]),
    /** CSV/TSV: whether the first line names the columns. */
    header: z.boolean().default(true),
    /** Split -> file, relative to the data dir or absolute; must include trainSplit. */
    files: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, "a split name"), z.string().min(1)),
    /** Pairs: s1, s2 and label and/or score (id optional); text: text. */
    columns: z
      .object({
        s1: columnRef.optional(),
        s2: columnRef.optional(),
        label: columnRef.optional(),
        score: columnRef.optional(),
        id: columnRef.optional(),
        text: columnRef.optional(),
      })
      .strict()
      .refine((c) => c.text !== undefined || (c.s1 !== undefined && c.s2 !== undefined), "give s1 and s2 (pairs) or text (text)")
      .optional(),
    /** Raw label -> NLI label; without it the usual spellings (entailment, 0, ...) are accepted. */
    labels: z.record(z.enum(NLI_LABELS)).optional(),
    trainSplit: z.string().default("train"),
  })
  .strict()
  .refine((d) => Object.hasOwn(d.files, d.trainSplit), { message: "files must include the training split (trainSplit, default train)", path: ["files"] })
  .refine((d) => (d.format === "wikiextractor") === (d.columns === undefined), {
    message: "tsv / csv / jsonl need columns; wikiextractor (articles) takes none",
    path: ["columns"],
  });

export const DataSchema = z
  .object({
    /** The user's own datasets, usable by name below (pairs: mypairs, lmText: [mytext]). */
    datasets: z.array(UserDatasetSchema).default([]),
    /** Pair dataset of the sentence stages (siamese, triplet, contrastive). */
    pairs: z.string().default("snli"),
    /** Its training split, and the validation split tried first. */
    trainSplit: z.string().default("train"),
    validSplit: z.string().default("dev"),
    /** Where one split both trains and validates (no training split; or one file, or validSplit = trainSplit), this
     * seeded share of it validates: more than 0, as the sentence stages need validation pairs. */
    holdout: z.number().gt(0, "a share of pairs held out for validation: more than 0").lt(1).default(0.1),
    /** At most this many training pairs (a seeded subsample); null: all. */
    maxTrainPairs: positiveInt.nullable().default(null),
    /** At most this many validation pairs; null: all. */
    maxValidPairs: positiveInt.nullable().default(null),
    /** A seeded share of a task dataset's training rows (groups: whole groups), by the dataset as tasks name it,
     * e.g. { cad: 0.25 }: data-size curves without new files. The validation rows stay as they are. */
    subsample: z.record(splitRef, z.number().gt(0).max(1)).optional(),
    /** Extra language-model text (text datasets' training splits); the pair dataset's training sentences always count. */
    lmText: z.array(splitRef).default([]),
    /** Share of the LM text held out for LM validation (by a seeded hash of each text). */
    lmHoldout: unit.default(0.05),
  })
  .strict();

export const TokenizerSchema = z
  .object({
    caseMarkers: z.boolean().default(true),
    addEos: z.boolean().default(false),
    /** Longest token list kept per sentence (xxbos included; LM text is not cut); null: no limit. Why 512: DEFAULT_MAX_LEN. */
    maxLen: positiveInt.nullable().default(DEFAULT_MAX_LEN),
  })
  .strict();

export const VocabSchema = z
  .object({
    minFreq: positiveInt.default(3),
    maxSize: z.number().int().min(16).default(60_000),
    /** Rows for words the vocabulary lacks, by hash (ts/data/vocab.ts), instead of one shared xxunk; 0: xxunk. */
    oovBuckets: z.number().int().min(0).max(1_000_000).default(0),
  })
  .strict();

export interface PresetSizes {
  emb_sz: number;
  n_hid: number;
  n_layers: number;
}

/** Each architecture's size presets, the backend's ARCH_PRESETS (py/bridge_backend/models/archs.py;
 * test/backend/describe.test.ts compares them). A SHA-RNN's layers are all emb_sz wide, n_hid its Boom's width. */
export const ARCH_PRESETS = {
  awd_lstm: {
    ulmfit: { emb_sz: 400, n_hid: 1150, n_layers: 3 },
    cpu_medium: { emb_sz: 300, n_hid: 512, n_layers: 2 },
    cpu_small: { emb_sz: 200, n_hid: 256, n_layers: 2 },
    tiny: { emb_sz: 16, n_hid: 32, n_layers: 2 },
  },
  sha_rnn: {
    sha_rnn_paper: { emb_sz: 1024, n_hid: 4096, n_layers: 4 },
    cpu_medium: { emb_sz: 300, n_hid: 1200, n_layers: 2 },
    cpu_small: { emb_sz: 200, n_hid: 800, n_layers: 2 },
    tiny: { emb_sz: 16, n_hid: 64, n_layers: 2 },
  },
} as const satisfies Record<Arch, Record<string, PresetSizes>>;

export type Preset = { [A in Arch]: keyof (typeof ARCH_PRESETS)[A] & string }[Arch];
/** Every arch's preset names, once each (the config's model.preset enum). */
export const PRESETS = [...new Set(ARCHS.flatMap((a) => Object.keys(ARCH_PRESETS[a])))] as [Preset, ...Preset[]];

/** The sizes of `preset` for `arch`, or undefined where that arch has no such preset. */
export function presetSizes(arch: Arch, preset: string): PresetSizes | undefined {
  const presets: Record<string, PresetSizes> = ARCH_PRESETS[arch];
  return Object.hasOwn(presets, preset) ? presets[preset] : undefined;
}

/**
 * The arch of a model config or a run's build args (a config's `model`, a manifest's `model`): absent, awd_lstm, as
 * every config written before SHA-RNN. The one place the TypeScript side reads an arch (the backend's: arch_of).
 */
export function archOf(model: { arch?: unknown } | null | undefined): Arch {
  const arch = model?.arch ?? "awd_lstm";
  if (typeof arch !== "string" || !(ARCHS as readonly string[]).includes(arch))
    throw new TypeError(`model.arch ${JSON.stringify(arch)}: not one of ${ARCHS.join(", ")}`);
  return arch as Arch;
}

/** The backend's `build` arguments that the config may set (py/bridge_backend/ops/model.py). */
export const ModelSchema = z
  .object({
    /** awd_lstm (absent: the default); sha_rnn: LSTM layers, one causal attention head in the second-to-last, a Boom
     * feed-forward layer per block, every layer emb_sz wide and n_hid the Boom's width (py/bridge_backend/models/sha_rnn.py). */
    arch: z.enum(ARCHS).optional(),
    /** Sizes by name, of the arch's presets (ARCH_PRESETS): ulmfit and sha_rnn_paper are each paper's (a GPU's). */
    preset: z.enum(PRESETS).default("cpu_small"),
    emb_sz: positiveInt.optional(),
    n_hid: positiveInt.optional(),
    n_layers: positiveInt.optional(),
    bidir: z.boolean().optional(),
    embed_p: unit.optional(),
    input_p: unit.optional(),
    hidden_p: unit.optional(),
    weight_p: unit.optional(),
    output_p: unit.optional(),
    tie_weights: z.boolean().optional(),
    /** sha_rnn: earlier tokens of an LM stream its attention also sees (its memory, reset with the LSTM states). */
    mem_len: z.number().int().min(0).optional(),
    /** sha_rnn: a sentence's attention (sentence objectives, eval, embed): full (the backend's default; every token sees
     * the sentence's real tokens, padding masked) or causal (its states are what the LM computed for the same tokens). */
    sentence_attention: z.enum(SENTENCE_ATTENTIONS).optional(),
    /** Reads text right to left (ULMFiT's backward LM): LM streams run over reversed texts, sentences are reversed. */
    backwards: z.boolean().optional(),
    /** LM output layer: the (tied) full softmax, or an adaptive softmax (faster for big vocabularies; exact perplexity). */
    softmax: z.enum(["full", "adaptive"]).optional(),
    /** Adaptive softmax: ids where its tail clusters start, increasing (default [vocab/15, vocab/3]). */
    cutoffs: z.array(positiveInt).min(1).optional(),
    /** Two encoders, a forward and a backward LM's (ULMFiT's fwd + bwd, started with init: { from, backward }); a
     * sentence vector is both pooled vectors side by side. Sentence objectives only: each LM trains in a run of its own. */
    dual_lm: z.boolean().optional(),
    pool: z.enum(["last", "mean", "max", "concat"]).default("concat"),
    /** top: the last layer's pooled vector; all: every layer's side by side; mix: all under ELMo's learned mix (a
     * softmax weight per layer, the embedding's included with pool_emb, and a scale), trained by the stage's objectives. */
    pool_layers: z.enum(["top", "all", "mix"]).default("top"),
    /** Also pool the embedding layer's output (word identity, as a bag of words keeps it) beside the LSTM layers'. */
    pool_emb: z.boolean().optional(),
    /** Mean pooling weighted per token: idf = inverse document frequency over the training sentences
     * (computed once by the run, stored in its checkpoints, so eval and embed weigh alike). */
    pool_weighting: z.enum(["none", "idf"]).optional(),
    /** SIF (Arora et al. 2017): remove the sentence vectors' first principal component, fitted on the
     * training sentences at the end of each sentence stage and stored with the weights. */
    sif: z.boolean().optional(),
    /** A learned linear projection of the pooled vector to this width (trained by the sentence objectives). */
    proj_dim: positiveInt.nullable().optional(),
    features: z.enum(["uv", "infersent"]).default("infersent"),
    /** The NLI classifier's input per sentence: the sentence vector, and with max (or last) also that pooling of the
     * same layers (InferSent's max pooling for NLI); the similarity objectives and `embed` still see the vector only. */
    head_pool: z.enum(["none", "max", "last"]).optional(),
    /** With pool_layers mix: the NLI classifier gets a scalar mix of its own (ELMo learns one per task); the sentence
     * vector (embed, the similarity objectives) keeps the shared one. */
    head_mix: z.boolean().optional(),
    head_hidden: z.number().int().min(0).default(512),
    head_p: unit.default(0.1),
  })
  .strict();

/** Where the first stage's encoder (and its LM decoder) starts instead of random weights (ts/train/init.ts). */
export const InitSchema = z
  .object({
    /** A run name (runs/NAME), a bridge checkpoint file or `bridge import` folder, fastai:wt103-fwd | fastai:wt103-bwd, or
     * pretrained:NAME (wiki-fwd, wiki-bwd, wiki-fwd-sha, or a pretraining config's path): built once into the model cache, then reused. */
    from: z.string().min(1).optional(),
    /** With model.dual_lm: the backward LM (a source as `from`) for the backward encoder; `from` is then the forward one. */
    backward: z.string().min(1).optional(),
    /** A training config (relative to this config's folder) that builds `from` as a run of that name when there is
     * none yet: a pretrained LM trained once, on first use, then reused by every run (fastai downloads WT103 once). */
    build: z.string().min(1).optional(),
    /** Pretrained word vectors for the embedding rows of the words they know (the other weights stay random):
     * a GloVe / word2vec / fastText text file or a JSON {word: [numbers]}, relative to the data dir. */
    wordVectors: z.string().min(1).optional(),
  })
  .strict()
  .refine((i) => i.from !== undefined || i.wordVectors !== undefined, {
    message: "init needs from (pretrained weights) or wordVectors (pretrained word vectors)",
  })
  .refine((i) => i.from === undefined || i.wordVectors === undefined, {
    message: "init.from brings its own embedding (new words start from its mean row): drop init.wordVectors, or init.from",
    path: ["wordVectors"],
  })
  .refine((i) => i.from !== undefined || (i.backward === undefined && i.build === undefined), {
    message: "init.backward and init.build go with init.from",
    path: ["from"],
  })
  .refine((i) => i.build === undefined || /^[A-Za-z0-9._-]+$/.test(i.from ?? ""), {
    message: "init.build trains init.from as a run: from must then be a run name",
    path: ["from"],
  });

/** Stage keys that older configs (and the runs they made) used for what are objectives' options now. */
const LEGACY_OPTION_KEYS = ["margin", "distance", "temperature", "alpha", "beta"];

/**
 * An older stage's `temperature: 0.05` (etc.) read as `options: { temperature: 0.05 }`. Older configs gave these keys
 * on any stage and the objectives that had no use for them ignored them: such a key is dropped here too, so the runs
 * they made still load and resume. A key given both ways with different values is an error naming both.
 */
function liftLegacyOptions(stage: unknown, ctx: z.RefinementCtx): unknown {
  if (!isPlainObject(stage)) return stage;
  const legacy = LEGACY_OPTION_KEYS.filter((k) => Object.hasOwn(stage, k));
  if (legacy.length === 0 || (stage.options !== undefined && !isPlainObject(stage.options))) return stage; // the schema names a bad options
  const declared = optionsTaken(stage);
  const given = (stage.options ?? {}) as Record<string, unknown>;
  const lifted: Record<string, unknown> = {};
  for (const k of legacy.filter((key) => declared.has(key))) {
    if (Object.hasOwn(given, k) && given[k] !== stage[k]) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: [k],
        message: `${JSON.stringify(stage[k])} here and ${JSON.stringify(given[k])} in options.${k}: give it once, as options.${k}`,
      });
    }
    lifted[k] = stage[k];
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(stage)) if (!legacy.includes(k)) out[k] = v;
  if (Object.keys(lifted).length > 0 || stage.options !== undefined) out.options = { ...lifted, ...given };
  return out;
}

/** The objectives a stage names before validation (stageObjectives' raw twin): its own and its tasks', each once. */
export function rawStageObjectives(stage: unknown): string[] {
  if (!isPlainObject(stage)) return [];
  const tasks = Array.isArray(stage.tasks) ? stage.tasks.map((t) => (isPlainObject(t) ? t.objective : undefined)) : [];
  return [...new Set([stage.objective, ...tasks].filter((o): o is string => typeof o === "string"))];
}

/** The options a stage's objectives take. */
function optionsTaken(stage: Record<string, unknown>): Set<string> {
  return new Set(rawStageObjectives(stage).flatMap((o) => (Object.hasOwn(OBJECTIVE_SPECS, o) ? Object.keys(OBJECTIVE_SPECS[o as Objective].options) : [])));
}

/**
 * The older option keys (`margin: 5` on a stage) that none of the stage's objectives take: liftLegacyOptions drops
 * them so that old runs' config.json still load, but in a config a user writes they are mistakes to name.
 */
export function unusedLegacyKeys(stage: unknown): string[] {
  if (!isPlainObject(stage)) return [];
  // a stage without objectives, or with one not known, gets the schema's own message for that first
  const objectives = rawStageObjectives(stage);
  if (objectives.length === 0 || objectives.some((o) => !Object.hasOwn(OBJECTIVE_SPECS, o))) return [];
  const taken = optionsTaken(stage);
  return LEGACY_OPTION_KEYS.filter((k) => Object.hasOwn(stage, k) && !taken.has(k));
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

export const ConfigSchema = z
  .object({
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(42),
    /** torch device for the backend; null: cuda when there is one, else cpu. */
    device: z
      .string()
      .regex(/^(cpu|cuda(:\d+)?|mps)$/, "a torch device bridge runs on: cpu, cuda, cuda:N or mps")
      .nullable()
      .default(null),
    /** torch's CPU threads in the backend (OMP_NUM_THREADS); null: torch's default (one per core).
     * On cores shared with other work, 1 avoids OpenMP threads waiting on each other. */
    threads: positiveInt.nullable().default(null),
    /** Requests of training steps (stepsPerRequest each) kept in flight to the backend (2+: the backend never
     * waits for the next batch). */
    pipelineDepth: z.number().int().min(1).max(16).default(3),
    /** Training steps sent in one request (train_steps): fewer messages when steps are fast. Absent:
     * DEFAULT_STEPS_PER_REQUEST. Neither this nor pipelineDepth changes what is trained, only how it travels. */
    stepsPerRequest: z.number().int().min(1).max(64).optional(),
    data: DataSchema.default({}),
    tokenizer: TokenizerSchema.default({}),
    vocab: VocabSchema.default({}),
    model: ModelSchema.default({}),
    /** Pretrained weights for the first stage (vocabulary matched as ULMFiT does); null: random. */
    init: InitSchema.nullable().default(null),
    stages: z.array(z.preprocess(liftLegacyOptions, StageSchema)).min(1, "a config needs at least one stage"),
  })
  .strict()
  .superRefine((c, ctx) => {
    const arch = archOf(c.model);
    const sizes = presetSizes(arch, c.model.preset);
    if (sizes === undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["model", "preset"],
        message: `preset ${c.model.preset} is not one of arch ${arch}'s: ${Object.keys(ARCH_PRESETS[arch]).join(", ")}`,
      });
    }
    for (const key of ["mem_len", "sentence_attention"] as const) {
      if (arch !== "sha_rnn" && c.model[key] !== undefined) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["model", key],
          message: `${key} is a sha_rnn setting (its attention); arch ${arch} has none: drop it or set model.arch: sha_rnn`,
        });
      }
    }
    if (arch === "sha_rnn" && sizes !== undefined && (c.model.emb_sz !== undefined || c.model.n_hid !== undefined)) {
      const emb = c.model.emb_sz ?? sizes.emb_sz;
      const hid = c.model.n_hid ?? sizes.n_hid;
      if (hid < emb || hid % emb !== 0) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["model", "n_hid"],
          message: `sha_rnn's n_hid is its Boom width, a multiple of emb_sz (${emb}, e.g. ${4 * emb}): got ${hid}`,
        });
      }
    }
    if (arch === "sha_rnn" && c.model.bidir) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["model", "bidir"],
        message: "sha_rnn is a one-directional LM (causal attention): drop bidir (dual_lm pairs a forward and a backward one)",
      });
    }
    if (c.model.backwards && c.model.bidir) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["model", "backwards"],
        message: "backwards reverses a one-directional encoder; a bidir encoder already reads both ways",
      });
    }
    if (c.model.dual_lm && (c.model.bidir || c.model.backwards)) {
      const key = c.model.bidir ? "bidir" : "backwards";
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["model", key],
        message: `dual_lm holds a forward and a backward one-directional encoder of its own; drop ${key}`,
      });
    }
    if (c.init?.backward !== undefined && !c.model.dual_lm) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["init", "backward"],
        message: "a backward LM starts the backward encoder of a model.dual_lm model; set model.dual_lm: true (or drop init.backward)",
      });
    }
    if (c.model.head_mix) {
      const without = c.stages.findIndex((s) => (s.poolLayers ?? c.model.pool_layers) !== "mix");
      if (c.model.proj_dim != null || without !== -1)
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["model", "head_mix"],
          message:
            c.model.proj_dim != null
              ? "head_mix cannot go with proj_dim: the projection is sized and trained for the shared mix"
              : `head_mix gives the classifier its own scalar mix of the layers: it needs pool_layers mix (stage ${without + 1} pools ${c.stages[without].poolLayers ?? c.model.pool_layers})`,
        });
    }
    const cuts = c.model.cutoffs ?? [];
    if (cuts.some((v, i) => i > 0 && v <= cuts[i - 1]))
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["model", "cutoffs"], message: `cutoffs must increase, got [${cuts.join(", ")}]` });
    if (c.model.cutoffs !== undefined && c.model.softmax !== "adaptive")
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["model", "cutoffs"],
        message: `cutoffs shape the adaptive softmax only; softmax is ${c.model.softmax ?? "full (the default)"}: set softmax: adaptive, or drop cutoffs`,
      });
    const names = new Set<string>();
    c.stages.forEach((s, i) => {
      const name = stageName(s);
      if (names.has(name))
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["stages", i, "name"],
          message: `two stages are named ${JSON.stringify(name)}; give each a distinct name`,
        });
      names.add(name);
      if (s.objective === "lm") {
        const unused = (["pool", "poolLayers", "features"] as const).filter((k) => s[k] !== undefined);
        if (unused.length > 0)
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ["stages", i, unused[0]],
            message: `a language-model stage makes no sentence vectors: ${unused.join(", ")} ${unused.length === 1 ? "applies" : "apply"} to sentence stages only`,
          });
      }
      if ((s.objective === undefined) === (s.tasks === undefined)) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["stages", i],
          message: `stage ${i + 1} needs either objective (one objective on data.pairs) or tasks (a multi-task stage), ${s.objective === undefined ? "got neither" : "not both"}`,
        });
        return;
      }
      const taskNames = new Set<string>();
      s.tasks?.forEach((t, k) => {
        if (!TASK_OBJECTIVES.includes(t.objective)) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ["stages", i, "tasks", k, "objective"],
            message: `a task trains on sentence pairs or groups; ${t.objective} does not (task objectives: ${TASK_OBJECTIVES.join(", ")})`,
          });
        }
        const tn = taskName(t);
        if (taskNames.has(tn))
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ["stages", i, "tasks", k, "name"],
            message: `two tasks of stage ${JSON.stringify(name)} are named ${JSON.stringify(tn)}; give each a distinct name`,
          });
        taskNames.add(tn);
        for (const [key, message] of optionsProblems(t.options ?? {}, [t.objective]))
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["stages", i, "tasks", k, "options", key], message });
      });
      for (const [key, message] of optionsProblems(s.options ?? {}, stageObjectives(s)))
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["stages", i, "options", key], message });
      if (s.objective !== undefined && OBJECTIVE_SPECS[s.objective].data === "groups") {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["stages", i, "objective"],
          message: `${s.objective} trains on groups of sentences, not on data.pairs: give it as a task, e.g. tasks: [{ dataset: multi30k, objective: ${s.objective} }]`,
        });
      }
      if (s.objective === "lm" && c.model.bidir) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["stages", i, "objective"],
          message: "a bidirectional encoder cannot be trained as a language model (model.bidir is true)",
        });
      }
      if (s.objective === "lm" && c.model.dual_lm) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["stages", i, "objective"],
          message:
            "a model.dual_lm model trains sentence objectives only: train each LM in a run of its own (configs/pretrain.yaml, pretrain-bwd.yaml) and start from both with init: { from: FORWARD_RUN, backward: BACKWARD_RUN }",
        });
      }
      const metrics = stageMetrics(s);
      if (s.earlyStopping && !metrics.includes(s.earlyStopping.metric)) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["stages", i, "earlyStopping", "metric"],
          message: `stage ${JSON.stringify(name)} (${stageObjectives(s).join(" + ")}) never reports ${s.earlyStopping.metric}; it has ${metrics.join(", ")}`,
        });
      }
    });
  });

export type Config = z.infer<typeof ConfigSchema>;
export type StageConfig = z.infer<typeof StageSchema>;
export type LrConfig = z.infer<typeof LrSchema>;

export type TaskConfig = z.infer<typeof TaskSchema>;

/** A stage's name: its own, else its objective, else "multitask". */
export function stageName(s: Pick<StageConfig, "name" | "objective">): string {
  return s.name ?? s.objective ?? "multitask";
}

/** A task's name: its own, else DATASET-OBJECTIVE (e.g. stsb-cosent). */
export function taskName(t: TaskConfig): string {
  return t.name ?? `${t.dataset.split(":")[0]}-${t.objective}`;
}

/** The objectives a stage trains: its one objective, or its tasks' (in order, without repeats). */
export function stageObjectives(s: Pick<StageConfig, "objective" | "tasks">): Objective[] {
  if (s.tasks) return [...new Set(s.tasks.map((t) => t.objective))];
  return s.objective === undefined ? [] : [s.objective];
}

/**
 * What a stage's objectives together declare: metrics any of them yields, `headOnly` if every one trains only through
 * the classifier head (gradual unfreezing may then start from the head alone), shardable if all are.
 */
export function stageSpec(s: Pick<StageConfig, "objective" | "tasks">): {
  metrics: Metric[];
  headOnly: boolean;
  shardable: boolean;
  lm: boolean;
} {
  const specs: ObjectiveSpec[] = stageObjectives(s).map((o) => OBJECTIVE_SPECS[o]);
  return {
    metrics: METRICS.filter((m) => specs.some((sp) => sp.metrics.includes(m))),
    headOnly: specs.length > 0 && specs.every((sp) => sp.usesHead),
    shardable: specs.every((sp) => sp.shardable),
    lm: s.objective === "lm",
  };
}

/** The validation metrics a stage reports (what earlyStopping may watch). */
export function stageMetrics(s: Pick<StageConfig, "objective" | "tasks">): Metric[] {
  return stageSpec(s).metrics;
}
