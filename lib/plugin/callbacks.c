/*
 * The callback thread: runs the application's callbacks one at a time, in the order the agent
 * sent their frames, away from the reader. A DISPATCH is acknowledged once its callback has
 * returned; acknowledgements are cumulative, so one ACK covers a run of messages (sent when
 * the queue runs dry or every ACK_EVERY messages). A DISPATCH the agent sends again after a
 * reconnect (its ACK was lost) is recognised by its sequence number and only acknowledged.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_internal.h"

#define ACK_EVERY 64

void plugin_cb_push_locked(struct mimo_plugin *p, struct cb_item *item)
{
	item->next = NULL;
	if (p->cb_tail != NULL)
		p->cb_tail->next = item;
	else
		p->cb_head = item;
	p->cb_tail = item;
	pthread_cond_signal(&p->cb_cond);
}

static void run_retrieve(struct mimo_plugin *p, struct cb_item *it)
{
	uint32_t size =
		(uint32_t)(it->size < p->o.max_message_bytes ? it->size : p->o.max_message_bytes);
	struct mimo_wire_notify_reply r = { .notify_unique = it->notify_unique,
					    .offset = it->offset };
	uint8_t *data = malloc(size > 0 ? size : 1), *frame;
	long n;

	if (data == NULL)
		return;
	n = p->o.retrieve_cb(p->o.cb_arg, it->id, it->offset, data, size);
	if (n < 0) {
		r.error = n < -4095 ? -EIO : (int32_t)n;
	} else {
		r.size = (size_t)(n > (long)size ? size : n);
		r.data = data;
	}
	frame = malloc(mimo_wire_notify_reply_size(r.size));
	if (frame != NULL) {
		size_t len = mimo_wire_encode_notify_reply(frame, &r);

		pthread_mutex_lock(&p->lock);
		/* An answer for a connection that is gone would reach nobody who asked. */
		if (it->conn_gen == p->conn_gen)
			plugin_ctrl_append_locked(p, frame, len);
		pthread_mutex_unlock(&p->lock);
	}
	free(frame);
	free(data);
}

void *plugin_cb_main(void *arg)
{
	struct mimo_plugin *p = arg;
	unsigned since_ack = 0;
	uint64_t last_seq = 0, last_gen = 0;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct cb_item *it;
		bool dup = false;

		pthread_mutex_lock(&p->lock);
		while (p->cb_head == NULL && !p->stopping && !p->cb_stop)
			pthread_cond_wait(&p->cb_cond, &p->lock);
		if (p->stopping || p->cb_stop) {
			/* What was handled is acknowledged before the connection goes, so the
			 * agent does not send it to the next instance of this plugin. */
			if (since_ack > 0 && last_gen == p->conn_gen && p->connected) {
				uint8_t ack[MIMO_WIRE_ACK_SIZE];

				mimo_wire_encode_ack(ack, plugin_ctrl_unique_locked(p), last_seq);
				plugin_ctrl_append_locked(p, ack, sizeof(ack));
			}
			pthread_mutex_unlock(&p->lock);
			break;
		}
		it = p->cb_head;
		p->cb_head = it->next;
		if (p->cb_head == NULL)
			p->cb_tail = NULL;
		if (it->kind == CB_DISPATCH) {
			if (it->epoch != p->cb_epoch) {
				/* A new agent run numbers its messages afresh. */
				p->cb_epoch = it->epoch;
				p->last_seq = 0;
			}
			dup = it->seq <= p->last_seq;
			if (!dup)
				p->last_seq = it->seq;
		}
		pthread_mutex_unlock(&p->lock);

		switch (it->kind) {
		case CB_DISPATCH:
			if (!dup && p->o.recv_cb != NULL)
				p->o.recv_cb(p->o.cb_arg, it->id, it->data, it->len);
			pthread_mutex_lock(&p->lock);
			if (dup)
				p->st.duplicates++;
			else
				p->st.received++;
			since_ack++;
			last_seq = it->seq;
			last_gen = it->conn_gen;
			if (it->conn_gen == p->conn_gen && p->connected &&
			    (p->cb_head == NULL || since_ack >= ACK_EVERY)) {
				uint8_t ack[MIMO_WIRE_ACK_SIZE];

				mimo_wire_encode_ack(ack, plugin_ctrl_unique_locked(p), it->seq);
				plugin_ctrl_append_locked(p, ack, sizeof(ack));
				since_ack = 0;
			}
			pthread_mutex_unlock(&p->lock);
			break;
		case CB_NOTIFY:
			if (p->o.notify_cb != NULL)
				p->o.notify_cb(p->o.cb_arg, it->code, it->id, it->offset, it->size);
			break;
		case CB_RETRIEVE:
			run_retrieve(p, it);
			break;
		}
		free(it->id);
		free(it);
	}
	return NULL;
}
