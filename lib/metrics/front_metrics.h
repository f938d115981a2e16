/*
 * The families of the agent's and gateway's HTTP front (lib/fabric/http.c): answers by status
 * class, connections open, connections cut by the request deadline. Any thread; h may be
 * NULL (then nothing is written).
 */
#ifndef MIMO_METRICS_FRONT_METRICS_H
#define MIMO_METRICS_FRONT_METRICS_H

#include "expo.h"
#include "http_front.h"

void mimo_metrics_http_front(struct mimo_expo *e, struct fab_http *h);

#endif
