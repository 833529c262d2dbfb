/* MPI smoke test for socker-test/mpi: every rank contributes rank+1 to an MPI_Allreduce(SUM).
 *
 *   rank 0 prints          allreduce ranks=N sum=S        (S must be N*(N+1)/2)
 *   every rank prints      rank R of N cgroup <its memory cgroup line from /proc/self/cgroup>
 *
 * Usage: allreduce [COUNT]   reduce COUNT longs instead of one (default 1). A large COUNT
 * (e.g. 1000000, 8 MB) makes shared-memory transports use their single-copy path (CMA).
 *
 * Exit status 0 only if every rank saw the expected sum. Built into the image by
 * integration/images/build-mpi as /opt/socker-test/allreduce.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void memory_cgroup(char *out, size_t size)
{
    char line[4096];
    FILE *f = fopen("/proc/self/cgroup", "r");
    snprintf(out, size, "(none)");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        /* cgroup v1: "4:memory:/path"; cgroup v2 only: "0::/path" */
        if (strstr(line, ":memory:") != NULL || strncmp(line, "0::", 3) == 0) {
            snprintf(out, size, "%s", line);
            if (strstr(line, ":memory:") != NULL)
                break;
        }
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    int rank, size, bad = 0;
    long i, count = 1, sum, expected;
    long *mine, *total;
    char cgroup[4096];

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    if (argc > 1)
        count = strtol(argv[1], NULL, 10);
    if (count < 1 || count > (1L << 28)) {
        if (rank == 0)
            fprintf(stderr, "usage: allreduce [COUNT]  (1 <= COUNT <= 2^28)\n");
        MPI_Finalize();
        return 2;
    }
    mine = malloc(count * sizeof *mine);
    total = malloc(count * sizeof *total);
    if (mine == NULL || total == NULL) {
        fprintf(stderr, "rank %d: out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (i = 0; i < count; i++)
        mine[i] = rank + 1;
    MPI_Allreduce(mine, total, (int)count, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    expected = (long)size * (size + 1) / 2;
    sum = total[0];
    for (i = 0; i < count; i++)
        if (total[i] != expected)
            bad = 1;

    if (rank == 0) {
        printf("allreduce ranks=%d sum=%ld\n", size, sum);
        fflush(stdout);
    }
    /* Keep the per-rank lines after rank 0's summary. */
    MPI_Barrier(MPI_COMM_WORLD);
    memory_cgroup(cgroup, sizeof cgroup);
    printf("rank %d of %d cgroup %s\n", rank, size, cgroup);
    fflush(stdout);

    MPI_Finalize();
    free(mine);
    free(total);
    if (bad) {
        fprintf(stderr, "rank %d: allreduce sum %ld, expected %ld in every element\n", rank, sum, expected);
        return 1;
    }
    return 0;
}
