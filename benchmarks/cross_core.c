/* Cross-core round trip: two threads, pinned to two CPUs, pass one cache line back and
 * forth. Built and loaded by cross_core.py (ctypes); not part of the package. Not
 * reentrant: one call at a time per process. */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

static _Alignas(64) atomic_int flag;
static int trips;

static void *answer(void *unused) {
    (void)unused;
    for (int i = 0; i < trips; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 1) {
        }
        atomic_store_explicit(&flag, 0, memory_order_release);
    }
    return 0;
}

/* Nanoseconds per round trip over `rounds` trips between CPUs `a` and `b`, after as many
 * untimed ones (the other thread's start, both cores leaving idle); -1 where the CPUs are
 * the same, `rounds` is out of range, or either thread cannot be pinned (two threads
 * spinning on one CPU would take a scheduler tick per trip). */
double round_trip_ns(int rounds, int a, int b) {
    cpu_set_t old, mine, theirs;
    pthread_attr_t attr;
    pthread_t other;
    struct timespec start, stop;
    if (rounds < 1 || rounds > INT_MAX / 2 || a == b || a < 0 || b < 0 || a >= CPU_SETSIZE ||
        b >= CPU_SETSIZE)
        return -1;
    if (pthread_getaffinity_np(pthread_self(), sizeof old, &old) != 0) return -1;
    CPU_ZERO(&mine);
    CPU_SET(a, &mine);
    CPU_ZERO(&theirs);
    CPU_SET(b, &theirs);
    if (pthread_setaffinity_np(pthread_self(), sizeof mine, &mine) != 0) return -1;
    trips = 2 * rounds;
    atomic_store(&flag, 0);
    /* The other thread starts pinned to b, or does not start at all. */
    int failed = pthread_attr_init(&attr) != 0;
    if (!failed) {
        failed = pthread_attr_setaffinity_np(&attr, sizeof theirs, &theirs) != 0 ||
                 pthread_create(&other, &attr, answer, 0) != 0;
        pthread_attr_destroy(&attr);
    }
    if (failed) {
        pthread_setaffinity_np(pthread_self(), sizeof old, &old);
        return -1;
    }
    for (int i = 0; i < 2 * rounds; i++) {
        if (i == rounds) clock_gettime(CLOCK_MONOTONIC, &start);
        atomic_store_explicit(&flag, 1, memory_order_release);
        while (atomic_load_explicit(&flag, memory_order_acquire) != 0) {
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &stop);
    pthread_join(other, 0);
    pthread_setaffinity_np(pthread_self(), sizeof old, &old);
    return ((stop.tv_sec - start.tv_sec) * 1e9 + (stop.tv_nsec - start.tv_nsec)) / rounds;
}
