/**
 * The model-size flags the examples share, in the flag-table format of `train.parseFlags`.
 * @module
 */

/**
 * The model-size flags the examples share (`--d-model`, `--d-ff`, `--heads`, `--layers`) with
 * an example's defaults; `layersHelp` says what one layer is in that model.
 *
 * @example
 * ```ts
 * import { train } from "../../mod.ts";
 * const FLAGS = { ...modelSizeFlags({ dModel: 64, dFF: 128, heads: 4, layers: 2 }) } as const;
 * const f = train.parseFlags("usage: x [flags]", FLAGS, ["--d-model=32"]);
 * console.log(f.dModel, f.layers); // 32 2
 * ```
 */
export function modelSizeFlags(
  d: { dModel: number; dFF: number; heads: number; layers: number },
  layersHelp = "Reversible layers",
) {
  return {
    dModel: { type: "int", default: d.dModel, min: 1, help: "Model width" },
    dFF: { type: "int", default: d.dFF, min: 1, help: "Feed-forward hidden width" },
    heads: { type: "int", default: d.heads, min: 1, help: "Attention heads" },
    layers: { type: "int", default: d.layers, min: 1, help: layersHelp },
  } as const;
}
