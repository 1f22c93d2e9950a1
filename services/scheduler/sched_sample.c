/*  sched_sample: how many feasible nodes a placement looks for before it stops filtering.
 *
 *  Kubernetes' percentageOfNodesToScore: in a big cluster, filtering and scoring every node
 *  costs more than a slightly better choice is worth, so the scheduler stops once it has
 *  found enough feasible nodes, and starts the next search where this one stopped so that
 *  every node gets its turn. Adaptive by default: 50% minus 1% per 125 nodes, at least 5%,
 *  and never fewer than 100 nodes (below that, all of them).
 */
#include "sched.h"

int
sched_nodes_to_find (int total, int percent, int min_nodes)
{
    if (total <= min_nodes)
        return total;
    if (percent <= 0) {
        percent = 50 - total / 125;
        if (percent < 5)
            percent = 5;
    }
    if (percent >= 100)
        return total;
    int n = (int) ((int64_t) total * percent / 100);
    return n < min_nodes ? min_nodes : n;
}
