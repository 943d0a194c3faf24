/**
 * The training config: one YAML/JSON file, validated here with zod so that a bad value is refused
 * before any data is read, with the field's path, the value and what is allowed. Every default
 * lives in this file; the resolved config (defaults filled in, --set applied) is what a run saves.
 *
 * Shape: seed, data (which splits train and validate), tokenizer, vocab, model (the backend's
 * `build` arguments), stages (run in order, each from the previous stage's encoder).
 */
import { z } from "zod";

const positiveInt = z.number().int().positive();
const unit = z.number().min(0).lt(1);

export const OBJECTIVES = ["lm", "siamese", "triplet", "contrastive", "simcse"] as const;
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
    metric: z.enum(["val_loss", "val_accuracy", "val_perplexity"]),
    /** Evaluations without improvement before the stage stops. */
    patience: positiveInt.default(3),
    minDelta: z.number().min(0).default(0),
  })
  .strict();

export const StageSchema = z
  .object({
    /** Names the stage in logs and checkpoint files; defaults to the objective. */
    name: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, "letters, digits, '_' and '-' only")
      .optional(),
    objective: z.enum(OBJECTIVES),
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
    /** Gradual unfreezing (ULMFiT): the top group first, one more group every `unfreezeEvery` steps
     * (default: every epoch); false trains every group from the start. */
    gradualUnfreeze: z.boolean().default(false),
    unfreezeEvery: positiveInt.nullable().default(null),
    /** Loss settings: triplet margin / distance, InfoNCE temperature; AR / TAR for the LM. */
    margin: z.number().positive().optional(),
    distance: z.enum(["cosine", "euclidean"]).optional(),
    temperature: z.number().positive().optional(),
    alpha: z.number().min(0).optional(),
    beta: z.number().min(0).optional(),
    /** Head settings of this stage's model (the encoder carries over by name). */
    pool: z.enum(["last", "mean", "max", "concat"]).optional(),
    poolLayers: z.enum(["top", "all"]).optional(),
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

/** A dataset split as NAME:SPLIT (ts/data/datasets.ts), e.g. snli:train, wikitext-2:train, brown. */
const splitRef = z.string().regex(/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/, "NAME or NAME:SPLIT, e.g. snli:train");

export const DataSchema = z
  .object({
    /** Pair dataset of the sentence stages (siamese, triplet, contrastive). */
    pairs: z.string().default("snli"),
    /** Its training split, and the validation split tried first. */
    trainSplit: z.string().default("train"),
    validSplit: z.string().default("dev"),
    /** Without the training split, the validation split is used for both: this seeded share of it validates. */
    holdout: unit.default(0.1),
    /** At most this many training pairs (a seeded subsample); null: all. */
    maxTrainPairs: positiveInt.nullable().default(null),
    /** At most this many validation pairs; null: all. */
    maxValidPairs: positiveInt.nullable().default(null),
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
    /** Longest token list kept per text (xxbos included); null: no limit. */
    maxLen: positiveInt.nullable().default(null),
  })
  .strict();

export const VocabSchema = z
  .object({
    minFreq: positiveInt.default(3),
    maxSize: z.number().int().min(16).default(60_000),
  })
  .strict();

/** The backend's `build` arguments that the config may set (py/bridge_backend/ops/model.py). */
export const ModelSchema = z
  .object({
    preset: z.enum(["ulmfit", "cpu_medium", "cpu_small", "tiny"]).default("cpu_small"),
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
    pool: z.enum(["last", "mean", "max", "concat"]).default("concat"),
    pool_layers: z.enum(["top", "all"]).default("top"),
    features: z.enum(["uv", "infersent"]).default("infersent"),
    head_hidden: z.number().int().min(0).default(512),
    head_p: unit.default(0.1),
  })
  .strict();

export const ConfigSchema = z
  .object({
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(42),
    /** torch device for the backend; null: cuda when there is one, else cpu. */
    device: z.string().nullable().default(null),
    /** torch's CPU threads in the backend (OMP_NUM_THREADS); null: torch's default (one per core).
     * On cores shared with other work, 1 avoids OpenMP threads waiting on each other. */
    threads: positiveInt.nullable().default(null),
    /** Steps kept in flight to the backend (2+: the backend never waits for the next batch). */
    pipelineDepth: z.number().int().min(1).max(16).default(3),
    data: DataSchema.default({}),
    tokenizer: TokenizerSchema.default({}),
    vocab: VocabSchema.default({}),
    model: ModelSchema.default({}),
    stages: z.array(StageSchema).min(1, "a config needs at least one stage"),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    c.stages.forEach((s, i) => {
      const name = s.name ?? s.objective;
      if (names.has(name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["stages", i, "name"], message: `two stages are named ${JSON.stringify(name)}; give each a distinct name` });
      names.add(name);
      if (s.objective === "lm" && c.model.bidir) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["stages", i, "objective"], message: "a bidirectional encoder cannot be trained as a language model (model.bidir is true)" });
      }
    });
  });

export type Config = z.infer<typeof ConfigSchema>;
export type StageConfig = z.infer<typeof StageSchema>;
export type LrConfig = z.infer<typeof LrSchema>;
export type Objective = (typeof OBJECTIVES)[number];

export function stageName(s: StageConfig): string {
  return s.name ?? s.objective;
}
