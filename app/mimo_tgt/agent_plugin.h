/* mimo_tgt as a plugin of mimo_agent (agent_plugin.c). */
#ifndef MIMO_TGT_AGENT_PLUGIN_H
#define MIMO_TGT_AGENT_PLUGIN_H

/* Connect as plugin "mimo_tgt" to the agent on socket_path (in the background; reconnecting
 * for ever). Reactors must be running. Returns 0 or a negative errno. */
int app_agent_start(const char *socket_path);
/* Before the reactors stop: flush answers for up to 1 s, disconnect. */
void app_agent_stop(void);

#endif
