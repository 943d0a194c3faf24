/**
 * Integration: the real backend's `describe` catalogue against the TypeScript side's copies of the same facts
 * (the op catalogue of ts/backend/ops.ts, the config fields it types, objectives, config enums and defaults). A
 * difference names the list and what differs, so the side that moved is found at once. Which ops go to every
 * data-parallel rank is not compared: DistributedBackend reads it from `describe` itself.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { z } from "zod";
import { type BackendClient, startBackend } from "../../ts/backend/client.js";
import { CONFIG_FIELDS, OP_NAMES } from "../../ts/backend/ops.js";
import { OBJECTIVE_SPECS, OBJECTIVES, type OptionSpec } from "../../ts/config/objectives.js";
import { ARCH_PRESETS, ModelSchema, presetSizes, StageSchema } from "../../ts/config/schema.js";
import { ARCHS } from "../../ts/core/archs.js";
import { everyRankOps } from "../../ts/train/distributed.js";

/** What `describe` replies with (the parts compared here); checked with zod, so a changed reply fails clearly. */
const DescribeSchema = z.object({
  ops: z.array(z.object({ name: z.string(), doc: z.string(), every_rank: z.boolean() })),
  objectives: z.array(
    z.object({
      name: z.string(),
      uses_head: z.boolean(),
      shardable: z.boolean(),
      metrics: z.array(z.string()),
      step_options: z.array(
        z.object({
          name: z.string(),
          type: z.string(),
          default: z.union([z.number(), z.string(), z.boolean()]).optional(),
          choices: z.array(z.string()).optional(),
          positive: z.boolean().optional(),
          non_negative: z.boolean().optional(),
        }),
      ),
    }),
  ),
  enums: z.record(z.array(z.string())),
  presets: z.record(z.record(z.record(z.unknown()))),
  defaults: z.object({ model: z.record(z.unknown()), head: z.record(z.unknown()), train: z.record(z.unknown()) }),
});
type Described = z.infer<typeof DescribeSchema>;
type StepOption = Described["objectives"][number]["step_options"][number];

/** An option as compared: what both sides declare of it (the doc aside). */
interface ComparedOption {
  type: string;
  default: unknown;
  choices?: readonly string[];
  bound?: string;
}

/** A backend step option as ts/config/objectives.ts would declare it (per-call controls, with no default, are none). */
function asOptionSpec(o: StepOption): ComparedOption | null {
  if (o.default === undefined) return null;
  if (o.choices) return { type: "choice", default: o.default, choices: o.choices };
  const bound = o.positive ? "positive" : o.non_negative ? "non_negative" : undefined;
  return { type: o.type === "float" ? "number" : `backend type ${o.type}`, default: o.default, ...(bound ? { bound } : {}) };
}

function withoutDoc(spec: OptionSpec): ComparedOption {
  const { doc: _, ...rest } = spec;
  return rest;
}

/** "" when the two lists hold the same values (order aside), else what each side has that the other lacks. */
function listDifference(what: string, backend: readonly string[], typescript: readonly string[]): string {
  const onlyBackend = backend.filter((v) => !typescript.includes(v));
  const onlyTs = typescript.filter((v) => !backend.includes(v));
  if (onlyBackend.length === 0 && onlyTs.length === 0) return "";
  return `${what}: only in the backend [${onlyBackend.join(", ")}], only in TypeScript [${onlyTs.join(", ")}]`;
}

function valueDifference(what: string, backend: unknown, typescript: unknown): string {
  return JSON.stringify(backend) === JSON.stringify(typescript) ? "" : `${what}: backend ${JSON.stringify(backend)}, TypeScript ${JSON.stringify(typescript)}`;
}

/** The values of a (possibly defaulted / optional) zod enum. */
function enumValues(schema: z.ZodTypeAny, where: string): string[] {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s instanceof z.ZodDefault ? s.removeDefault() : s.unwrap();
  if (!(s instanceof z.ZodEnum)) throw new TypeError(`${where} is not a zod enum`);
  return [...(s.options as string[])];
}

/** Every cross-language difference between the backend's catalogue and the TypeScript side. */
function differences(d: Described): string[] {
  const out: string[] = [];
  out.push(
    listDifference(
      "ops (ts/backend/ops.ts Ops and OP_NAMES)",
      d.ops.map((o) => o.name),
      OP_NAMES,
    ),
  );
  for (const part of ["model", "head", "train"] as const) {
    out.push(listDifference(`${part} config fields (ts/backend/ops.ts CONFIG_FIELDS.${part})`, Object.keys(d.defaults[part]), CONFIG_FIELDS[part]));
  }
  const objectives = new Map(d.objectives.map((o) => [o.name, o]));
  out.push(listDifference("objectives (ts/config/objectives.ts OBJECTIVES)", [...objectives.keys()], OBJECTIVES));
  for (const name of OBJECTIVES) {
    const py = objectives.get(name);
    if (!py) continue;
    const spec = OBJECTIVE_SPECS[name];
    out.push(listDifference(`objective ${name}: metrics (OBJECTIVE_SPECS)`, py.metrics, spec.metrics));
    out.push(valueDifference(`objective ${name}: uses_head / usesHead (OBJECTIVE_SPECS)`, py.uses_head, spec.usesHead));
    out.push(valueDifference(`objective ${name}: shardable (OBJECTIVE_SPECS)`, py.shardable, spec.shardable));
    const pyOptions = new Map(py.step_options.flatMap((o) => (asOptionSpec(o) ? [[o.name, asOptionSpec(o)] as const] : [])));
    const tsOptions: Record<string, OptionSpec> = spec.options;
    out.push(listDifference(`objective ${name}: options (OBJECTIVE_SPECS)`, [...pyOptions.keys()], Object.keys(tsOptions)));
    for (const [key, option] of pyOptions) {
      if (tsOptions[key]) out.push(valueDifference(`objective ${name}: option ${key} (OBJECTIVE_SPECS)`, option, withoutDoc(tsOptions[key])));
    }
  }
  const enums: [string, z.ZodTypeAny, string][] = [
    ["arch", ModelSchema.shape.arch, "ModelSchema.arch"],
    ["sentence_attention", ModelSchema.shape.sentence_attention, "ModelSchema.sentence_attention"],
    ["preset", ModelSchema.shape.preset, "ModelSchema.preset"],
    ["pool", ModelSchema.shape.pool, "ModelSchema.pool"],
    ["pool_layers", ModelSchema.shape.pool_layers, "ModelSchema.pool_layers"],
    ["pool_weighting", ModelSchema.shape.pool_weighting, "ModelSchema.pool_weighting"],
    ["features", ModelSchema.shape.features, "ModelSchema.features"],
    ["softmax", ModelSchema.shape.softmax, "ModelSchema.softmax"],
    ["opt", StageSchema.shape.opt, "StageSchema.opt"],
    ["pool", StageSchema.shape.pool, "StageSchema.pool"],
    ["pool_layers", StageSchema.shape.poolLayers, "StageSchema.poolLayers"],
    ["features", StageSchema.shape.features, "StageSchema.features"],
  ];
  for (const [key, schema, where] of enums) {
    if (!d.enums[key]) out.push(`${where}: the backend describes no enum ${key}`);
    else out.push(listDifference(`${where} (backend enum ${key})`, d.enums[key], enumValues(schema, where)));
  }
  out.push(listDifference("archs with presets (ts/config/schema.ts ARCH_PRESETS)", Object.keys(d.presets), Object.keys(ARCH_PRESETS)));
  for (const arch of ARCHS) {
    const presets = d.presets[arch] ?? {};
    out.push(listDifference(`arch ${arch}'s presets (ts/config/schema.ts ARCH_PRESETS)`, Object.keys(presets), Object.keys(ARCH_PRESETS[arch])));
    for (const [name, sizes] of Object.entries(presets)) {
      const ts = presetSizes(arch, name);
      if (ts !== undefined) out.push(valueDifference(`arch ${arch}'s preset ${name} (ts/config/schema.ts ARCH_PRESETS)`, sizes, ts));
    }
  }
  // Defaults both sides set: the config's fill-ins must be what `build` would use unasked.
  const model = ModelSchema.parse({});
  const stage = StageSchema.parse({ objective: "lm" });
  for (const key of ["pool", "pool_layers", "features", "head_hidden", "head_p"] as const) {
    out.push(valueDifference(`default ModelSchema.${key} (backend HeadConfig.${key})`, d.defaults.head[key], model[key]));
  }
  const train: [string, unknown][] = [
    ["opt", stage.opt],
    ["wd", stage.wd],
    ["clip", stage.clip],
    ["accum_steps", stage.accumSteps],
  ];
  for (const [key, value] of train) out.push(valueDifference(`default StageSchema ${key} (backend TrainConfig.${key})`, d.defaults.train[key], value));
  out.push(valueDifference("default StageSchema dropMult (backend AWDLSTMConfig.drop_mult)", d.defaults.model.drop_mult, stage.dropMult));
  return out.filter((m) => m !== "");
}

let backend: BackendClient;
let described: Described;

test.before(async () => {
  backend = await startBackend();
  described = DescribeSchema.parse((await backend.call("describe")).result);
});
test.after(async () => {
  await backend.close();
});

test("describe lists every op with a one-line doc", () => {
  const names = described.ops.map((o) => o.name);
  for (const op of ["hello", "describe", "build", "train_step", "eval_step", "save", "load", "init_distributed"])
    assert.ok(names.includes(op), `describe lacks op ${op}`);
  for (const o of described.ops) assert.ok(o.doc.length > 0 && !o.doc.includes("\n"), `op ${o.name}: doc ${JSON.stringify(o.doc)}`);
});

test("the backend and the TypeScript side agree on the op catalogue, config fields, objectives, enums and defaults", () => {
  const found = differences(described);
  assert.equal(found, [], `backend and TypeScript differ:\n  ${found.join("\n  ")}`);
});

test("a difference is reported naming the list and what differs", () => {
  const doctored: Described = {
    ...described,
    objectives: described.objectives
      .filter((o) => o.name !== "simcse")
      .map((o) => (o.name === "contrastive" ? { ...o, shardable: true, step_options: o.step_options.map((so) => ({ ...so, default: 0.1 })) } : o)),
    enums: { ...described.enums, pool: [...described.enums.pool, "attention"] },
    presets: {
      ...described.presets,
      sha_rnn: { ...described.presets.sha_rnn, gpu_small: { emb_sz: 512 }, tiny: { ...described.presets.sha_rnn.tiny, n_hid: 48 } },
    },
    ops: [...described.ops.filter((o) => o.name !== "flush"), { name: "frobnicate", doc: "a new op", every_rank: false }],
    defaults: { ...described.defaults, head: { ...described.defaults.head, attention_heads: 4 } },
  };
  const found = differences(doctored);
  assert.ok(found.includes("objectives (ts/config/objectives.ts OBJECTIVES): only in the backend [], only in TypeScript [simcse]"), found.join("\n"));
  assert.ok(found.includes("objective contrastive: shardable (OBJECTIVE_SPECS): backend true, TypeScript false"), found.join("\n"));
  const temperature = 'objective contrastive: option temperature (OBJECTIVE_SPECS): backend {"type":"number","default":0.1,"bound":"positive"}';
  assert.ok(
    found.some((m) => m.startsWith(temperature)),
    found.join("\n"),
  );
  assert.ok(found.includes("ModelSchema.pool (backend enum pool): only in the backend [attention], only in TypeScript []"), found.join("\n"));
  assert.ok(
    found.includes("arch sha_rnn's presets (ts/config/schema.ts ARCH_PRESETS): only in the backend [gpu_small], only in TypeScript []"),
    found.join("\n"),
  );
  assert.ok(
    found.includes(
      `arch sha_rnn's preset tiny (ts/config/schema.ts ARCH_PRESETS): backend {"emb_sz":16,"n_hid":48,"n_layers":2}, TypeScript {"emb_sz":16,"n_hid":64,"n_layers":2}`,
    ),
    found.join("\n"),
  );
  assert.ok(found.includes("ops (ts/backend/ops.ts Ops and OP_NAMES): only in the backend [frobnicate], only in TypeScript [flush]"), found.join("\n"));
  assert.ok(
    found.includes("head config fields (ts/backend/ops.ts CONFIG_FIELDS.head): only in the backend [attention_heads], only in TypeScript []"),
    found.join("\n"),
  );
});

test("the every-rank ops come from describe: the state-changing ops, init_from among them; inference and save stay on rank 0", () => {
  const everyRank = everyRankOps(described);
  for (const op of ["build", "load", "init_from", "set_hparams", "set_trainable", "reset_state", "flush", "init_distributed"]) {
    assert.ok(everyRank.has(op), `${op} is not marked @op(..., every_rank=True) in the backend`);
  }
  for (const op of ["save", "eval_step", "encode", "predict", "train_step", "import_fastai"]) assert.not.ok(everyRank.has(op), `${op} is marked every_rank`);
});

test.run();
