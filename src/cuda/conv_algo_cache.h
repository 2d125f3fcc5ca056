/* A small on-disk cache of the cuDNN convolution algorithm chosen per
 * convolution signature, so that a later start skips the exhaustive search.
 *
 * File: $FACEGRAPH_CACHE_DIR/cudnn-conv-algos.tsv, else
 * $XDG_CACHE_HOME/facegraph/cudnn-conv-algos.tsv, else
 * ~/.cache/facegraph/cudnn-conv-algos.tsv. One entry per line:
 * "<key>\t<algo>\t<math type>". Loaded lazily once per process; new entries
 * are appended; a corrupt file is ignored and rewritten on the next store.
 * Failures to read or write the file are silent (the cache is an
 * optimisation). Thread-safe. */
#ifndef FACEGRAPH_CUDA_CONV_ALGO_CACHE_H
#define FACEGRAPH_CUDA_CONV_ALGO_CACHE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Keys are at most this long (longer keys are never cached). */
#define CONV_ALGO_KEY_MAX 480

/* 1 and *algo / *math_type set when the key is cached, else 0. */
int conv_algo_cache_lookup(const char *key, int *algo, int *math_type);
/* Records (and persists) the choice for key. */
void conv_algo_cache_store(const char *key, int algo, int math_type);

#ifdef __cplusplus
}
#endif
#endif
