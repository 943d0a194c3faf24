/**
 * The package's entry (`import { openEncoder } from "bridge"`): a trained run as an encoder, and the vector
 * helpers that need no backend. Nothing here starts a process at import time.
 */
export { BackendDiedError, BackendError } from "../backend/client.js";
export type { CurveClientKeys } from "../backend/keys.js";
export { type EmbedFileOptions, type EmbedResult, embedFile } from "./embedFile.js";
export {
  CHUNK_ROWS,
  type EmbedOptions,
  Encoder,
  EncoderClosedError,
  type OpenEncoderOptions,
  openEncoder,
  type SearchOptions,
  type Texts,
} from "./encoder.js";
export { Embeddings, type Matrix, normalizeRows } from "./matrix.js";
export { CorpusIndex, cosineSimilarity, type SearchHit, semanticSearch, type TopKOptions } from "./search.js";
