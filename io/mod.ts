/**
 * Saving and loading tensors: the safetensors format as pure functions on bytes, and
 * checkpoints, whole pytrees (params, optimizer state, step counters) written atomically to
 * one safetensors file and read back as saved or checked against a template.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors } from "@longseq/tensor/io";
 * const bytes = encodeSafetensors({ w: { dtype: "f32", shape: [2], data: new Float32Array([1, 2]) } });
 * const { tensors } = decodeSafetensors(bytes);
 * assert.deepEqual(Array.from(tensors.get("w")!.data), [1, 2]);
 * ```
 * @module
 */
export {
  buildSafetensorsHeader,
  decodeFloatsToF32,
  type DecodeOptions,
  decodeSafetensors,
  encodeSafetensors,
  f16BitsToF32,
  type HeaderEntry,
  type HostTensor,
  parseSafetensorsHeader,
  type SafetensorsHeader,
} from "./safetensors.ts";
export {
  loadCheckpoint,
  type LoadCheckpointOptions,
  type LoadedCheckpoint,
  MAX_TREE_DEPTH,
  MAX_TREE_NODES,
  saveCheckpoint,
  type SaveCheckpointOptions,
  STALE_TEMP_MS,
} from "./checkpoint.ts";
