/**
 * Reverse-mode autodiff as plain functions: `vjp`, `grad`, `valueAndGrad`, `stopGradient`,
 * custom rules (`customVjp`), rematerialisation (`remat`) and reversible layers that
 * invert instead of storing (`reversible`, `reversibleStack`), over pytrees of tensors.
 * @module
 */
export { type Cotangent, type CotangentIn, type Cotangents, type Pullback, vjp } from "./vjp.ts";
export {
  type Argnums,
  grad,
  type GradOptions,
  type GradsOf,
  stopGradient,
  valueAndGrad,
} from "./grad.ts";
export { checkpoint, customVjp, type CustomVjpRules, remat } from "./custom.ts";
export {
  type Halves,
  type RevBlockFns,
  reversible,
  type ReversibleBlock,
  type ReversibleStack,
  reversibleStack,
  type RevFn,
  type RevOpts,
  type RevOutput,
  type RevParams,
  type RevSaved,
} from "./reversible.ts";
export {
  disposeTree,
  flattenTree,
  mapTree,
  type TreeDef,
  treeTensors,
  unflattenTree,
} from "./pytree.ts";
