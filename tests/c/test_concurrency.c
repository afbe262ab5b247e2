/* Concurrency through the public API only: several threads at once create contexts on one
 * shared model, run them and free them, for every kernel set this CPU has, on a float32
 * and an int8 network. Every output must equal, bit for bit, what the same configuration
 * gives when one thread runs it alone. The shared model is fresh for each kernel set, so
 * the threads race to make its packed weights; contexts with 2 worker threads run beside
 * single-threaded ones; some arenas are the library's, some the caller's. The first thing
 * the process does is ask for the best kernel set from every thread at once.
 *
 * It runs in the normal suite (the build's threading backend, OpenMP by default) and under
 * ThreadSanitizer with the pthread backend (make test-tsan), where any data race in the
 * library fails it. MNV3_TEST_QUICK (emulators, sanitizers) shortens the loops. */
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mnv3.h"

#define WORKERS 4
#define INPUTS 3
#define SIDE 64
#define CLASSES 16
#define MAX_FEATURES 1024
#define CONFIGS 2 /* worker threads inside a context: 1 or 2 */

/* ---- a start gate, so that the threads begin together ---------------------------------- */

typedef struct gate {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int waiting, open;
} gate;

static void gate_init(gate *g) {
    pthread_mutex_init(&g->mutex, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->waiting = 0;
    g->open = 0;
}

static void gate_destroy(gate *g) {
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->mutex);
}

/* Each of `count` threads calls this; all return once the last has arrived. */
static void gate_pass(gate *g, int count) {
    pthread_mutex_lock(&g->mutex);
    if (++g->waiting == count) {
        g->open = 1;
        pthread_cond_broadcast(&g->cond);
    }
    while (!g->open) pthread_cond_wait(&g->cond, &g->mutex);
    pthread_mutex_unlock(&g->mutex);
}

/* ---- 1. the kernel set probe, first thing in the process ------------------------------- */

typedef struct probe_job {
    gate *start;
    mnv3_isa best;
    int available[5];
} probe_job;

static void *probe_worker(void *arg) {
    probe_job *j = (probe_job *)arg;
    int i;
    gate_pass(j->start, WORKERS);
    j->best = mnv3_isa_best();
    for (i = 0; i < 5; ++i) j->available[i] = mnv3_isa_available((mnv3_isa)i);
    return NULL;
}

static void test_probe(void) {
    pthread_t threads[WORKERS];
    probe_job jobs[WORKERS];
    gate start;
    int t, started = 0;
    gate_init(&start);
    for (t = 0; t < WORKERS; ++t) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].start = &start;
        if (pthread_create(&threads[t], NULL, probe_worker, &jobs[t]) != 0) break;
        ++started;
    }
    CHECK_MSG(started == WORKERS, "only %d of %d threads started", started, WORKERS);
    if (started < WORKERS) {
        /* Let the started ones through. */
        pthread_mutex_lock(&start.mutex);
        start.open = 1;
        pthread_cond_broadcast(&start.cond);
        pthread_mutex_unlock(&start.mutex);
    }
    for (t = 0; t < started; ++t) pthread_join(threads[t], NULL);
    for (t = 0; t < started; ++t) {
        CHECK(jobs[t].best == mnv3_isa_best());
        CHECK(memcmp(jobs[t].available, jobs[0].available, sizeof jobs[0].available) == 0);
        CHECK(mnv3_isa_available(jobs[t].best));
    }
    gate_destroy(&start);
}

/* ---- 2. contexts on one shared model --------------------------------------------------- */

typedef struct expected {
    float logits[INPUTS][CLASSES];
    float features[INPUTS][MAX_FEATURES];
} expected;

typedef struct shared_run {
    const mnv3_model *model;
    mnv3_isa isa;
    uint32_t features;
    const float *inputs[INPUTS];
    size_t input_len;
    const expected *want[CONFIGS];
    int rounds;
    gate start;
} shared_run;

typedef struct worker_job {
    shared_run *run;
    int index;
    int failures;  /* outputs that differ from the single-threaded ones */
    int errors;    /* calls that failed */
    char first_error[300];
} worker_job;

static mnv3_config config_for(const mnv3_model *m, mnv3_isa isa, uint32_t threads) {
    mnv3_config cfg;
    mnv3_config_init(&cfg, m);
    cfg.height = SIDE;
    cfg.width = SIDE;
    cfg.isa = isa;
    cfg.threads = threads;
    return cfg;
}

static void note_error(worker_job *j, const char *what, mnv3_status st, const mnv3_error *err) {
    if (j->errors++ == 0)
        snprintf(j->first_error, sizeof j->first_error, "%s: %s (%s)", what,
                 mnv3_status_string(st), err ? err->message : "");
}

/* Creates a context (in the caller's arena when `own_arena`), runs input `i` and compares. */
static void one_round(worker_job *j, int config, int i, int own_arena) {
    shared_run *r = j->run;
    mnv3_config cfg = config_for(r->model, r->isa, (uint32_t)config + 1);
    mnv3_context *ctx = NULL;
    mnv3_error err;
    mnv3_status st;
    size_t bytes = 0;
    void *arena = NULL;
    float logits[CLASSES], features[MAX_FEATURES];
    memset(&err, 0, sizeof err);
    if (own_arena) {
        st = mnv3_arena_size(r->model, &cfg, &bytes, &err);
        if (st != MNV3_OK) {
            note_error(j, "mnv3_arena_size", st, &err);
            return;
        }
        if (posix_memalign(&arena, MNV3_ARENA_ALIGNMENT, bytes) != 0) {
            note_error(j, "posix_memalign", MNV3_ERR_OUT_OF_MEMORY, NULL);
            return;
        }
    }
    st = mnv3_context_create(r->model, &cfg, arena, bytes, &ctx, &err);
    if (st != MNV3_OK) {
        note_error(j, "mnv3_context_create", st, &err);
        free(arena);
        return;
    }
    if (mnv3_context_isa(ctx) != r->isa) note_error(j, "mnv3_context_isa", MNV3_OK, NULL);
    st = mnv3_run(ctx, r->inputs[i], r->input_len, logits, CLASSES, features, r->features);
    if (st != MNV3_OK) {
        note_error(j, "mnv3_run", st, NULL);
    } else if (memcmp(logits, r->want[config]->logits[i], sizeof logits) != 0 ||
               memcmp(features, r->want[config]->features[i],
                      r->features * sizeof *features) != 0) {
        ++j->failures;
    }
    mnv3_context_free(ctx);
    free(arena);
}

static void *context_worker(void *arg) {
    worker_job *j = (worker_job *)arg;
    shared_run *r = j->run;
    int round;
    gate_pass(&r->start, WORKERS);
    for (round = 0; round < r->rounds; ++round) {
        /* Every thread a different input, thread count and arena owner each round. */
        int k = j->index + round;
        one_round(j, k % CONFIGS, k % INPUTS, (k / CONFIGS) % 2);
    }
    return NULL;
}

/* What one thread alone computes for each configuration and input. */
static int reference_outputs(const mnv3_model *m, mnv3_isa isa, const shared_run *r,
                             expected *want) {
    int config, i;
    for (config = 0; config < CONFIGS; ++config) {
        mnv3_config cfg = config_for(m, isa, (uint32_t)config + 1);
        mnv3_context *ctx = NULL;
        mnv3_error err;
        mnv3_status st = mnv3_context_create(m, &cfg, NULL, 0, &ctx, &err);
        CHECK_MSG(st == MNV3_OK, "%s: %s", mnv3_isa_name(isa), err.message);
        if (st != MNV3_OK) return 0;
        for (i = 0; i < INPUTS; ++i)
            CHECK_STATUS(mnv3_run(ctx, r->inputs[i], r->input_len, want[config].logits[i], CLASSES,
                                  want[config].features[i], r->features),
                         MNV3_OK);
        mnv3_context_free(ctx);
    }
    return 1;
}

typedef mnv3_status (*model_maker)(mnv3_arch, mnv3_flavor, double, uint32_t, uint64_t,
                                   mnv3_model **, mnv3_error *);

static void test_shared_model(const char *precision, model_maker make, mnv3_isa isa,
                              float *const *inputs, int rounds) {
    mnv3_model *alone = NULL, *shared = NULL;
    mnv3_model_info info;
    mnv3_error err;
    static expected want[CONFIGS];
    shared_run run;
    pthread_t threads[WORKERS];
    worker_job jobs[WORKERS];
    int t, i, started = 0, failures = 0, errors = 0;
    /* Two models of the same bytes: one for the references, and a fresh one for the threads,
     * whose packed weights they make among themselves. */
    CHECK_STATUS(make(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.5, CLASSES, 3, &alone, &err),
                 MNV3_OK);
    CHECK_STATUS(make(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.5, CLASSES, 3, &shared, &err),
                 MNV3_OK);
    if (!alone || !shared) goto done;
    CHECK_STATUS(mnv3_model_get_info(shared, &info), MNV3_OK);
    CHECK(info.feature_dim <= MAX_FEATURES && info.num_classes == CLASSES);
    memset(&run, 0, sizeof run);
    run.model = shared;
    run.isa = isa;
    run.features = info.feature_dim;
    run.input_len = (size_t)3 * SIDE * SIDE;
    run.rounds = rounds;
    for (i = 0; i < INPUTS; ++i) run.inputs[i] = inputs[i];
    for (i = 0; i < CONFIGS; ++i) run.want[i] = &want[i];
    if (!reference_outputs(alone, isa, &run, want)) goto done;
    gate_init(&run.start);
    for (t = 0; t < WORKERS; ++t) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].run = &run;
        jobs[t].index = t;
        if (pthread_create(&threads[t], NULL, context_worker, &jobs[t]) != 0) break;
        ++started;
    }
    CHECK_MSG(started == WORKERS, "only %d of %d threads started", started, WORKERS);
    if (started < WORKERS) {
        pthread_mutex_lock(&run.start.mutex);
        run.start.open = 1;
        pthread_cond_broadcast(&run.start.cond);
        pthread_mutex_unlock(&run.start.mutex);
    }
    for (t = 0; t < started; ++t) {
        pthread_join(threads[t], NULL);
        failures += jobs[t].failures;
        errors += jobs[t].errors;
        CHECK_MSG(jobs[t].errors == 0, "%s %s, thread %d: %d failed calls, the first %s",
                  precision, mnv3_isa_name(isa), t, jobs[t].errors, jobs[t].first_error);
    }
    CHECK_MSG(failures == 0, "%s %s: %d of %d concurrent runs differ from a run alone",
              precision, mnv3_isa_name(isa), failures, started * rounds);
    printf("%-7s %-7s %d threads x %d contexts: %d differ, %d errors\n", precision,
           mnv3_isa_name(isa), started, rounds, failures, errors);
    gate_destroy(&run.start);
done:
    mnv3_model_free(alone);
    mnv3_model_free(shared);
}

int main(void) {
    float *inputs[INPUTS];
    uint64_t state = 0x9E3779B97F4A7C15u;
    const size_t n = (size_t)3 * SIDE * SIDE;
    int isa, i, rounds = getenv("MNV3_TEST_QUICK") ? 4 : 12;
    size_t k;
    test_probe();
    for (i = 0; i < INPUTS; ++i) {
        inputs[i] = (float *)malloc(n * sizeof(float));
        if (!inputs[i]) {
            printf("out of memory\n");
            return 1;
        }
        for (k = 0; k < n; ++k) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            inputs[i][k] = (float)(state >> 40) / (float)(1 << 23) - 1.0f;
        }
    }
    /* Every kernel set the header names (mnv3_isa_name knows them all), where this CPU
     * runs it. */
    for (isa = MNV3_ISA_SCALAR; strcmp(mnv3_isa_name((mnv3_isa)isa), "unknown") != 0; ++isa) {
        if (!mnv3_isa_available((mnv3_isa)isa)) continue;
        test_shared_model("float32", mnv3_model_create_builtin, (mnv3_isa)isa, inputs, rounds);
        test_shared_model("int8", mnv3_model_create_builtin_int8, (mnv3_isa)isa, inputs, rounds);
    }
    for (i = 0; i < INPUTS; ++i) free(inputs[i]);
    return check_summary("test_concurrency");
}
