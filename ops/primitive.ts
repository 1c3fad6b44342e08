/**
 * Primitives: an op's kernel launch and its VJP rule, defined once, side by side. `bind` runs a
 * primitive and, when an input is traced by a `vjp` call, records a node reachable only from
 * the outputs. There is no tape: the graph lives as long as its outputs.
 *
 * `launch` is the one path from an op to a kernel: it finds the kernel by name in the table of
 * the backend holding the inputs (see `kernels/backend.ts`), or in that backend's fallback.
 * @module
 */
import { assertLive, deviceOf, fromStorage, sizeOf, storageOf, type Tensor } from "./tensor.ts";
import { setScopeHold } from "./scope.ts";
import { type DType, isFloat } from "../kernels/dtype.ts";
import { checkAllocation, type Device, type DeviceName, type Storage } from "../kernels/device.ts";
import { type Backend, backendOf, callKernel, findBackend } from "../kernels/backend.ts";

/** What a VJP rule sees: the primitive's inputs, outputs and static params. */
export interface VjpContext<P> {
  /** The primitive's inputs (views kept alive for the pullback). */
  readonly inputs: readonly Tensor[];
  /** The primitive's outputs. */
  readonly outputs: readonly Tensor[];
  /** The static parameters the op was called with. */
  readonly params: P;
}

/**
 * A VJP rule: given one cotangent per output (same shape as the output), returns one cotangent
 * per input, or null where the input gets none. A cotangent may keep the broadcast output shape;
 * the autodiff walker sums it down to the input's shape.
 */
export type VjpRule<P> = (
  cotangents: readonly Tensor[],
  ctx: VjpContext<P>,
) => (Tensor | null)[];

/** A primitive op. `vjp: "none"` marks an op with no gradient (integer results, comparisons). */
export interface Primitive<P> {
  /** The op's name, used in error messages. */
  readonly name: string;
  /** Runs the kernels: untraced inputs in, fresh outputs out. */
  readonly forward: (inputs: readonly Tensor[], params: P) => Tensor[];
  /** The VJP rule, or `"none"` for ops without a gradient. */
  readonly vjp: VjpRule<P> | "none";
  /**
   * The inputs and outputs, by index, whose values the VJP rule reads (default: all of both).
   * A traced node keeps only these alive. The others stay in the rule's context with their
   * shape, dtype and autodiff links, but their storage is freed once nothing else holds it:
   * intermediates whose values no pullback reads (an add's operands, a slice's source, a
   * concat's pieces) do not wait in memory for the backward pass.
   */
  readonly saves?: { readonly inputs?: readonly number[]; readonly outputs?: readonly number[] };
}

/**
 * A recorded application of a primitive inside one or more `vjp` traces. It holds its own
 * views of its inputs and outputs, so a caller disposing those handles (as composite ops do
 * with their intermediates) does not free what the pullback needs; the views belong to the
 * scope that was current when the op ran.
 */
export interface Node {
  /** The primitive applied. */
  readonly primitive: Primitive<unknown>;
  /** Views of the inputs. */
  readonly inputs: readonly Tensor[];
  /** The static parameters. */
  readonly params: unknown;
  /** Views of the outputs (filled by `bind`). */
  readonly outputs: Tensor[];
  /** Shapes and dtypes of the outputs. */
  readonly outputShapes: (readonly number[])[];
  /** Ids of the traces this node depends on. */
  readonly traces: ReadonlySet<number>;
  /** Device of the outputs (set by `bind`; unsaved outputs cannot say). */
  device?: DeviceName;
}

/** Whether `node` keeps input (`"inputs"`) or output `i` alive for its VJP rule. */
export function isSaved(node: Node, kind: "inputs" | "outputs", i: number): boolean {
  const list = node.primitive.saves?.[kind];
  return list === undefined || list.includes(i);
}

/**
 * The common `saves` of elementwise rules: the rule reads nothing but the cotangent, the
 * (first) input, both inputs, or the output.
 */
export const SAVES: Readonly<
  Record<"nothing" | "input" | "inputs" | "output", { inputs: number[]; outputs: number[] }>
> = {
  nothing: { inputs: [], outputs: [] },
  input: { inputs: [0], outputs: [] },
  inputs: { inputs: [0, 1], outputs: [] },
  output: { inputs: [], outputs: [0] },
};

/** Defines a primitive. A differentiable one must give its VJP rule here. */
export function definePrimitive<P>(def: Primitive<P>): Primitive<P> {
  return Object.freeze(def);
}

/** Creates the node for a traced application (also used for trace leaves). */
export function makeNode<P>(
  primitive: Primitive<P>,
  inputs: readonly Tensor[],
  params: P,
  traces: ReadonlySet<number>,
): Node {
  return {
    primitive: primitive as Primitive<unknown>,
    inputs,
    params,
    outputs: [],
    outputShapes: [],
    traces,
  };
}

/**
 * Ids of the traces whose function is running now. Only they record nodes: once a traced
 * function has returned, nothing computed later can reach its outputs, so ops on its tensors
 * (a pullback's own arithmetic, a user's metrics) run untraced and keep no graph. A trace's
 * function is synchronous, so opening and closing nest like calls.
 */
const openTraces = new Set<number>();
let lastTrace = 0;

/** Starts a new trace (used by `vjp`); returns its id. Close it with {@linkcode closeTrace}. */
export function openTrace(): number {
  const id = ++lastTrace;
  openTraces.add(id);
  return id;
}

/** Ends a trace: later ops on its tensors no longer record nodes for it. */
export function closeTrace(id: number): void {
  openTraces.delete(id);
}

/** The open traces among `traces`, or null when there are none. */
export function openTracesOf(traces: Iterable<number>): Set<number> | null {
  let out: Set<number> | null = null;
  for (const id of traces) if (openTraces.has(id)) (out ??= new Set()).add(id);
  return out;
}

/** The node each tensor recorded for a backward pass belongs to. */
const holders = new WeakMap<Tensor, Node>();

/** Marks tensors as held by `node` for its backward pass (see `heldByOpenTrace` below). */
export function holdFor(node: Node, tensors: Iterable<Tensor>): void {
  for (const t of tensors) holders.set(t, node);
}

/**
 * Whether `t` is held by a node of an open trace: `scope` then keeps it (moving it to the
 * enclosing scope) instead of disposing it, since the trace's pullback will need it.
 */
function heldByOpenTrace(t: Tensor): boolean {
  const node = holders.get(t);
  if (!node || openTraces.size === 0) return false;
  for (const id of node.traces) if (openTraces.has(id)) return true;
  return false;
}
setScopeHold(heldByOpenTrace);

/** Runs a primitive, recording a node when any input is traced by an open trace. */
export function bind<P>(prim: Primitive<P>, inputs: readonly Tensor[], params: P): Tensor[] {
  assertLive(prim.name, inputs);
  const outs = prim.forward(inputs, params);
  if (prim.vjp === "none" || openTraces.size === 0) return outs;
  let traces: Set<number> | null = null;
  for (const x of inputs) {
    if (x.node) {
      for (const id of x.node.traces) if (openTraces.has(id)) (traces ??= new Set()).add(id);
    }
  }
  if (!traces) return outs;
  const node = makeNode(
    prim,
    inputs.map((x) => x.view(x.shape, x.node, x.nodeIndex)),
    params,
    traces,
  );
  node.device = outs[0]?.device;
  // A handle the rule never reads is disposed at once: it keeps its shape, dtype and links.
  node.inputs.forEach((v, i) => isSaved(node, "inputs", i) ? holdFor(node, [v]) : v.dispose());
  return outs.map((o, i) => {
    node.outputShapes.push(o.shape);
    node.outputs.push(o);
    // Integer outputs (argmax, indices) carry no gradient and stay untraced.
    const out = isFloat(o.dtype) ? o.view(o.shape, node, i) : o.view(o.shape);
    if (isSaved(node, "outputs", i)) holdFor(node, [o]);
    else o.dispose();
    return out;
  });
}

/**
 * The VJP rule of a fused kernel's backward primitive: differentiating it again (a
 * second-order gradient) throws a TypeError naming the op and the composition to use instead.
 */
export function refuseSecondOrder<P>(op: string, instead: string): VjpRule<P> {
  return () => {
    throw new TypeError(
      `${op}: second-order gradients are not supported (the backward pass is a fused ` +
        `kernel); use ${instead} for higher-order derivatives`,
    );
  };
}

/** Runs a single-output primitive. */
export function bind1<P>(prim: Primitive<P>, inputs: readonly Tensor[], params: P): Tensor {
  return bind(prim, inputs, params)[0];
}

/** Shape and dtype of one kernel output. */
export interface KernelOutput {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/**
 * Runs kernel `name` on the backend of `device` (default: the first input's) with the inputs'
 * storages and `spec`, and returns its outputs as new tensors of the given shapes and dtypes.
 * Every output's size is checked against the device's limit first (a RangeError naming `op`,
 * default `name`, the shape and the limit), so nothing is allocated for a refused op, and so
 * are its operands against the backend's `operandLimit` for the kernel. A backend
 * without the kernel, or whose `accepts` declines this call, runs its fallback backend's on
 * copies of the inputs; with no fallback that
 * has it, a TypeError names the kernel and the backend.
 */
export function launch(
  name: string,
  inputs: readonly Tensor[],
  spec: unknown,
  outputs: readonly KernelOutput[],
  device: Device = deviceOf(inputs[0]),
  op: string = name,
): Tensor[] {
  const sizes = outputs.map((o) => checkAllocation(op, device, o.shape, o.dtype));
  const backend = backendOf(device);
  const limit = backend.operandLimit?.(name);
  if (limit !== undefined) {
    inputs.forEach((t) => checkOperand(op, name, backend, limit, t, storageOf(t).byteLength));
    outputs.forEach((o, i) => checkOperand(op, name, backend, limit, o, sizes[i]));
  }
  const kernel = backend.kernels[name];
  const out =
    kernel !== undefined && (backend.accepts?.(name, spec, inputs.map((t) => t.dtype)) ?? true)
      ? counted(
        backend,
        name,
        callKernel(kernel, device, inputs.map(storageOf), spec),
        outputs,
      )
      : runFallback(backend, name, inputs, spec, outputs);
  return out.map((s, i) => fromStorage(device, s, outputs[i].shape, outputs[i].dtype));
}

/** Throws a RangeError when an operand of `bytes` passes a kernel's `limit` (see `launch`). */
function checkOperand(
  op: string,
  kernel: string,
  backend: Backend,
  limit: number,
  { shape, dtype }: KernelOutput,
  bytes: number,
) {
  if (bytes <= limit) return;
  throw new RangeError(
    `${op}: a ${dtype} tensor of [${shape.join(",")}] (${bytes} bytes) is over the ` +
      `${backend.name} limit of ${limit} bytes per storage binding, and kernel "${kernel}" ` +
      "cannot split its work into pieces that fit",
  );
}

/** {@linkcode launch} for a kernel with one output. */
export function launch1(
  name: string,
  inputs: readonly Tensor[],
  spec: unknown,
  output: KernelOutput,
  device?: Device,
  op?: string,
): Tensor {
  return launch(name, inputs, spec, [output], device, op)[0];
}

/** Checks that a kernel returned one storage per expected output. */
function counted(
  backend: Backend,
  name: string,
  out: readonly Storage[],
  outputs: readonly KernelOutput[],
): readonly Storage[] {
  if (out.length === outputs.length) return out;
  for (const s of out) backend.device.free(s);
  throw new Error(
    `launch: kernel "${name}" of backend ${backend.name} returned ${out.length} outputs, ` +
      `expected ${outputs.length}`,
  );
}

/** The fallback backend that runs `name` for `backend`, or a TypeError saying why none can. */
function fallbackFor(backend: Backend, name: string): Backend {
  const target = backend.fallback === undefined ? undefined : findBackend(backend.fallback);
  if (!target?.kernels[name]) {
    const also = backend.fallback === undefined
      ? "and declares no fallback backend"
      : `and neither has its fallback backend ${backend.fallback}`;
    throw new TypeError(`launch: backend ${backend.name} has no kernel "${name}" ${also}`);
  }
  if (!backend.toHost || !target.toHost) {
    throw new TypeError(
      `launch: backend ${backend.name} falls back to ${target.name} for kernel "${name}", ` +
        "but both need synchronous host copies (toHost)",
    );
  }
  return target;
}

/** Runs kernel `name` of `backend`'s fallback on copies of the inputs; copies the outputs back. */
function runFallback(
  backend: Backend,
  name: string,
  inputs: readonly Tensor[],
  spec: unknown,
  outputs: readonly KernelOutput[],
): Storage[] {
  const target = fallbackFor(backend, name);
  const to = target.device;
  const copies = inputs.map((t) =>
    to.upload(backend.toHost!(storageOf(t), t.dtype, t.size), t.dtype)
  );
  try {
    const outs = counted(target, name, callKernel(target.kernels[name], to, copies, spec), outputs);
    return outs.map((s, i) => {
      const { shape, dtype } = outputs[i];
      const back = backend.device.upload(target.toHost!(s, dtype, sizeOf(shape)), dtype);
      to.free(s);
      return back;
    });
  } finally {
    for (const c of copies) to.free(c);
  }
}

/**
 * Whether `device` can run kernel `name`, itself or through its fallback (a backend may list a
 * kernel its adapter cannot run, such as a shader needing more storage bindings).
 */
export function kernelSupported(device: Device, name: string): boolean {
  const backend = backendOf(device);
  if (backend.kernels[name]) return backend.supports?.(name) ?? true;
  try {
    const target = fallbackFor(backend, name);
    return target.supports?.(name) ?? true;
  } catch {
    return false;
  }
}
