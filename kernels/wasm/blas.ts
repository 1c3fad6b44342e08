/**
 * Optional matmul through the system's BLAS (`cblas_sgemm`) over Deno's FFI: OpenBLAS on Linux,
 * Accelerate on macOS. The CPU backend uses it for products large enough to pay for the call,
 * reading and writing the tensors in place in the shared wasm memory, when the process was
 * granted `--allow-ffi` (checked without prompting) and a library opens; otherwise, or with
 * `LONGSEQ_BLAS=0`, every product runs on the wasm kernel. Nothing here is required.
 * @module
 */

/** The `sgemm` the matmul kernel calls: row-major `C = op(A) op(B)`, every count in elements. */
export interface Blas {
  /** The library that was opened (for the device's description). */
  readonly name: string;
  /**
   * `c[m, n] = op(a) @ op(b)` with leading dimensions `lda`, `ldb`, `ldc`; `op` transposes
   * when the flag is set. The arrays are views on the operands' first elements.
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    lda: number,
    b: Float32Array,
    ldb: number,
    c: Float32Array,
    ldc: number,
  ): void;
}

/** Libraries tried in order. */
const CANDIDATES: readonly string[] = [
  "libopenblas.so.0",
  "libopenblas.so",
  "/System/Library/Frameworks/Accelerate.framework/Accelerate",
  "libopenblas.dylib",
];

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32", // order
      "i32", // transA
      "i32", // transB
      "i32", // m
      "i32", // n
      "i32", // k
      "f32", // alpha
      "buffer", // a
      "i32", // lda
      "buffer", // b
      "i32", // ldb
      "f32", // beta
      "buffer", // c
      "i32", // ldc
    ],
    result: "void",
  },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
} as const;

const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

/** Whether a permission is granted, asking nothing (false where the query itself is refused). */
function granted(descriptor: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(descriptor).state === "granted";
  } catch {
    return false;
  }
}

/**
 * Opens the system BLAS with `threads` threads, or returns null: without the `ffi`
 * permission, with `LONGSEQ_BLAS=0`, or when no library opens.
 */
export function openBlas(threads: number): Blas | null {
  if (!granted({ name: "ffi" })) return null;
  if (granted({ name: "env", variable: "LONGSEQ_BLAS" }) && Deno.env.get("LONGSEQ_BLAS") === "0") {
    return null;
  }
  for (const path of CANDIDATES) {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch {
      continue;
    }
    // OpenBLAS splits a product across rows and columns, never the sum, so the thread count
    // changes no result; matching ours (set per call: the setting is per process, and devices
    // may differ) keeps to the cores the user gave us.
    const setThreads = lib.symbols.openblas_set_num_threads;
    const gemm = lib.symbols.cblas_sgemm;
    return {
      name: path.split("/").at(-1)!,
      sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc) {
        setThreads?.(threads);
        gemm(
          ROW_MAJOR,
          transA ? TRANS : NO_TRANS,
          transB ? TRANS : NO_TRANS,
          m,
          n,
          k,
          1,
          a,
          lda,
          b,
          ldb,
          0,
          c,
          ldc,
        );
      },
    };
  }
  return null;
}
