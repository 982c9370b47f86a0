/* Cross-core round trip: two threads, pinned to two CPUs, pass one cache line back and
 * forth. Built and loaded by cross_core.py (ctypes); not part of the package. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

static _Alignas(64) atomic_int flag;
static int rounds_left;

static int pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *answer(void *cpu) {
    pin((int)(long)cpu);
    for (int i = 0; i < rounds_left; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 1) {
        }
        atomic_store_explicit(&flag, 0, memory_order_release);
    }
    return 0;
}

/* Nanoseconds per round trip over `rounds` trips between CPUs `a` and `b`, after as many
 * untimed ones (the other thread's start, both cores leaving idle); -1 on failure. */
double round_trip_ns(int rounds, int a, int b) {
    cpu_set_t old;
    pthread_t other;
    struct timespec start, stop;
    if (rounds < 1 || pthread_getaffinity_np(pthread_self(), sizeof old, &old) != 0) return -1;
    rounds_left = 2 * rounds;
    atomic_store(&flag, 0);
    if (pin(a) != 0 || pthread_create(&other, 0, answer, (void *)(long)b) != 0) {
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
