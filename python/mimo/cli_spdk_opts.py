"""mimo-rpc's subcommands for SPDK's options methods - those its save_config writes and its
--wait-for-rpc recipes call before framework_start_init - with rpc.py's names and argument
forms. Only the options given are sent: what is left out keeps its value in mimo_tgt.
docs/mimo_tgt.md says what each option does in mimo, or why it has no meaning or is refused."""
import argparse


def _given(**kw):
    return {k: v for k, v in kw.items() if v is not None}


def _csv(text):
    return text.split(",")


def _params_of(a, names):
    return _given(**{n: getattr(a, n) for n in names}) or None


def add_commands(sub, simple):
    """simple(sub, name, help, build) adds a one-request subcommand (cli._simple)."""
    bool_opt = argparse.BooleanOptionalAction

    # --- framework and buffers ---------------------------------------------------------------
    p = simple(sub, "iobuf_set_options", "SPDK's iobuf pool sizes (no meaning in mimo)",
               lambda a: _params_of(a, ("small_pool_count", "large_pool_count", "small_bufsize",
                                        "large_bufsize", "enable_numa")))
    p.add_argument("--small-pool-count", type=int)
    p.add_argument("--large-pool-count", type=int)
    p.add_argument("--small-bufsize", type=int)
    p.add_argument("--large-bufsize", type=int)
    p.add_argument("--enable-numa", action="store_const", const=True)
    p = simple(sub, "accel_set_options", "SPDK's accel framework caches (no meaning in mimo)",
               lambda a: _params_of(a, ("small_cache_size", "large_cache_size", "task_count",
                                        "sequence_count", "buf_count")))
    p.add_argument("--small-cache-size", type=int)
    p.add_argument("--large-cache-size", type=int)
    p.add_argument("--task-count", type=int)
    p.add_argument("--sequence-count", type=int)
    p.add_argument("--buf-count", type=int)
    p = simple(sub, "framework_set_scheduler", "the scheduler: only \"static\" (mimo's reactors)",
               lambda a: _given(name=a.name, period=a.period, load_limit=a.load_limit,
                                core_limit=a.core_limit, core_busy=a.core_busy,
                                mappings=a.mappings))
    p.add_argument("name")
    p.add_argument("-p", "--period", type=int)
    p.add_argument("--load-limit", type=int)
    p.add_argument("--core-limit", type=int)
    p.add_argument("--core-busy", type=int)
    p.add_argument("--mappings")

    # --- sockets ------------------------------------------------------------------------------
    p = simple(sub, "sock_impl_set_options",
               "options of the NVMe/TCP sockets: posix (plain) or ssl (TLS); before "
               "framework_start_init",
               lambda a: _params_of(a, ("impl_name", "recv_buf_size", "send_buf_size",
                                        "enable_recv_pipe", "enable_quickack",
                                        "enable_placement_id", "enable_zerocopy_send_server",
                                        "enable_zerocopy_send_client", "zerocopy_threshold",
                                        "tls_version", "enable_ktls")))
    p.add_argument("-i", "--impl", dest="impl_name", required=True, help="posix or ssl")
    p.add_argument("-r", "--recv-buf-size", type=int, help="least SO_RCVBUF, bytes")
    p.add_argument("-s", "--send-buf-size", type=int, help="least SO_SNDBUF, bytes")
    p.add_argument("-p", "--enable-placement-id", type=int, help="0 only")
    p.add_argument("--recv-pipe", dest="enable_recv_pipe", action=bool_opt)
    p.add_argument("--quickack", dest="enable_quickack", action=bool_opt,
                   help="TCP_QUICKACK on each connection")
    p.add_argument("--zerocopy-send-server", dest="enable_zerocopy_send_server",
                   action=bool_opt)
    p.add_argument("--zerocopy-send-client", dest="enable_zerocopy_send_client",
                   action=bool_opt)
    p.add_argument("--zerocopy-threshold", type=int)
    p.add_argument("--tls-version", type=int, help="0 or 13 (TLS 1.3 only)")
    p.add_argument("--ktls", dest="enable_ktls", action=bool_opt, help="--no-ktls only")
    p = simple(sub, "sock_impl_get_options", "options of a socket implementation",
               lambda a: {"impl_name": a.impl_name})
    p.add_argument("-i", "--impl", dest="impl_name", required=True)
    p = simple(sub, "sock_set_default_impl", "the default socket implementation: posix",
               lambda a: {"impl_name": a.impl_name})
    p.add_argument("-i", "--impl", dest="impl_name", required=True)
    simple(sub, "sock_get_default_impl", "the default socket implementation")

    # --- bdev ---------------------------------------------------------------------------------
    p = simple(sub, "bdev_set_options", "SPDK's bdev pools (no meaning in mimo), auto-examine",
               lambda a: _params_of(a, ("bdev_io_pool_size", "bdev_io_cache_size",
                                        "bdev_auto_examine", "iobuf_small_cache_size",
                                        "iobuf_large_cache_size")))
    p.add_argument("-p", "--bdev-io-pool-size", type=int)
    p.add_argument("-c", "--bdev-io-cache-size", type=int)
    p.add_argument("--auto-examine", dest="bdev_auto_examine", action=bool_opt)
    p.add_argument("--iobuf-small-cache-size", type=int)
    p.add_argument("--iobuf-large-cache-size", type=int)
    simple(sub, "bdev_wait_for_examine", "wait until every bdev is examined")
    p = simple(sub, "bdev_raid_set_options", "a raid1 rebuild's window and bandwidth",
               lambda a: _params_of(a, ("process_window_size_kb",
                                        "process_max_bandwidth_mb_sec")))
    p.add_argument("-w", "--process-window-size-kb", type=int)
    p.add_argument("-b", "--process-max-bandwidth-mb-sec", type=int)

    def nvme_options(a):
        names = ("action_on_timeout", "timeout_us", "timeout_admin_us", "keep_alive_timeout_ms",
                 "arbitration_burst", "low_priority_weight", "medium_priority_weight",
                 "high_priority_weight", "nvme_adminq_poll_period_us", "nvme_ioq_poll_period_us",
                 "io_queue_requests", "delay_cmd_submit", "transport_retry_count",
                 "bdev_retry_count", "transport_ack_timeout", "ctrlr_loss_timeout_sec",
                 "reconnect_delay_sec", "fast_io_fail_timeout_sec", "disable_auto_failback",
                 "generate_uuids", "transport_tos", "nvme_error_stat", "rdma_srq_size",
                 "io_path_stat", "allow_accel_sequence", "rdma_max_cq_size",
                 "rdma_cm_event_timeout_ms", "dhchap_digests", "dhchap_dhgroups",
                 "rdma_umr_per_io", "tcp_connect_timeout_ms", "enable_flush")
        params = _given(**{n: getattr(a, n) for n in names})
        multipath = _given(policy=a.policy, selector=a.selector, min_io=a.min_io)
        if multipath:
            params["multipath_opts"] = multipath
        return params or None

    p = simple(sub, "bdev_nvme_set_options", "the NVMe-oF initiator's defaults (while no "
               "controller is attached)", nvme_options)
    p.add_argument("-a", "--action-on-timeout", choices=["none", "reset", "abort"])
    p.add_argument("-t", "--timeout-us", type=int)
    p.add_argument("--timeout-admin-us", type=int)
    p.add_argument("-k", "--keep-alive-timeout-ms", type=int)
    p.add_argument("--arbitration-burst", type=int)
    p.add_argument("--low-priority-weight", type=int)
    p.add_argument("--medium-priority-weight", type=int)
    p.add_argument("--high-priority-weight", type=int)
    p.add_argument("-p", "--nvme-adminq-poll-period-us", type=int)
    p.add_argument("-i", "--nvme-ioq-poll-period-us", type=int)
    p.add_argument("-s", "--io-queue-requests", type=int)
    p.add_argument("-d", "--disable-delay-cmd-submit", dest="delay_cmd_submit",
                   action="store_const", const=False)
    p.add_argument("-c", "--transport-retry-count", type=int)
    p.add_argument("-r", "--bdev-retry-count", type=int, help="-1: no limit")
    p.add_argument("-e", "--transport-ack-timeout", type=int)
    p.add_argument("-l", "--ctrlr-loss-timeout-sec", type=int)
    p.add_argument("-o", "--reconnect-delay-sec", type=int)
    p.add_argument("-u", "--fast-io-fail-timeout-sec", type=int)
    p.add_argument("-f", "--disable-auto-failback", action="store_const", const=True)
    p.add_argument("--generate-uuids", action="store_const", const=True)
    p.add_argument("--transport-tos", type=int)
    p.add_argument("-m", "--nvme-error-stat", action="store_const", const=True)
    p.add_argument("-q", "--rdma-srq-size", type=int)
    p.add_argument("--io-path-stat", action="store_const", const=True)
    p.add_argument("--allow-accel-sequence", action="store_const", const=True)
    p.add_argument("--rdma-max-cq-size", type=int)
    p.add_argument("--rdma-cm-event-timeout-ms", type=int)
    p.add_argument("--dhchap-digests", type=_csv)
    p.add_argument("--dhchap-dhgroups", type=_csv)
    p.add_argument("--rdma-umr-per-io", action=bool_opt)
    p.add_argument("--tcp-connect-timeout-ms", type=int)
    p.add_argument("--enable-flush", action=bool_opt,
                   help="send Flush to the controller (mimo's default); --no-enable-flush "
                        "completes it at once, as SPDK's default")
    p.add_argument("--policy", choices=["active_passive", "active_active"])
    p.add_argument("--selector", choices=["round_robin", "queue_depth"])
    p.add_argument("--min-io", type=int)
    p = simple(sub, "bdev_nvme_set_hotplug", "PCIe hot-plug: only --no-hotplug in mimo",
               lambda a: _given(enable=a.enable, period_us=a.period_us))
    p.add_argument("--hotplug", dest="enable", action=bool_opt, required=True)
    p.add_argument("-r", "--period-us", type=int)

    # --- nvmf ---------------------------------------------------------------------------------
    p = simple(sub, "nvmf_set_max_subsystems", "most subsystems, the discovery one included; "
               "before framework_start_init",
               lambda a: {"max_subsystems": a.max_subsystems})
    p.add_argument("-x", "--max-subsystems", type=int, required=True)
    p = simple(sub, "nvmf_set_crdt", "Command Retry Delay Times (100 ms) in Identify; before "
               "framework_start_init",
               lambda a: _given(crdt1=a.crdt1, crdt2=a.crdt2, crdt3=a.crdt3) or None)
    p.add_argument("-t1", "--crdt1", type=int)
    p.add_argument("-t2", "--crdt2", type=int)
    p.add_argument("-t3", "--crdt3", type=int)
