/*
 * Test steps on reactors, for unit tests that run mimo's libraries in their own process: run
 * a function on a reactor and wait until it calls sem_post(&g_sem) (or post), with what it
 * found wrong (CHECK) reported as the test's failure on the test's thread; JSON-RPC calls on
 * reactor 0 as a client would make them.
 */
#ifndef MIMO_TEST_REACTOR_STEPS_H
#define MIMO_TEST_REACTOR_STEPS_H

#include <jansson.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>

#include "mimo/reactor.h"

extern sem_t g_sem;
/* The first failure found on a reactor during the current step. */
extern char g_fail[256];

#define CHECK(cond)                                                                               \
	do {                                                                                      \
		if (!(cond) && g_fail[0] == '\0')                                                 \
			snprintf(g_fail, sizeof(g_fail), "%s:%d: %s", __FILE__, __LINE__, #cond); \
	} while (0)

/* Wait up to seconds for the step to end (the test fails when it does not). */
void wait_sem(int seconds);
/* fn(arg) on that reactor; returns once it posted g_sem, failing the test with g_fail. */
void run_on(uint32_t reactor, mimo_msg_fn fn, void *arg, int seconds);
/* A message function that ends the step. */
void post(void *arg);
/* A JSON-RPC call on reactor 0; an error answer fails the test. */
void rpc(const char *method, json_t *params);

#endif
