/**
 * Every objective a stage can train, described once on this side: what it trains on, what it reports, and the
 * loss settings (options) a stage or task may give it. The backend declares the same objectives and options
 * (py/bridge_backend/objectives/); test/backend/describe.test.ts holds the two alike.
 *
 * Options travel with every train_step / eval_step as the objective's step options, resolved per task:
 * the task's own value, else the stage's, else the default declared here.
 */

/** A stage's validation metrics (ts/train/validation.ts computes them from the backend's eval_step replies). */
export const METRICS = ["val_loss", "val_accuracy", "val_perplexity", "val_spearman"] as const;
export type Metric = (typeof METRICS)[number];

/** A numeric loss setting (a margin, a temperature). */
export interface NumberOption {
  type: "number";
  default: number;
  /** positive: > 0; non_negative: >= 0. */
  bound?: "positive" | "non_negative";
  doc: string;
}

/** A loss setting that is one of a few names (a distance). */
export interface ChoiceOption {
  type: "choice";
  default: string;
  choices: readonly string[];
  doc: string;
}

export type OptionSpec = NumberOption | ChoiceOption;
export type OptionValue = number | string;
/** Option values as a stage or task gives them, or as a step sends them (every declared option resolved). */
export type ObjectiveOptions = Record<string, OptionValue>;

export interface ObjectiveSpec {
  /** What a stage trains on (ts/train/stages.ts): LM streams of the training text, NLI-labelled sentence pairs,
   * pairs with a similarity score (STS-B, SICK relatedness), single sentences, or groups of sentences with one
   * meaning (an image's captions; a task's dataset of kind groups). */
  data: "lm_stream" | "pairs" | "scored_pairs" | "sentences" | "groups";
  /** The validation metrics a stage of this objective produces (what earlyStopping may watch). */
  metrics: readonly Metric[];
  /** Trains the model's top parameter group (the LM decoder, the classifier head); false: that group has no
   * gradients (triplet / contrastive losses work on the pooled vectors), so unfreezing starts below it. */
  usesHead: boolean;
  /** Whether --nproc N can split a batch across ranks: false where the loss scores each row against the rest
   * of its batch (in-batch negatives), as N shards of B/N rows are then not one batch of B rows. */
  shardable: boolean;
  /** The loss settings a stage or task may give (`options: { temperature: 0.1 }`), with their defaults. */
  options: Readonly<Record<string, OptionSpec>>;
}

const TEMPERATURE: NumberOption = { type: "number", default: 0.05, bound: "positive", doc: "the InfoNCE temperature (SimCSE's)" };

/** Every objective, described once: a new objective is one entry here (and its module in the backend). */
export const OBJECTIVE_SPECS = {
  lm: {
    data: "lm_stream",
    metrics: ["val_loss", "val_accuracy", "val_perplexity"],
    usesHead: true,
    shardable: true,
    options: {
      alpha: { type: "number", default: 2, bound: "non_negative", doc: "AR: activation regularisation on the dropped top LM states" },
      beta: { type: "number", default: 1, bound: "non_negative", doc: "TAR: temporal activation regularisation on the raw top LM states" },
    },
  },
  siamese: { data: "pairs", metrics: ["val_loss", "val_accuracy"], usesHead: true, shardable: true, options: {} },
  triplet: {
    data: "pairs",
    metrics: ["val_loss", "val_accuracy"],
    usesHead: false,
    shardable: true,
    options: {
      margin: { type: "number", default: 0.5, bound: "positive", doc: "the triplet margin (0.5 suits cosine distance; ~1 Euclidean)" },
      distance: { type: "choice", default: "cosine", choices: ["cosine", "euclidean"], doc: "the distance between sentence vectors" },
    },
  },
  contrastive: { data: "pairs", metrics: ["val_loss", "val_accuracy"], usesHead: false, shardable: false, options: { temperature: TEMPERATURE } },
  simcse: { data: "sentences", metrics: ["val_loss", "val_accuracy"], usesHead: false, shardable: false, options: { temperature: TEMPERATURE } },
  // similarity objectives: cosine of the two pooled vectors against the gold score (scaled to 0..1)
  cosent: {
    data: "scored_pairs",
    metrics: ["val_loss", "val_spearman"],
    usesHead: false,
    shardable: false,
    options: { scale: { type: "number", default: 20, bound: "positive", doc: "the factor on the cosines before the pairwise softplus" } },
  },
  cosine_mse: { data: "scored_pairs", metrics: ["val_loss", "val_spearman"], usesHead: false, shardable: true, options: {} },
  // multi-positive InfoNCE over groups (a task on a groups dataset such as multi30k)
  supcon: { data: "groups", metrics: ["val_loss", "val_accuracy"], usesHead: false, shardable: false, options: { temperature: TEMPERATURE } },
} as const satisfies Record<string, ObjectiveSpec>;

export type Objective = keyof typeof OBJECTIVE_SPECS;
export const OBJECTIVES = Object.keys(OBJECTIVE_SPECS) as [Objective, ...Objective[]];

/** Objectives a multi-task stage can mix: those that train on sentence pairs (NLI-labelled or scored) or groups. */
export const TASK_OBJECTIVES = OBJECTIVES.filter((o) => ["pairs", "scored_pairs", "groups"].includes(OBJECTIVE_SPECS[o].data));

/** What a task's dataset kind can train: pairs the pair objectives; groups supcon, and contrastive with one pair of
 * each group an epoch as anchor and positive. */
export function objectiveTakes(objective: Objective, datasetKind: "pairs" | "groups" | "text"): boolean {
  const data = OBJECTIVE_SPECS[objective].data;
  if (datasetKind === "groups") return data === "groups" || objective === "contrastive";
  return datasetKind === "pairs" && (data === "pairs" || data === "scored_pairs");
}

function optionSpecs(objective: Objective): Readonly<Record<string, OptionSpec>> {
  return OBJECTIVE_SPECS[objective].options;
}

/** Why `value` does not suit `spec`, or null when it does. */
export function optionProblem(spec: OptionSpec, value: OptionValue): string | null {
  if (spec.type === "choice") return spec.choices.includes(value as string) ? null : `must be one of ${spec.choices.join(", ")}, got ${JSON.stringify(value)}`;
  if (typeof value !== "number" || !Number.isFinite(value)) return `must be a finite number, got ${JSON.stringify(value)}`;
  if (spec.bound === "positive" && !(value > 0)) return `must be > 0, got ${value}`;
  if (spec.bound === "non_negative" && !(value >= 0)) return `must be >= 0, got ${value}`;
  return null;
}

/** The options `objectives` take, as "name (objective)" for messages. */
function offered(objectives: readonly Objective[]): string {
  const names = objectives.flatMap((o) => Object.keys(optionSpecs(o)).map((k) => `${k} (${o})`));
  return names.length ? names.join(", ") : "none";
}

/**
 * Problems of an `options` map given to a stage (`objectives`: all of the stage's) or to a task (its one
 * objective), as [key, message]: every key must be an option of one of them, and its value must suit each that
 * declares it.
 */
export function optionsProblems(options: ObjectiveOptions, objectives: readonly Objective[]): [string, string][] {
  const out: [string, string][] = [];
  for (const [key, value] of Object.entries(options)) {
    const declaring = objectives.filter((o) => Object.hasOwn(optionSpecs(o), key));
    if (declaring.length === 0) {
      out.push([key, `${objectives.join(" + ")} take${objectives.length === 1 ? "s" : ""} no option ${JSON.stringify(key)}; options: ${offered(objectives)}`]);
      continue;
    }
    for (const o of declaring) {
      const problem = optionProblem(optionSpecs(o)[key], value);
      if (problem) {
        out.push([key, `${o}'s ${key} ${problem}`]);
        break;
      }
    }
  }
  return out;
}

/** Every option `objective` declares, resolved: the task's value, else the stage's, else the declared default. */
export function resolveOptions(objective: Objective, stage: ObjectiveOptions | undefined, task?: ObjectiveOptions): ObjectiveOptions {
  const out: ObjectiveOptions = {};
  for (const [key, spec] of Object.entries(optionSpecs(objective))) out[key] = task?.[key] ?? stage?.[key] ?? spec.default;
  return out;
}
