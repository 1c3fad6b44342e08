/**
 * Cached LSH decoding against recomputing, on a byte LM checkpoint of `examples/char_lm.ts`
 * (issue 13 §2): (a) the speed of generating after a long prompt, and (b) what the cache costs
 * in bits per byte, teacher-forced on the validation split.
 *
 * (a) Greedy generation of `--generate` tokens after the first `--prompt` bytes of the
 * validation split, cached (`reformerDecoder`: one prefill, then one step per token) and
 * recomputed (a forward pass over the whole context per token, `--recompute` tokens, the same
 * number unless given: at 2,000+ tokens of context on the CPU each costs about a second). Both
 * use the rotations `apply` draws without a key (seed `hashSeed + i`), as the cached decoder
 * does. The cached figure includes its prefill (the first token's cost) and is also given
 * without it. A warm-up of a few tokens each runs first, untimed.
 *
 * (b) `--windows` consecutive windows of `--prompt + --positions` bytes of the validation
 * split: the model's ordinary forward pass over each window (no key: the same rotations)
 * scores its last `--positions` predictions, and the cached decoder scores the same ones,
 * prefilled with the window's first `--prompt` bytes and then fed the true bytes one at a
 * time. Both are `-log2 p(true byte)` averaged over the same positions.
 *
 * The checkpoint's `maxLen` must hold the prompt plus the generated tokens (so the cached
 * window never slides). Each measurement records the load averages (`uptime`) before and
 * after, since the machine this was written on shares its 2 cores with other work.
 *
 * Run: `deno run -A tests/bench/lsh_decode.ts --checkpoint runs/char_lm_lsh2560/checkpoint.safetensors
 * --json runs/lsh_decode.json`; `--skip-speed` or `--skip-quality` runs one part.
 */
import { scope, tensor } from "../../mod.ts";
import {
  reformerLM,
  type ReformerLMConfig,
  type ReformerLMParams,
} from "../../nn/models/reformer.ts";
import { reformerDecoder } from "../../nn/models/decode.ts";
import { loadModel, loadSampler, type Sampler, sampleToken } from "../../examples/generate.ts";
import { loadBrown } from "../../examples/lib/data.ts";
import { disposeTree, initDevice, parseFlags, runMain, usageError } from "../../train/mod.ts";

const USAGE = `usage: deno run -A tests/bench/lsh_decode.ts [flags]

Times cached against recomputed decoding of a char_lm.ts LSH checkpoint, and compares the
bits per byte of teacher-forced cached decoding with the full forward pass.`;

const FLAGS = {
  checkpoint: {
    type: "string",
    default: "runs/char_lm_lsh2560/checkpoint.safetensors",
    help: "Checkpoint of examples/char_lm.ts",
  },
  prompt: { type: "int", default: 2000, min: 1, help: "Prompt bytes (validation split)" },
  generate: { type: "int", default: 500, min: 1, help: "Tokens generated cached (a)" },
  recompute: {
    type: "int",
    default: 0,
    min: 0,
    help: "Tokens generated recomputing (a) (0: as many as --generate)",
  },
  warmup: { type: "int", default: 3, min: 0, help: "Untimed tokens before each timing (a)" },
  windows: { type: "int", default: 4, min: 1, help: "Validation windows (b)" },
  positions: { type: "int", default: 500, min: 1, help: "Scored positions per window (b)" },
  skipSpeed: { type: "bool", default: false, help: "Skip (a)" },
  skipQuality: { type: "bool", default: false, help: "Skip (b)" },
  device: {
    type: "string",
    default: "auto",
    choices: ["auto", "cpu", "webgpu", "cpu-reference"],
    help: "Backend",
  },
  json: { type: "string", default: "", help: "Also write the results here as JSON" },
} as const;

const LN2 = Math.log(2);

/** `-log2 softmax(logits)[target]`, in f64 on the host. */
function bitsOf(logits: ArrayLike<number>, target: number): number {
  let top = -Infinity;
  for (let i = 0; i < logits.length; i++) top = Math.max(top, logits[i]);
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += Math.exp(logits[i] - top);
  return (top + Math.log(s) - logits[target]) / LN2;
}

/** The 1, 5 and 15 minute load averages, as `uptime` prints them. */
function load(): string {
  return Deno.loadavg().map((x) => x.toFixed(2)).join(", ");
}

interface Timing {
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  /** Seconds of the first token (the cached prefill, or one forward pass). */
  firstSeconds: number;
  /** Tokens per second after the first. */
  laterTokensPerSecond: number;
  loadBefore: string;
  loadAfter: string;
  generated: number[];
}

/** Greedy generation of `n` tokens after `prompt`, untimed `warmup` tokens first. */
async function timeGeneration(
  sampler: Sampler,
  prompt: readonly number[],
  n: number,
  warmup: number,
): Promise<Timing> {
  const run = async (count: number, onToken?: (i: number) => void) => {
    const context = [...prompt];
    for (let i = 0; i < count; i++) {
      const logits = await sampler.next(context.slice(-sampler.maxLen));
      context.push(sampleToken(logits, 0, 0, Math.random));
      onToken?.(i);
    }
    return context.slice(prompt.length);
  };
  if (warmup > 0) await run(warmup);
  const loadBefore = load();
  const t0 = performance.now();
  let t1 = t0;
  const generated = await run(n, (i) => {
    if (i === 0) t1 = performance.now();
  });
  const t2 = performance.now();
  const seconds = (t2 - t0) / 1000;
  return {
    tokens: n,
    seconds,
    tokensPerSecond: n / seconds,
    firstSeconds: (t1 - t0) / 1000,
    laterTokensPerSecond: n > 1 ? (n - 1) / ((t2 - t1) / 1000) : NaN,
    loadBefore,
    loadAfter: load(),
    generated,
  };
}

interface Quality {
  windows: number;
  positions: number;
  cachedBpb: number;
  fullBpb: number;
  /** The full pass over every position of the windows (prompts included). */
  fullAllBpb: number;
  /** Positions where the cached and full argmax agree. */
  argmaxAgree: number;
  seconds: number;
  loadBefore: string;
  loadAfter: string;
}

/** Teacher-forced bits per byte, cached against the full forward pass, on `windows` windows. */
async function quality(
  config: ReformerLMConfig,
  params: ReformerLMParams,
  valid: Uint8Array,
  f: { prompt: number; positions: number; windows: number },
): Promise<Quality> {
  const model = reformerLM(config);
  const dec = reformerDecoder(config, params);
  const { prompt: p, positions: m, windows } = f;
  const n = p + m - 1;
  const vocab = config.vocab;
  let cached = 0, full = 0, fullAll = 0, agree = 0;
  const argmax = (a: ArrayLike<number>) => {
    let k = 0;
    for (let i = 1; i < a.length; i++) if (a[i] > a[k]) k = i;
    return k;
  };
  const loadBefore = load();
  const t0 = performance.now();
  for (let w = 0; w < windows; w++) {
    const s = w * (n + 1);
    const inputs = Array.from(valid.subarray(s, s + n));
    const targets = Array.from(valid.subarray(s + 1, s + n + 1));
    const all = scope(() =>
      model.apply(params, tensor(Int32Array.from(inputs), { dtype: "i32", shape: [1, n] }))
    );
    const logits = await all.data() as Float32Array;
    all.dispose();
    const fullArgmax: number[] = [];
    for (let t = 0; t < n; t++) {
      const row = logits.subarray(t * vocab, (t + 1) * vocab);
      const b = bitsOf(row, targets[t]);
      fullAll += b;
      if (t >= p - 1) {
        full += b;
        fullArgmax.push(argmax(row));
      }
    }
    let [l, state] = scope(() =>
      dec.prefill(tensor(Int32Array.from(inputs.slice(0, p)), { dtype: "i32", shape: [1, p] }))
    );
    for (let t = p - 1;; t++) {
      const row = await l.data() as Float32Array;
      l.dispose();
      cached += bitsOf(row, targets[t]);
      if (argmax(row) === fullArgmax[t - (p - 1)]) agree++;
      if (t === n - 1) break;
      const [l2, next] = dec.step(state, inputs[t + 1]);
      state.dispose();
      [l, state] = [l2, next];
    }
    state.dispose();
    console.error(`window ${w + 1}/${windows}: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const count = windows * m;
  return {
    windows,
    positions: m,
    cachedBpb: cached / count,
    fullBpb: full / count,
    fullAllBpb: fullAll / (windows * n),
    argmaxAgree: agree / count,
    seconds: (performance.now() - t0) / 1000,
    loadBefore,
    loadAfter: load(),
  };
}

async function main(): Promise<void> {
  const f = parseFlags(USAGE, FLAGS);
  const { line } = await initDevice(f.device);
  console.log(line);
  const { valid } = await loadBrown();
  const recompute = f.recompute || f.generate;
  const results: Record<string, unknown> = {
    checkpoint: f.checkpoint,
    prompt: f.prompt,
    device: line,
  };
  const prompt = Array.from(valid.subarray(0, f.prompt));
  const { c, params } = await loadModel(f.checkpoint, "");
  const config = c as unknown as ReformerLMConfig;
  const maxLen = reformerLM(config).maxLen;
  const longest = f.prompt + Math.max(f.generate, recompute, f.positions - 1);
  if (longest > maxLen) {
    disposeTree(params);
    throw usageError(`the prompt and the tokens after it (${longest}) exceed maxLen ${maxLen}`);
  }
  console.log(
    `model: ${config.layers} layer(s) of ${config.attention}, chunk ${config.chunkLen}, ` +
      `${config.nHashes} hashes, maxLen ${maxLen}`,
  );

  if (!f.skipSpeed) {
    const o = { lshAsFull: false, hf: "", modelRotations: true };
    const timings: Record<string, Timing> = {};
    for (
      const [name, cache, n] of [["cached", true, f.generate], [
        "recompute",
        false,
        recompute,
      ]] as const
    ) {
      const sampler = await loadSampler(f.checkpoint, 0, { ...o, cache });
      console.error(`(a) ${name}: ${sampler.mode}, ${n} tokens`);
      try {
        timings[name] = await timeGeneration(sampler, prompt, n, f.warmup);
      } finally {
        sampler.dispose();
      }
    }
    const { cached, recompute: re } = timings;
    let same = 0;
    while (same < re.tokens && cached.generated[same] === re.generated[same]) same++;
    const ratio = cached.tokensPerSecond / re.tokensPerSecond;
    console.log(
      `\n(a) greedy generation after a ${f.prompt}-byte prompt (validation split)\n` +
        `| decoding | tokens | seconds | tokens/s | first token (s) | tokens/s after it | load before | load after |\n` +
        `| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n` +
        Object.entries(timings).map(([k, t]) =>
          `| ${k} | ${t.tokens} | ${t.seconds.toFixed(1)} | ${t.tokensPerSecond.toFixed(2)} | ` +
          `${t.firstSeconds.toFixed(2)} | ${t.laterTokensPerSecond.toFixed(2)} | ` +
          `${t.loadBefore} | ${t.loadAfter} |`
        ).join("\n") +
        `\ncached / recomputed tokens/s: ${ratio.toFixed(1)}x; the first ${same} of ` +
        `${re.tokens} recomputed tokens equal the cached ones`,
    );
    results.speed = {
      ...Object.fromEntries(
        Object.entries(timings).map(([k, { generated: _, ...t }]) => [k, t]),
      ),
      ratio,
      sameLeadingTokens: same,
    };
  }

  if (!f.skipQuality) {
    const q = await quality(config, params as ReformerLMParams, valid, f);
    console.log(
      `\n(b) teacher-forced bits per byte, ${q.windows} validation windows of ${f.prompt} + ` +
        `${q.positions} bytes, the last ${q.positions} predictions of each\n` +
        `| decoding | bits/byte |\n| --- | ---: |\n` +
        `| full forward pass | ${q.fullBpb.toFixed(4)} |\n` +
        `| cached (prefill ${f.prompt}, then one byte at a time) | ${q.cachedBpb.toFixed(4)} |\n` +
        `| difference (cached - full) | ${(q.cachedBpb - q.fullBpb).toFixed(4)} |\n` +
        `full pass over every position: ${q.fullAllBpb.toFixed(4)} bits/byte; argmax agrees ` +
        `at ${(100 * q.argmaxAgree).toFixed(1)}% of the scored positions; ` +
        `${q.seconds.toFixed(0)} s, load ${q.loadBefore} -> ${q.loadAfter}`,
    );
    results.quality = q;
  }
  disposeTree(params);
  if (f.json) {
    Deno.writeTextFileSync(f.json, JSON.stringify(results, null, 2) + "\n");
    console.log(`\nwrote ${f.json}`);
  }
}

if (import.meta.main) await runMain("lsh_decode", main);
