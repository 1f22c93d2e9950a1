/*  orrery-scheduler: places every server on a node (filter, score, reserve).
 *
 *  Owns nodes and reservations in Redis. In this revision it is a bus worker answering
 *  "ping"; placement is the subject of issue 4.
 */
#include "orr_service.h"

int
main (int argc, char **argv)
{
    return orr_service_main (argc, argv, "scheduler", "Orrery scheduler: filter, score and reserve placements.", NULL,
                             NULL, NULL);
}
