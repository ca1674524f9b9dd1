/* What one membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) costs the caller, with another
 * thread of the process running (so the kernel sends it an IPI) and alone. README
 * "Numbers", attempt 17: the heavy side of the asymmetric fence pair it tried.
 *
 *     gcc -O2 -pthread docs/perf/experiments/membarrier_cost.c -o /tmp/membarrier_cost && /tmp/membarrier_cost
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MEMBARRIER_CMD_PRIVATE_EXPEDITED (1 << 3)
#define MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED (1 << 4)

static atomic_int stop;

static void *spin(void *arg) {
    (void)arg;
    volatile long x = 0;
    while (!atomic_load(&stop)) x++;
    return NULL;
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static double per_call(int n) {
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
            perror("membarrier");
            return -1;
        }
    }
    return (now_us() - t0) / n;
}

int main(void) {
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0) {
        perror("membarrier register");
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, spin, NULL);
    usleep(100000);
    double with_sibling = per_call(20000);
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    double alone = per_call(20000);
    printf("membarrier(PRIVATE_EXPEDITED): %.2f us per call with a running sibling thread, "
           "%.2f us alone\n", with_sibling, alone);
    return 0;
}
