/**
 * The protocol's op catalogue: for every op the backend serves (py/bridge_backend/ops/*.py, `@op(name)`), the
 * arguments it reads and the result it replies with, paired in `Ops` (as esbuild's stdio_protocol.ts pairs each
 * command's request and response). `BackendClient.call(op, args, tensors)` and every other `OpCaller` are typed by
 * it, so call sites read replies without casts. Tensors travel beside args/results and are named in each op's doc.
 *
 * - Non-finite floats cross the wire as null (protocol.ts): a float that can be NaN / Infinity (a loss, a norm) is
 *   `number | null`.
 * - Which ops go to every data-parallel rank is not stated here: the backend says so in `describe`
 *   (`@op(name, every_rank=True)`), and DistributedBackend asks it at start-up.
 * - test/backend/describe.test.ts fails when the backend serves an op `OP_NAMES` lacks (or the reverse), and when
 *   the config field lists below differ from the backend's dataclasses.
 *
 * Op (args -> result; tensors in -> tensors out):
 *
 *   hello           protocol -> protocol, backend, pid, device
 *   ping            -> pong
 *   echo            anything -> args; any tensors -> the same tensors
 *   introspect      -> versions, device, threads, cuda, model? (as model_info)
 *   describe        -> protocol, backend, ops, objectives, enums, presets, defaults
 *   shutdown        -> bye (the backend then exits its loop)
 *   sleep           seconds -> slept
 *   emit            count?, level? -> emitted (after pushing `count` log events)
 *   raise           type?, message? -> never replies with a result (an error reply)
 *   build           vocab_sz, preset?, vocab_fingerprint?, token_weights? (pool_weighting idf), any model / head /
 *                   train config field -> config, params, trainable_params, groups, trainable_groups, device, vec_dim
 *   train_step      objective, return_logits?, the objective's step options; its tensors -> StepMetrics, finite,
 *                   stepped, step, grad_norm?; logits / d_pos, d_neg / sim with return_logits (cosent, cosine_mse:
 *                   sim [bs], each pair's cosine)
 *   train_steps     steps [train_step's args]; step i's tensors named i/<name> -> steps [TrainStepResult]; tensors
 *                   back named i/<name> (several steps in one message: STEP_TENSOR_SEPARATOR)
 *   flush           -> flushed, finite, stepped, step, grad_norm?
 *   eval_step       as train_step -> StepMetrics; logits / d_pos, d_neg / sim
 *   encode          pool?, pool_layers?, normalize?, batches?; x, lengths -> count, dim; vectors [bs, d] float32
 *                   (batches n: i/x, i/lengths -> i/vectors); with job, total: also rows (i/rows) -> count, dim,
 *                   no tensors (the vectors wait in the backend, in input order)
 *   encode_result   job, discard? -> count, dim; vectors [total, d] float32 of the job, in input order (closes it)
 *   fit_pc          x [n, sl], lengths [n] -> count, dim, explained (SIF's component, stored in the model)
 *   predict         vectors?; premise(_lengths), hypothesis(_lengths) -> count; logits, probs, pred (+ u, v)
 *   generate        n?, max_len?, temperature?, top_k?, seed?; prompt? -> count; tokens [n, len], lengths [n]
 *   set_trainable   groups | freeze_to | unfreeze -> trainable_groups, trainable_params, groups
 *   set_hparams     lr?, lr_div?, any train config field, dropouts -> the train config, lrs, dropouts
 *   save            path, meta? -> path, bytes, step
 *   load            path, parts?, allow_partial?, rebuild?; vocab_map? -> parts, step, loaded, skipped, meta, built,
 *                   config? (when built), new_words? (with a vocab_map)
 *   reset_state     stream? -> {}
 *   model_info      -> tree, params, trainable_params, groups, trainable_groups, device, config, vocab_fingerprint,
 *                   step, vec_dim
 *   import_fastai   weights, vocab, out, backwards? -> path, bytes, config, itos
 *   init_from       path, backward_path?; vocab_map?, backward_vocab_map? -> loaded, skipped, copied, new, source,
 *                   meta, backward? (dual_lm)
 *   init_word_vectors seed?; vectors [vocab_sz, k] float32, known [vocab_sz] uint8 -> copied, dim, emb_sz, scale
 *   init_distributed rank, world_size, master_port, master_addr?, backend?, timeout_s? -> rank, world_size, backend
 *   fit_probe       name?, l2?, max_iter?, seed?; x [n, f], y [n] -> name, n, features, classes, train_accuracy,
 *                   iterations, loss
 *   probe_predict   name?; x [n, f] -> count; probs [n, classes], pred [n]
 */
import type { Arch, SentenceAttention } from "../core/archs.js";
import type { Tensors } from "../core/tensor.js";
import type { JsonObject, JsonValue } from "./protocol.js";

// ---- configs (py: AWDLSTMConfig, HeadConfig, TrainConfig), as `build` takes and `model_info` reports them ----

export interface ModelConfigFields {
  /** awd_lstm | sha_rnn (older checkpoints have none: awd_lstm; read it with archOf). */
  arch?: Arch;
  vocab_sz: number;
  emb_sz: number;
  n_hid: number;
  n_layers: number;
  bidir: boolean;
  pad_id: number;
  unk_id: number;
  bos_id: number;
  eos_id: number;
  /** The vocabulary's last oov_buckets ids are hashed rows for unseen words (never generated). */
  oov_buckets?: number;
  embed_p: number;
  input_p: number;
  hidden_p: number;
  weight_p: number;
  output_p: number;
  drop_mult: number;
  tie_weights: boolean;
  out_bias: boolean;
  backwards: boolean;
  softmax: string;
  cutoffs: number[];
  /** sha_rnn: the LM tokens of earlier batches its attention also sees. */
  mem_len?: number;
  /** sha_rnn: a sentence's attention, full (both sides of each token) or causal (the LM's). */
  sentence_attention?: SentenceAttention;
}

export interface HeadConfigFields {
  pool: string;
  pool_layers: string;
  features: string;
  head_hidden: number;
  head_p: number;
  n_classes: number;
  /** A forward and a backward LM's encoders, vectors concatenated; no LM head. */
  dual_lm: boolean;
  /** Also pool the embedding layer's output (same pooling), after the LSTM layers' pooled vectors. */
  pool_emb: boolean;
  /** none | idf: every mean pooling weighted per token by build's `token_weights` (kept in the checkpoints). */
  pool_weighting: string;
  /** Remove SIF's common component (fitted by `fit_pc`; none until then) from every sentence vector. */
  sif: boolean;
  /** A learned projection of the pooled vector to this width (in the top encoder group); null: none. */
  proj_dim: number | null;
  /** none | max | last: the NLI classifier also sees that pooling of the same layers beside each sentence vector. */
  head_pool: string;
  /** With pool_layers mix: the NLI classifier's own scalar mix of the layers (ELMo's per-task mix). */
  head_mix: boolean;
}

export interface TrainConfigFields {
  opt: string;
  lr: number;
  wd: number;
  mom: number;
  sqr_mom: number;
  eps: number;
  clip: number;
  accum_steps: number;
  autocast: string;
  seed: number;
}

/** Every field name of T, listed at run time; `satisfies` makes the compiler refuse a missing or extra one. */
const fieldNames = <T>(fields: Record<keyof T, true>): (keyof T & string)[] => Object.keys(fields) as (keyof T & string)[];

/** The field names of each config, for comparison with `describe`'s defaults (test/backend/describe.test.ts). */
export const CONFIG_FIELDS = {
  model: fieldNames<ModelConfigFields>({
    arch: true,
    vocab_sz: true,
    emb_sz: true,
    n_hid: true,
    n_layers: true,
    bidir: true,
    pad_id: true,
    unk_id: true,
    bos_id: true,
    eos_id: true,
    oov_buckets: true,
    embed_p: true,
    input_p: true,
    hidden_p: true,
    weight_p: true,
    output_p: true,
    drop_mult: true,
    tie_weights: true,
    out_bias: true,
    backwards: true,
    softmax: true,
    cutoffs: true,
    mem_len: true,
    sentence_attention: true,
  }),
  head: fieldNames<HeadConfigFields>({
    pool: true,
    pool_layers: true,
    features: true,
    head_hidden: true,
    head_p: true,
    n_classes: true,
    dual_lm: true,
    pool_emb: true,
    pool_weighting: true,
    sif: true,
    proj_dim: true,
    head_pool: true,
    head_mix: true,
  }),
  train: fieldNames<TrainConfigFields>({
    opt: true,
    lr: true,
    wd: true,
    mom: true,
    sqr_mom: true,
    eps: true,
    clip: true,
    accum_steps: true,
    autocast: true,
    seed: true,
  }),
};

/** A model's three configs, as a checkpoint stores them. */
export interface ModelConfigs {
  model: ModelConfigFields;
  head: HeadConfigFields;
  train: TrainConfigFields;
}

// ---- system ops (py: ops/system.py) ----

export interface HelloArgs {
  protocol: number;
}
export interface HelloResult {
  protocol: number;
  backend: string;
  pid: number;
  device: string;
}

export type NoArgs = Record<string, never>;

export interface PingResult {
  pong: true;
}

export interface EchoResult {
  /** The args sent, as the backend read them. */
  args: JsonObject;
}

export interface IntrospectResult {
  python: string;
  executable: string;
  platform: string;
  pid: number;
  torch: string;
  numpy: string;
  pyarrow: string;
  pyzmq: string;
  libzmq: string;
  device: string;
  threads: number;
  cuda: { available: boolean; version: string | null; devices: string[] };
  /** With a model built. */
  model?: ModelInfoResult;
}

export interface OpDescription {
  name: string;
  doc: string;
  /** Under data parallelism, sent to every rank (else to rank 0 alone). */
  every_rank: boolean;
}

export interface TensorDescription {
  name: string;
  kind: string;
  required: boolean;
  same_rows: boolean;
  /** Sentences: the name of their lengths tensor. */
  lengths?: string;
}

export interface StepOptionDescription {
  name: string;
  type: string;
  doc: string;
  choices?: string[];
  positive?: boolean;
}

export interface ObjectiveDescription {
  name: string;
  doc: string;
  uses_head: boolean;
  shardable: boolean;
  metrics: string[];
  tensors: { name: string; tensors: TensorDescription[] }[];
  step_options: StepOptionDescription[];
}

export interface DescribeResult {
  protocol: number;
  backend: string;
  ops: OpDescription[];
  objectives: ObjectiveDescription[];
  /** The values a config may name: preset, pool, pool_layers, pool_weighting, features, opt, distance, softmax, autocast. */
  enums: Record<string, string[]>;
  /** Each arch's presets' model sizes, by arch then preset. */
  presets: Record<string, Record<string, Partial<ModelConfigFields>>>;
  /** What `build` uses for an argument it is not given. */
  defaults: ModelConfigs;
}

export interface ShutdownResult {
  bye: true;
}

export interface SleepArgs {
  /** 0..60. */
  seconds: number;
}
export interface SleepResult {
  slept: number;
}

export interface EmitArgs {
  count?: number;
  level?: string;
}
export interface EmitResult {
  emitted: number;
}

export interface RaiseArgs {
  /** ValueError | RuntimeError | KeyError | ZeroDivisionError (default ValueError). */
  type?: string;
  message?: string;
}

// ---- model ops (py: ops/model.py) ----

export interface BuildArgs extends Partial<ModelConfigFields>, Partial<HeadConfigFields>, Partial<TrainConfigFields> {
  vocab_sz: number;
  /** One of describe's presets of the arch (default: ulmfit, sha_rnn_paper); its sizes come before the other fields. */
  preset?: string;
  /** Stored in checkpoints, checked when they are loaded. */
  vocab_fingerprint?: string;
  /** pool_weighting idf (required then, refused otherwise): one weight >= 0 per word id (vocab_sz of them). */
  token_weights?: number[];
}

export interface BuildResult {
  config: ModelConfigs;
  params: number;
  trainable_params: number;
  /** Parameters per group. */
  groups: Record<string, number>;
  trainable_groups: string[];
  device: string;
  vec_dim: number;
}

/** train_step / eval_step arguments: `objective`, per-call controls, and the loss settings (step options) it
 * declares (describe's step_options; ts/config/objectives.ts lists them with their defaults). */
export interface StepArgs {
  objective: string;
  return_logits?: boolean;
  /** lm: forget the stream's hidden state before this batch. */
  reset?: boolean;
  /** lm: names the hidden state carried between calls (default: train / eval). */
  stream?: string;
  /** train_step: set_hparams' arguments, set before the step (one request a step where the schedule moves). */
  hparams?: SetHparamsArgs & JsonObject;
  /** The objective's options, e.g. temperature (contrastive), margin / distance (triplet), alpha / beta (lm). */
  [option: string]: string | number | boolean | (SetHparamsArgs & JsonObject) | undefined;
}

/** An objective's metrics for one batch (train_step and eval_step). */
export interface StepMetrics {
  /** Mean loss; null when non-finite, or for a train_step with nothing to learn from (count 0). */
  loss: number | null;
  count: number;
  correct: number;
  /** lm: the AR/TAR regularisation. */
  reg?: number | null;
  /** triplet: triplets still inside the margin, mean distances, negatives sharing the anchor's premise. */
  active?: number;
  d_pos?: number | null;
  d_neg?: number | null;
  same_premise_negatives?: number;
}

/** Whether (and how) the optimizer stepped: train_step and flush. */
export interface StepOutcome {
  finite: boolean;
  stepped: boolean;
  /** Optimizer steps taken so far. */
  step: number;
  /** When an accumulation was applied; null when non-finite. */
  grad_norm?: number | null;
}

export interface TrainStepResult extends StepMetrics, StepOutcome {}

/** train_steps: several steps in one request, run in order; step i's tensors travel as `i/<name>`. */
export interface TrainStepsArgs {
  steps: StepArgs[];
}

export interface TrainStepsResult {
  steps: TrainStepResult[];
}

/** train_steps' tensor names: step i's tensor `name` is `i/name` (both ways). */
export const STEP_TENSOR_SEPARATOR = "/";
/** A step's tensor name: the step number in plain decimal (one spelling per number), the separator, the name. */
const STEP_TENSOR_NAME = new RegExp(`^(0|[1-9][0-9]*)${STEP_TENSOR_SEPARATOR}(.+)$`, "s");

/** One request's tensors from each step's: step i's `name` becomes `i/name`. */
export function packStepTensors(perStep: readonly Tensors[]): Tensors {
  const out: Tensors = {};
  perStep.forEach((tensors, i) => {
    for (const [name, t] of Object.entries(tensors)) out[`${i}${STEP_TENSOR_SEPARATOR}${name}`] = t;
  });
  return out;
}

/** Each step's tensors from a train_steps request's or reply's (the inverse of packStepTensors). */
export function unpackStepTensors(tensors: Tensors, steps: number): Tensors[] {
  const out: Tensors[] = Array.from({ length: steps }, () => ({}));
  for (const [name, t] of Object.entries(tensors)) {
    const m = STEP_TENSOR_NAME.exec(name);
    if (m === null || Number(m[1]) >= steps) throw new RangeError(`tensor ${name}: not a step's tensor (<step>/<name>, step < ${steps})`);
    out[Number(m[1])][m[2]] = t;
  }
  return out;
}

export interface FlushResult extends StepOutcome {
  /** Micro-batches applied; 0: nothing was pending (a no-op). */
  flushed: number;
}

export type EvalStepResult = StepMetrics;

export interface EncodeArgs {
  /** pool / pool_layers other than the built ones are refused with proj_dim or sif (sized for the built pooling). */
  pool?: string;
  pool_layers?: string;
  /** Scale each vector to unit length. */
  normalize?: boolean;
  /** n batches in one message: tensors i/x, i/lengths in, i/vectors out (packStepTensors' names). */
  batches?: number;
  /** An encode job (the client's id): each batch also sends rows (int32 [bs], its rows of the job's output) and the
   * vectors stay in the backend, put in input order, until encode_result sends them all in one frame. */
  job?: number;
  /** The job's rows (every request of the job says the same). */
  total?: number;
}
export interface EncodeResultArgs {
  job: number;
  /** Close the job and send nothing (a call that failed half way). */
  discard?: boolean;
}
export interface EncodeResult {
  count: number;
  dim: number;
}

/** fit_pc (tensors x [n, sl], lengths [n]; a sif model only). */
export interface FitPcResult {
  /** Sentences fitted on. */
  count: number;
  /** The sentence vectors' width. */
  dim: number;
  /** Share of the vectors' squared norm along the component, 0..1. */
  explained: number;
}

export interface PredictArgs {
  /** Reply with the sentence vectors u, v too. */
  vectors?: boolean;
}
export interface CountResult {
  count: number;
}

export interface GenerateArgs {
  n?: number;
  max_len?: number;
  temperature?: number;
  top_k?: number;
  seed?: number;
}

/** One of: `groups` (names), `freeze_to` k (groups[k:] train), `unfreeze`. */
export interface SetTrainableArgs {
  groups?: string[];
  freeze_to?: number;
  unfreeze?: boolean;
}
export interface SetTrainableResult {
  trainable_groups: string[];
  trainable_params: number;
  groups: string[];
}

export interface DropoutFields {
  drop_mult: number;
  embed_p: number;
  input_p: number;
  hidden_p: number;
  weight_p: number;
  output_p: number;
}

export interface SetHparamsArgs extends Partial<Omit<TrainConfigFields, "lr" | "opt" | "seed" | "autocast">>, Partial<DropoutFields> {
  /** One rate, one per group (in order), or by group name. */
  lr?: number | number[] | Record<string, number>;
  /** With one lr: group i gets lr / lr_div^(n-1-i). */
  lr_div?: number;
}
export interface SetHparamsResult extends TrainConfigFields {
  /** Each group's learning rate now. */
  lrs: Record<string, number>;
  dropouts: DropoutFields;
}

export interface SaveArgs {
  path: string;
  /** Stored with the checkpoint, returned by load. */
  meta?: JsonObject;
}
export interface SaveResult {
  path: string;
  bytes: number;
  step: number;
}

export type CheckpointParts = "all" | "weights" | "encoder";

export interface LoadArgs {
  path: string;
  parts?: CheckpointParts;
  allow_partial?: boolean;
  /** Replace any model with one built from the checkpoint's own config. */
  rebuild?: boolean;
  /** The vocabulary that will feed the model (a run's): a checkpoint of another is refused. */
  vocab_fingerprint?: string;
}
export interface LoadResult {
  parts: CheckpointParts;
  step: number;
  /** Tensors loaded. */
  loaded: number;
  skipped: string[];
  meta: JsonObject;
  /** A model was built from the checkpoint's config first. */
  built: boolean;
  /** When built. */
  config?: ModelConfigs;
  /** With a vocab_map: words the checkpoint lacked. */
  new_words?: number;
}

export interface ResetStateArgs {
  /** All streams when absent. */
  stream?: string;
}

export interface ModelInfoResult extends BuildResult {
  /** The module tree, printed. */
  tree: string;
  vocab_fingerprint: string;
  step: number;
}

// ---- transfer ops (py: ops/transfer.py) ----

export interface ImportFastaiArgs {
  weights: string;
  vocab: string;
  /** The bridge checkpoint to write. */
  out: string;
  backwards?: boolean;
}
export interface ImportFastaiResult {
  path: string;
  bytes: number;
  /** vocab_sz, emb_sz, n_hid, n_layers, tie_weights, out_bias, backwards. */
  config: JsonObject;
  itos: string[];
}

export interface InitFromArgs {
  path: string;
  /** A dual_lm model's backward encoder (with tensor backward_vocab_map); else both halves come from `path`. */
  backward_path?: string;
}
/** What init_from loaded from one source. */
export interface InitFromSourceResult {
  loaded: number;
  skipped: string[];
  /** Embedding rows taken from the source, new words (started from the mean row), and out-of-vocabulary buckets the
   * source lacks (kept their own random rows). */
  copied: number;
  new: number;
  buckets: number;
  /** direction: forward | backward | bidirectional | forward+backward (a dual_lm model). */
  source: { arch: Arch; vocab_sz: number | null; emb_sz: number | null; n_hid: number | null; n_layers: number | null; direction: string };
  meta: JsonObject;
}
export interface InitFromResult extends InitFromSourceResult {
  /** A dual_lm model: its backward encoder's source. */
  backward?: InitFromSourceResult;
}

export interface InitWordVectorsArgs {
  /** Seeds the map of k-wide vectors into the emb_sz-wide embedding. */
  seed?: number;
}
export interface InitWordVectorsResult {
  /** Embedding rows that took a pretrained vector. */
  copied: number;
  dim: number;
  emb_sz: number;
  /** The factor that brought the vectors to the random rows' mean norm. */
  scale: number;
}

// ---- distributed (py: ops/distributed.py) ----

export interface InitDistributedArgs {
  rank: number;
  world_size: number;
  master_addr?: string;
  master_port: number;
  backend?: "gloo" | "nccl";
  timeout_s?: number;
}
export interface InitDistributedResult {
  rank: number;
  world_size: number;
  backend: "gloo" | "nccl";
}

// ---- probes (py: ops/probe.py) ----

export interface FitProbeArgs {
  name?: string;
  l2?: number;
  max_iter?: number;
  seed?: number;
}
export interface FitProbeResult {
  name: string;
  n: number;
  features: number;
  classes: number;
  train_accuracy: number;
  iterations: number;
  loss: number | null;
}

export interface ProbePredictArgs {
  name?: string;
}

// ---- the catalogue ----

/** Every op the backend serves: its arguments and its result. */
export interface Ops {
  hello: { args: HelloArgs; result: HelloResult };
  ping: { args: NoArgs; result: PingResult };
  echo: { args: JsonObject; result: EchoResult };
  introspect: { args: NoArgs; result: IntrospectResult };
  describe: { args: NoArgs; result: DescribeResult };
  shutdown: { args: NoArgs; result: ShutdownResult };
  sleep: { args: SleepArgs; result: SleepResult };
  emit: { args: EmitArgs; result: EmitResult };
  raise: { args: RaiseArgs; result: Record<string, never> };
  build: { args: BuildArgs; result: BuildResult };
  train_step: { args: StepArgs; result: TrainStepResult };
  train_steps: { args: TrainStepsArgs; result: TrainStepsResult };
  flush: { args: NoArgs; result: FlushResult };
  eval_step: { args: StepArgs; result: EvalStepResult };
  encode: { args: EncodeArgs; result: EncodeResult };
  encode_result: { args: EncodeResultArgs; result: EncodeResult };
  fit_pc: { args: NoArgs; result: FitPcResult };
  predict: { args: PredictArgs; result: CountResult };
  generate: { args: GenerateArgs; result: CountResult };
  set_trainable: { args: SetTrainableArgs; result: SetTrainableResult };
  set_hparams: { args: SetHparamsArgs; result: SetHparamsResult };
  save: { args: SaveArgs; result: SaveResult };
  load: { args: LoadArgs; result: LoadResult };
  reset_state: { args: ResetStateArgs; result: Record<string, never> };
  model_info: { args: NoArgs; result: ModelInfoResult };
  import_fastai: { args: ImportFastaiArgs; result: ImportFastaiResult };
  init_from: { args: InitFromArgs; result: InitFromResult };
  init_word_vectors: { args: InitWordVectorsArgs; result: InitWordVectorsResult };
  init_distributed: { args: InitDistributedArgs; result: InitDistributedResult };
  fit_probe: { args: FitProbeArgs; result: FitProbeResult };
  probe_predict: { args: ProbePredictArgs; result: CountResult };
}

export type OpName = keyof Ops;
export type OpArgs<K extends OpName> = Ops[K]["args"];
export type OpResult<K extends OpName> = Ops[K]["result"];

/** Every op name of the catalogue at run time (the compiler refuses a list that misses or adds one). */
export const OP_NAMES: readonly OpName[] = fieldNames<Ops>({
  hello: true,
  ping: true,
  echo: true,
  introspect: true,
  describe: true,
  shutdown: true,
  sleep: true,
  emit: true,
  raise: true,
  build: true,
  train_step: true,
  train_steps: true,
  flush: true,
  eval_step: true,
  encode: true,
  encode_result: true,
  fit_pc: true,
  predict: true,
  generate: true,
  set_trainable: true,
  set_hparams: true,
  save: true,
  load: true,
  reset_state: true,
  model_info: true,
  import_fastai: true,
  init_from: true,
  init_word_vectors: true,
  init_distributed: true,
  fit_probe: true,
  probe_predict: true,
});

/** A reply: the op's result and the tensors that came with it. */
export interface OpReply<K extends OpName> {
  result: OpResult<K>;
  tensors: Tensors;
}

/** Anything that serves the catalogue's ops: one BackendClient, every rank of a DistributedBackend, a wrapper. */
export interface OpCaller {
  call<K extends OpName>(op: K, args?: OpArgs<K>, tensors?: Tensors): Promise<OpReply<K>>;
}

/** An OpCaller that owns its backend(s): the training loop's backend. */
export interface TypedBackend extends OpCaller {
  close(): Promise<void>;
}

/** Args in the wire's terms (every catalogue args type is JSON; undefined fields are dropped when sent). */
export type WireArgs = Record<string, JsonValue | undefined>;
