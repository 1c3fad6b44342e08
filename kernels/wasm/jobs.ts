/**
 * The table of jobs the thread pool runs, by index (each kernel file exports its index).
 * @module
 */
import type { JobFn } from "./runtime.ts";
import { JOB_MATMUL, matmulJob } from "./matmul.ts";
import { elementwiseJob, JOB_ELEMENTWISE } from "./elementwise.ts";
import { JOB_REDUCE, JOB_SOFTMAX, reduceJob, softmaxJob } from "./reduce.ts";
import { chunkAttentionJob, JOB_CHUNK_ATTENTION } from "./chunk_attention.ts";
import {
  JOB_LAYER_NORM,
  JOB_LAYER_NORM_GRAD,
  layerNormGradJob,
  layerNormJob,
} from "./layer_norm.ts";
import { chunkAttentionGradJob, JOB_CHUNK_ATTENTION_GRAD } from "./chunk_attention_grad.ts";
import { blockSparseJob, JOB_BLOCK_SPARSE } from "./block_sparse.ts";

const jobs: JobFn[] = [];
jobs[JOB_MATMUL] = matmulJob;
jobs[JOB_ELEMENTWISE] = elementwiseJob;
jobs[JOB_REDUCE] = reduceJob;
jobs[JOB_SOFTMAX] = softmaxJob;
jobs[JOB_CHUNK_ATTENTION] = chunkAttentionJob;
jobs[JOB_LAYER_NORM] = layerNormJob;
jobs[JOB_LAYER_NORM_GRAD] = layerNormGradJob;
jobs[JOB_CHUNK_ATTENTION_GRAD] = chunkAttentionGradJob;
jobs[JOB_BLOCK_SPARSE] = blockSparseJob;

/** Jobs by index. */
export const JOBS: readonly JobFn[] = jobs;
