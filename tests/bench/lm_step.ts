/**
 * The Reformer LM training step the step benchmark (`reformer_step.ts`) and the GPU suite
 * (`gpu_suite.ts`) both time: random tokens, loss, gradients, Adam (under dynamic loss scaling
 * for an f16 model), the old params and state freed.
 * @module
 */
import * as T from "../../mod.ts";
import { optim, random, valueAndGrad } from "../../mod.ts";
import type { ReformerLMParams } from "../../nn/models/reformer.ts";

/** `[2^floor(k/2), 2^ceil(k/2)]` for `n = 2^k`; other lengths get `[n]`. */
export function axialShape(n: number): number[] {
  const k = Math.log2(n);
  if (!Number.isInteger(k) || k < 2) return [n];
  return [2 ** Math.floor(k / 2), 2 ** Math.ceil(k / 2)];
}

/** A model the step trains: `init` and `loss` of `nn.reformerLM`. */
interface StepModel {
  init(key: T.Tensor): ReformerLMParams;
  loss(
    p: ReformerLMParams,
    x: T.Tensor,
    y: T.Tensor,
    o: { key: T.Tensor; training: boolean },
  ): T.Tensor;
}

/** A training step over fixed random tokens; `dispose` frees everything it holds. */
export interface LmTrainingStep {
  /** Live bytes once params and optimizer state exist (before any step). */
  readonly stateBytes: number;
  /** Runs step `i` (its PRNG key) and resolves to the unscaled loss. */
  step(i: number): Promise<number>;
  /** Frees the tokens, params and optimizer state. */
  dispose(): void;
}

/**
 * Builds the step for `model` on `[batch, len]` tokens of `vocab`; with `half` (an f16 model)
 * the loss is multiplied by the optimizer state's loss scale before differentiation.
 */
export function lmTrainingStep(
  model: StepModel,
  { batch, len, vocab, half }: { batch: number; len: number; vocab: number; half: boolean },
): LmTrainingStep {
  const opt: optim.GradientTransformation<unknown> = half
    ? optim.dynamicLossScale(optim.adam(1e-4))
    : optim.adam(1e-4);
  let params = model.init(random.key(0));
  let state = opt.init(params);
  const stateBytes = T.memory().liveBytes;
  const tokens = T.keep(random.randint(random.key(1), [batch, len + 1], 0, vocab));
  const input = T.keep(T.slice(tokens, [0, 0], [batch, len]));
  const target = T.keep(T.slice(tokens, [0, 1], [batch, len + 1]));
  const lossGrad = valueAndGrad((p: ReformerLMParams, key: T.Tensor, scale: T.Tensor | null) => {
    const loss = model.loss(p, input, target, { key, training: true });
    return scale ? T.mul(loss, scale) : loss;
  });
  return {
    stateBytes,
    async step(i) {
      const out = T.scope(() => {
        const scale = half ? (state as optim.LossScaleState<unknown>).scale : null;
        const [scaled, grads] = lossGrad(params, random.key(100 + i), scale);
        const loss = scale ? T.div(scaled, scale) : scaled;
        const [updates, next] = opt.update(grads, state, params);
        return { loss, params: optim.applyUpdates(params, updates), state: next };
      });
      const loss = (await out.loss.data())[0];
      T.scope(() => {
        for (const t of [out.loss, ...T.treeTensors(params), ...T.treeTensors(state)]) t.dispose();
      });
      params = out.params;
      state = out.state;
      return loss;
    },
    dispose() {
      for (const t of [tokens, input, target, ...T.treeTensors(params), ...T.treeTensors(state)]) {
        t.dispose();
      }
    },
  };
}
