/**
 * What the training loop (loop.ts) hands the modules that act on a stage: the backend, the config and data, the run's
 * folder and records. Here, below all of them, so that earlyStopping, stageCheckpoints, stepResults and validation
 * never import the loop that uses them.
 */
import type { TypedBackend } from "../backend/ops.js";
import type { Config } from "../config/schema.js";
import type { RunManifest, RunPaths } from "../run/manifest.js";
import type { RunState } from "./checkpoints.js";
import type { TrainingData } from "./data.js";
import type { Progress, RunLog } from "./progress.js";

/** The backend calls the loop makes (one process, or every rank of a distributed run); BackendClient is one. */
export type TrainBackend = TypedBackend;

export interface LoopContext {
  backend: TrainBackend;
  cfg: Config;
  data: TrainingData;
  paths: RunPaths;
  manifest: RunManifest;
  state: RunState;
  log: RunLog;
  progress: Progress;
  /** For messages: how to resume this run. */
  resumeCommand: string;
  /** Point runs/latest at this run at its first checkpoint (default true; false for builds into the model cache). */
  linkLatest?: boolean;
}

/** The stage a checkpoint belongs to: its index in the config and its name (file names, log lines). */
export interface StageRef {
  index: number;
  name: string;
}
