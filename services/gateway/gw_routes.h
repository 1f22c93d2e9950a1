/*  gw_routes: which handler answers which method and path. */
#ifndef GW_ROUTES_H
#define GW_ROUTES_H

#include "gw_http.h"

enum MHD_Result gw_route (void *ctx, const gw_request_t *req);

#endif
