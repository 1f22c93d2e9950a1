/*  orrery-spawner: runs users' servers through a backend and is its host's node agent.
 *
 *  Owns server lifecycle state in Redis. In this revision it is a bus worker answering
 *  "ping"; the lifecycle, backends and node agent are the subject of issue 5.
 */
#include "orr_service.h"

int
main (int argc, char **argv)
{
    return orr_service_main (argc, argv, "spawner", "Orrery spawner: starts, polls and stops servers.", NULL, NULL,
                             NULL);
}
