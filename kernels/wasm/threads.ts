/**
 * The thread pool: `threads - 1` workers, each with its own instance of the kernel module over
 * the shared memory, plus the calling thread. A job is posted through a shared control block:
 * the caller writes the job's id and arguments, bumps a generation counter and wakes the
 * workers (`Atomics.notify`), runs share 0 itself (a job may instead hand out items one at a
 * time from a shared counter), then blocks (`Atomics.wait`) until every
 * worker has counted its share done. Kernels are therefore synchronous, like the CPU ones.
 * With one thread no worker is started and jobs run inline.
 *
 * The workers are `node:worker_threads` workers, unreferenced once started: Deno's web
 * `Worker` has no `unref`, and an idle pool must not keep the process alive at exit.
 * @module
 */
import { Worker } from "node:worker_threads";
import { JOBS } from "./jobs.ts";
import { counter, MAX_ARGS, Runtime } from "./runtime.ts";

/** Control block slots (i32). */
const GEN = 0, DONE = 1, JOB = 2, QUIT = 3, FAILED = 4, NEXT = 5;
/** Byte offset of the f64 job arguments in the control block. */
const ARGS = 64;

/** Runs jobs on `threads` threads over one shared memory. */
export class ThreadPool {
  readonly #ctl: Int32Array;
  readonly #args: Float64Array;
  #workers: Worker[];
  #disposed = false;

  private constructor(
    readonly runtime: Runtime,
    readonly threads: number,
    sab: SharedArrayBuffer,
    workers: Worker[],
  ) {
    this.#ctl = new Int32Array(sab, 0, 16);
    this.#args = new Float64Array(sab, ARGS, MAX_ARGS);
    this.#workers = workers;
  }

  /** Starts `threads - 1` workers and waits until each has instantiated the module. */
  static async create(
    memory: WebAssembly.Memory,
    bytes: Uint8Array<ArrayBuffer>,
    threads: number,
  ): Promise<ThreadPool> {
    const runtime = await Runtime.create(memory, bytes);
    const sab = new SharedArrayBuffer(ARGS + 8 * MAX_ARGS);
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let i = 1; i < threads; i++) {
      const w = new Worker(new URL("./worker.ts", import.meta.url));
      workers.push(w);
      ready.push(
        new Promise((resolve, reject) => {
          w.once("message", () => resolve());
          w.once("error", (e: Error) => reject(new Error(`wasm worker: ${e.message}`)));
        }),
      );
      w.postMessage({ memory, bytes, ctl: sab, part: i, parts: threads });
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      for (const w of workers) w.terminate();
      throw e;
    }
    for (const w of workers) w.unref();
    return new ThreadPool(runtime, threads, sab, workers);
  }

  /**
   * Runs job `id` with `args` on every thread and returns when all shares are done; with
   * `inline`, on the calling thread alone (small work, where waking the workers costs more
   * than it saves; every job gives the same bits either way).
   */
  run(id: number, args: readonly number[], inline = false): void {
    if (this.#disposed) throw new Error("wasm: the device was disposed");
    if (args.length > MAX_ARGS) throw new RangeError(`wasm: ${args.length} job arguments`);
    this.#args.set(args);
    const parts = this.threads;
    if (parts === 1 || inline) return JOBS[id](this.runtime, this.#args, 0, 1, counter());
    const ctl = this.#ctl;
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ctl, FAILED, 0);
    Atomics.store(ctl, JOB, id);
    Atomics.store(ctl, NEXT, 0);
    Atomics.add(ctl, GEN, 1);
    Atomics.notify(ctl, GEN);
    let error: unknown;
    try {
      JOBS[id](this.runtime, this.#args, 0, parts, () => Atomics.add(ctl, NEXT, 1));
    } catch (e) {
      error = e;
    }
    for (;;) {
      const done = Atomics.load(ctl, DONE);
      if (done >= parts - 1) break;
      Atomics.wait(ctl, DONE, done);
    }
    if (error) throw error;
    if (Atomics.load(ctl, FAILED)) throw new Error(`wasm: job ${id} failed in a worker`);
  }

  /** Stops the workers; the pool cannot run jobs afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    Atomics.store(this.#ctl, QUIT, 1);
    Atomics.add(this.#ctl, GEN, 1);
    Atomics.notify(this.#ctl, GEN);
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
  }
}

/** The worker side: waits for jobs and runs share `part` of each (used by `worker.ts`). */
export function serve(runtime: Runtime, sab: SharedArrayBuffer, part: number, parts: number): void {
  const ctl = new Int32Array(sab, 0, 16);
  const args = new Float64Array(sab, ARGS, MAX_ARGS);
  const claim = () => Atomics.add(ctl, NEXT, 1);
  let seen = 0; // the generation when the pool was made, before any job
  for (;;) {
    Atomics.wait(ctl, GEN, seen);
    const gen = Atomics.load(ctl, GEN);
    if (gen === seen) continue;
    seen = gen;
    if (Atomics.load(ctl, QUIT)) return;
    try {
      JOBS[Atomics.load(ctl, JOB)](runtime, args, part, parts, claim);
    } catch (e) {
      Atomics.store(ctl, FAILED, 1);
      console.error(e);
    }
    Atomics.add(ctl, DONE, 1);
    Atomics.notify(ctl, DONE);
  }
}
