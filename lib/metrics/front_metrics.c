/* The HTTP front's families (see front_metrics.h). */
#include "front_metrics.h"

void mimo_metrics_http_front(struct mimo_expo *e, struct fab_http *h)
{
	static const char *const classes[] = { NULL, "1xx", "2xx", "3xx", "4xx", "5xx" };
	struct fab_http_stats st;

	if (h == NULL)
		return;
	fab_http_get_stats(h, &st);
	mimo_expo_family(e, "mimo_http_responses_total", MIMO_EXPO_COUNTER,
			 "Answers of the HTTP API, by status class.");
	for (int i = 1; i < 6; i++)
		mimo_expo_u64(e, "mimo_http_responses_total",
			      (const char *const[]){ "code", classes[i], NULL }, st.responses[i]);
	mimo_expo_one_u64(e, "mimo_http_connections", MIMO_EXPO_GAUGE,
			  "Connections open on the HTTP API now.", st.conns_open);
	mimo_expo_one_u64(e, "mimo_http_deadline_closed_total", MIMO_EXPO_COUNTER,
			  "HTTP API connections closed for not sending a whole request in time.",
			  st.deadline_closed);
}
