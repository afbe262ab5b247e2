#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "threads.h"
#include "base/checked.h"

#include <string.h>

#if defined(MNV3_THREADS_OPENMP)
#include <omp.h>

struct mnv3_pool {
    uint32_t threads;
};

const char *mnv3_pool_backend(void) { return "openmp"; }
uint32_t mnv3_pool_max_threads(void) { return MNV3_MAX_THREADS; }
size_t mnv3_pool_bytes(uint32_t threads) {
    (void)threads;
    return sizeof(struct mnv3_pool);
}

mnv3_status mnv3_pool_init(void *memory, uint32_t threads, mnv3_pool **out) {
    mnv3_pool *p = (mnv3_pool *)memory;
    p->threads = threads;
    *out = p;
    return MNV3_OK;
}

void mnv3_pool_run(mnv3_pool *p, uint32_t tasks, mnv3_task_fn fn, void *arg) {
    int t, n = (int)tasks;
    MNV3_ASSERT(tasks <= p->threads || tasks <= 1);
    if (tasks <= 1 || p->threads <= 1) {
        for (t = 0; t < n; ++t) fn(arg, (uint32_t)t);
        return;
    }
#pragma omp parallel for num_threads(n) schedule(static, 1)
    for (t = 0; t < n; ++t) fn(arg, (uint32_t)t);
}

void mnv3_pool_destroy(mnv3_pool *p) { (void)p; }

#elif defined(MNV3_THREADS_PTHREAD)
#include <pthread.h>
#include <sched.h>

/* Workers spin briefly on a generation counter (layers follow each other within
 * microseconds), then sleep on a condition variable so idle contexts cost nothing. */
#define SPIN_ROUNDS 20000

typedef struct worker {
    struct mnv3_pool *pool;
    uint32_t index;
    pthread_t thread;
} worker;

struct mnv3_pool {
    uint32_t threads, started;
    pthread_mutex_t mutex;
    pthread_cond_t wake, done;
    uint32_t generation;     /* bumped for every run; read atomically */
    uint32_t pending;        /* workers still busy with this generation */
    uint32_t stop;
    uint32_t tasks;
    mnv3_task_fn fn;
    void *arg;
    worker workers[1];       /* threads - 1 entries */
};

const char *mnv3_pool_backend(void) { return "pthread"; }
uint32_t mnv3_pool_max_threads(void) { return MNV3_MAX_THREADS; }

size_t mnv3_pool_bytes(uint32_t threads) {
    return sizeof(struct mnv3_pool) + (threads > 1 ? threads - 1 : 0) * sizeof(worker);
}

static void *worker_main(void *ptr) {
    worker *w = (worker *)ptr;
    mnv3_pool *p = w->pool;
    uint32_t seen = 0;
    for (;;) {
        uint32_t gen = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE);
        int spins = 0;
        while (gen == seen && spins < SPIN_ROUNDS) {
            ++spins;
            if ((spins & 1023) == 0) sched_yield();
            gen = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE);
        }
        if (gen == seen) {
            pthread_mutex_lock(&p->mutex);
            while ((gen = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE)) == seen)
                pthread_cond_wait(&p->wake, &p->mutex);
            pthread_mutex_unlock(&p->mutex);
        }
        seen = gen;
        if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) return NULL;
        if (w->index < p->tasks) p->fn(p->arg, w->index);
        if (__atomic_sub_fetch(&p->pending, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&p->mutex);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mutex);
        }
    }
}

static void broadcast_generation(mnv3_pool *p) {
    __atomic_store_n(&p->pending, p->started, __ATOMIC_RELEASE);
    pthread_mutex_lock(&p->mutex);
    __atomic_add_fetch(&p->generation, 1, __ATOMIC_ACQ_REL);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
}

static void wait_workers(mnv3_pool *p) {
    int spins = 0;
    while (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) != 0 && spins < SPIN_ROUNDS) ++spins;
    if (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) != 0) {
        pthread_mutex_lock(&p->mutex);
        while (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) != 0)
            pthread_cond_wait(&p->done, &p->mutex);
        pthread_mutex_unlock(&p->mutex);
    }
}

mnv3_status mnv3_pool_init(void *memory, uint32_t threads, mnv3_pool **out) {
    mnv3_pool *p = (mnv3_pool *)memory;
    uint32_t i;
    memset(p, 0, mnv3_pool_bytes(threads));
    p->threads = threads;
    if (pthread_mutex_init(&p->mutex, NULL) != 0) return MNV3_ERR_OUT_OF_MEMORY;
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    for (i = 1; i < threads; ++i) {
        worker *w = &p->workers[i - 1];
        w->pool = p;
        w->index = i;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            mnv3_pool_destroy(p);
            return MNV3_ERR_OUT_OF_MEMORY;
        }
        p->started++;
    }
    *out = p;
    return MNV3_OK;
}

void mnv3_pool_run(mnv3_pool *p, uint32_t tasks, mnv3_task_fn fn, void *arg) {
    uint32_t t;
    MNV3_ASSERT(tasks <= p->threads || tasks <= 1);
    if (tasks <= 1 || p->started == 0) {
        for (t = 0; t < tasks; ++t) fn(arg, t);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->tasks = tasks;
    broadcast_generation(p);
    fn(arg, 0);
    wait_workers(p);
}

void mnv3_pool_destroy(mnv3_pool *p) {
    uint32_t i, started;
    if (!p) return;
    started = p->started;
    if (started) {
        __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
        broadcast_generation(p);
        for (i = 0; i < started; ++i) pthread_join(p->workers[i].thread, NULL);
    }
    p->started = 0;
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mutex);
}

#else /* MNV3_THREADS_NONE */

struct mnv3_pool {
    uint32_t threads;
};

const char *mnv3_pool_backend(void) { return "none"; }
uint32_t mnv3_pool_max_threads(void) { return 1; }
size_t mnv3_pool_bytes(uint32_t threads) {
    (void)threads;
    return sizeof(struct mnv3_pool);
}

mnv3_status mnv3_pool_init(void *memory, uint32_t threads, mnv3_pool **out) {
    mnv3_pool *p = (mnv3_pool *)memory;
    p->threads = threads;
    *out = p;
    return MNV3_OK;
}

void mnv3_pool_run(mnv3_pool *p, uint32_t tasks, mnv3_task_fn fn, void *arg) {
    uint32_t t;
    (void)p;
    for (t = 0; t < tasks; ++t) fn(arg, t);
}

void mnv3_pool_destroy(mnv3_pool *p) { (void)p; }
#endif
