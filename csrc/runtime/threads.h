/* Worker threads for splitting one layer across cores. Three backends, chosen at build
 * time: OpenMP (MNV3_THREADS_OPENMP, the Makefile's default when the compiler has it),
 * POSIX threads (MNV3_THREADS_PTHREAD, what the Swift package uses) and none
 * (MNV3_THREADS_NONE, for bare-metal firmware). All memory comes from the caller. */
#ifndef MNV3_THREADS_H
#define MNV3_THREADS_H

#include <stddef.h>
#include <stdint.h>
#include "mnv3.h"

#if !defined(MNV3_THREADS_OPENMP) && !defined(MNV3_THREADS_PTHREAD) && !defined(MNV3_THREADS_NONE)
#if defined(_OPENMP)
#define MNV3_THREADS_OPENMP 1
#elif defined(__unix__) || defined(__APPLE__)
#define MNV3_THREADS_PTHREAD 1
#else
#define MNV3_THREADS_NONE 1
#endif
#endif

typedef void (*mnv3_task_fn)(void *arg, uint32_t task);
typedef struct mnv3_pool mnv3_pool;

/* Name of the compiled-in backend: "openmp", "pthread" or "none". */
const char *mnv3_pool_backend(void);
/* Largest thread count the backend honours (1 for "none"). */
uint32_t mnv3_pool_max_threads(void);
size_t mnv3_pool_bytes(uint32_t threads);
/* Starts threads - 1 workers (pthread backend) inside `memory`. */
mnv3_status mnv3_pool_init(void *memory, uint32_t threads, mnv3_pool **out);
/* Runs fn(arg, t) for t in [0, tasks), each task on its own thread, and waits.
 * tasks <= threads. Never allocates. */
void mnv3_pool_run(mnv3_pool *pool, uint32_t tasks, mnv3_task_fn fn, void *arg);
void mnv3_pool_destroy(mnv3_pool *pool);

#endif
