"""mimo-rpc's NVMe-oF subcommands (target and initiator), with rpc.py's names, arguments and
parameter shapes."""


def _drop_none(**kw):
    return {k: v for k, v in kw.items() if v is not None}


def _listen_address(a):
    return {"nqn": a.nqn, "listen_address": _drop_none(trtype=a.trtype, traddr=a.traddr,
                                                        adrfam=a.adrfam, trsvcid=a.trsvcid)}


def add_commands(sub, simple):
    """simple(sub, name, help, build) adds a one-request subcommand (cli._simple)."""
    p = simple(sub, "nvmf_create_transport", "create an NVMe-oF transport (TCP)",
               lambda a: _drop_none(trtype=a.trtype, max_queue_depth=a.max_queue_depth,
                                    max_io_qpairs_per_ctrlr=a.max_io_qpairs_per_ctrlr,
                                    in_capsule_data_size=a.in_capsule_data_size,
                                    max_io_size=a.max_io_size, io_unit_size=a.io_unit_size,
                                    max_aq_depth=a.max_aq_depth,
                                    num_shared_buffers=a.num_shared_buffers,
                                    c2h_success=a.c2h_success, zcopy=a.zcopy,
                                    connect_timeout_ms=a.connect_timeout_ms,
                                    max_connections_per_listener=a.max_connections_per_listener))
    p.add_argument("-t", "--trtype", required=True, help="transport type (TCP)")
    p.add_argument("-q", "--max-queue-depth", type=int)
    p.add_argument("-m", "--max-io-qpairs-per-ctrlr", type=int)
    p.add_argument("-c", "--in-capsule-data-size", type=int)
    p.add_argument("-i", "--max-io-size", type=int)
    p.add_argument("-u", "--io-unit-size", type=int)
    p.add_argument("-a", "--max-aq-depth", type=int)
    p.add_argument("-n", "--num-shared-buffers", type=int)
    p.add_argument("-o", "--c2h-success", action="store_false",
                   help="disable the C2H success optimization")
    z = p.add_mutually_exclusive_group()
    z.add_argument("-z", "--zcopy", action="store_true", default=None,
                   help="zero copy with bdevs that allow it (mimo's default; SPDK's is off)")
    z.add_argument("--no-zcopy", dest="zcopy", action="store_false",
                   help="mimo: every read and write through a buffer of the target's")
    p.add_argument("--connect-timeout-ms", type=int,
                   help="mimo: close a connection that has not sent ICReq and Connect by then "
                        "(default 10000)")
    p.add_argument("--max-connections-per-listener", type=int,
                   help="mimo: refuse connections past this many per listener (default: 3/4 "
                        "of the file descriptor limit)")
    p = simple(sub, "nvmf_get_transports", "list NVMe-oF transports",
               lambda a: _drop_none(trtype=a.trtype) or None)
    p.add_argument("--trtype")
    p = simple(sub, "nvmf_get_subsystems", "list subsystems, or one",
               lambda a: _drop_none(nqn=a.nqn) or None)
    p.add_argument("nqn", nargs="?")
    p = simple(sub, "nvmf_create_subsystem", "create (and start) a subsystem",
               lambda a: _drop_none(nqn=a.nqn, serial_number=a.serial_number,
                                    model_number=a.model_number,
                                    allow_any_host=a.allow_any_host or None,
                                    max_namespaces=a.max_namespaces, min_cntlid=a.min_cntlid,
                                    max_cntlid=a.max_cntlid, dmrsl=a.dmrsl, wzsl=a.wzsl,
                                    ana_reporting=a.ana_reporting or None))
    p.add_argument("nqn")
    p.add_argument("-s", "--serial-number")
    p.add_argument("-d", "--model-number")
    p.add_argument("-a", "--allow-any-host", action="store_true")
    p.add_argument("-m", "--max-namespaces", type=int)
    p.add_argument("-i", "--min-cntlid", type=int)
    p.add_argument("-I", "--max-cntlid", type=int)
    p.add_argument("--dmrsl", type=int, help="Dataset Management Range Size Limit (blocks) "
                   "reported to hosts")
    p.add_argument("--wzsl", type=int, help="Write Zeroes Size Limit (2^n 4 KiB pages) "
                   "reported to hosts")
    p.add_argument("-r", "--ana-reporting", action="store_true",
                   help="Asymmetric Namespace Access: a state per listener and ANA group")
    p = simple(sub, "nvmf_delete_subsystem", "delete a subsystem", lambda a: {"nqn": a.nqn})
    p.add_argument("nqn")
    p = simple(sub, "nvmf_subsystem_add_ns", "add a bdev as a namespace",
               lambda a: {"nqn": a.nqn, "namespace": _drop_none(
                   bdev_name=a.bdev_name, nsid=a.nsid, nguid=a.nguid, eui64=a.eui64,
                   uuid=a.uuid, no_auto_visible=a.no_auto_visible or None,
                   anagrpid=a.anagrpid)})
    p.add_argument("nqn")
    p.add_argument("bdev_name")
    p.add_argument("-n", "--nsid", type=int)
    p.add_argument("-g", "--nguid")
    p.add_argument("-e", "--eui64")
    p.add_argument("-u", "--uuid")
    p.add_argument("--no-auto-visible", action="store_true",
                   help="no host sees it until nvmf_ns_add_host names one")
    p.add_argument("-a", "--anagrpid", type=int, help="its ANA group (default: its nsid)")
    p = simple(sub, "nvmf_subsystem_set_ns_ana_group", "move a namespace to another ANA group",
               lambda a: {"nqn": a.nqn, "nsid": a.nsid, "anagrpid": a.anagrpid})
    p.add_argument("nqn")
    p.add_argument("nsid", type=int)
    p.add_argument("anagrpid", type=int)
    for name, help in (("nvmf_ns_add_host", "let a host see a namespace"),
                       ("nvmf_ns_remove_host", "hide a namespace from a host")):
        p = simple(sub, name, help,
                   lambda a: {"nqn": a.nqn, "nsid": a.nsid, "host": a.host})
        p.add_argument("nqn")
        p.add_argument("nsid", type=int)
        p.add_argument("host")
    p = simple(sub, "nvmf_subsystem_remove_ns", "remove a namespace",
               lambda a: {"nqn": a.nqn, "nsid": a.nsid})
    p.add_argument("nqn")
    p.add_argument("nsid", type=int)
    def add_listener(a):
        return dict(_listen_address(a), **_drop_none(secure_channel=a.secure_channel or None,
                                                     sock_impl=a.sock_impl,
                                                     ana_state=a.ana_state))

    for name, help, build in (("nvmf_subsystem_add_listener", "listen for a subsystem",
                               add_listener),
                              ("nvmf_subsystem_remove_listener",
                               "stop listening for a subsystem", _listen_address)):
        p = simple(sub, name, help, build)
        p.add_argument("nqn")
        p.add_argument("-t", "--trtype", required=True)
        p.add_argument("-a", "--traddr", required=True)
        p.add_argument("-f", "--adrfam")
        p.add_argument("-s", "--trsvcid")
        if build is add_listener:
            p.add_argument("-k", "--secure-channel", action="store_true",
                           help="every connection must set up TLS 1.3 with a host's PSK first")
            p.add_argument("-S", "--sock-impl", help="posix (plain TCP) or ssl (TLS)")
            p.add_argument("-n", "--ana-state",
                           choices=["optimized", "non_optimized", "inaccessible"],
                           help="the new path's ANA state (needs ANA reporting)")
    p = simple(sub, "nvmf_subsystem_listener_set_ana_state", "set a listener's (a path's) ANA "
               "state, of one ANA group or all",
               lambda a: dict(_listen_address(a), **_drop_none(ana_state=a.ana_state,
                                                               anagrpid=a.anagrpid)))
    p.add_argument("nqn")
    p.add_argument("-n", "--ana-state", required=True,
                   choices=["optimized", "non_optimized", "inaccessible"])
    p.add_argument("-t", "--trtype", required=True)
    p.add_argument("-a", "--traddr", required=True)
    p.add_argument("-f", "--adrfam")
    p.add_argument("-s", "--trsvcid")
    p.add_argument("-g", "--anagrpid", type=int, help="one ANA group (default: all)")
    p = simple(sub, "nvmf_subsystem_get_listeners", "listeners of a subsystem, with their ANA "
               "states", lambda a: {"nqn": a.nqn})
    p.add_argument("nqn")
    simple(sub, "nvmf_get_stats", "queue pair and command counters per reactor")

    def referral(a, add):
        subnqn = "nqn.2014-08.org.nvmexpress.discovery" if a.subnqn == "discovery" else a.subnqn
        p = {"address": _drop_none(trtype=a.trtype, traddr=a.traddr, adrfam=a.adrfam,
                                   trsvcid=a.trsvcid)}
        return dict(p, **_drop_none(subnqn=subnqn,
                                    secure_channel=(a.secure_channel or None) if add else None))

    for name, help, add in (("nvmf_discovery_add_referral", "point hosts' discovery logs to "
                             "another discovery service or subsystem", True),
                            ("nvmf_discovery_remove_referral", "remove a referral", False)):
        p = simple(sub, name, help, lambda a, add=add: referral(a, add))
        p.add_argument("-t", "--trtype", required=True)
        p.add_argument("-a", "--traddr", required=True)
        p.add_argument("-f", "--adrfam")
        p.add_argument("-s", "--trsvcid")
        p.add_argument("-n", "--subnqn", help="default: the discovery NQN")
        if add:
            p.add_argument("-k", "--secure-channel", action="store_true")
    simple(sub, "nvmf_discovery_get_referrals", "list the referrals")
    p = simple(sub, "nvmf_subsystem_add_host",
               "allow a host (with its TLS PSK and DH-HMAC-CHAP keys)",
               lambda a: _drop_none(nqn=a.nqn, host=a.host, psk=a.psk,
                                    dhchap_key=a.dhchap_key,
                                    dhchap_ctrlr_key=a.dhchap_ctrlr_key))
    p.add_argument("nqn")
    p.add_argument("host")
    p.add_argument("--psk", help="keyring name of the host's TLS PSK (NVMeTLSkey-1): the host "
                                 "must connect over TLS")
    p.add_argument("--dhchap-key", help="keyring name of the host's DH-HMAC-CHAP secret: the "
                                        "host must authenticate")
    p.add_argument("--dhchap-ctrlr-key", help="keyring name of the controller's secret "
                                              "(bidirectional authentication)")
    p = simple(sub, "nvmf_subsystem_remove_host", "disallow a host",
               lambda a: {"nqn": a.nqn, "host": a.host})
    p.add_argument("nqn")
    p.add_argument("host")
    p = simple(sub, "nvmf_subsystem_set_keys", "replace a host's DH-HMAC-CHAP keys (an absent "
               "one is cleared)",
               lambda a: _drop_none(nqn=a.nqn, host=a.host, dhchap_key=a.dhchap_key,
                                    dhchap_ctrlr_key=a.dhchap_ctrlr_key))
    p.add_argument("nqn")
    p.add_argument("host")
    p.add_argument("--dhchap-key")
    p.add_argument("--dhchap-ctrlr-key")
    def set_config(a):
        passthru = None
        if a.admin_cmd_passthru:
            # rpc.py's form: the commands named (or "all") set to true. mimo passes no
            # admin command through, so the target refuses any.
            passthru = {c: True for c in a.admin_cmd_passthru}
        return _drop_none(dhchap_digests=a.dhchap_digests, dhchap_dhgroups=a.dhchap_dhgroups,
                          admin_cmd_passthru=passthru, poll_groups_mask=a.poll_groups_mask,
                          discovery_filters=a.discovery_filters,
                          dup_host_policy=a.dup_host_policy)

    p = simple(sub, "nvmf_set_config", "the target's DH-HMAC-CHAP hash functions and groups",
               set_config)
    p.add_argument("--dhchap-digests", type=lambda v: v.split(","),
                   help="comma-separated: sha256, sha384, sha512")
    p.add_argument("--dhchap-dhgroups", type=lambda v: v.split(","),
                   help="comma-separated: null, ffdhe2048 .. ffdhe8192")
    p.add_argument("-p", "--passthru-admin-cmds", dest="admin_cmd_passthru",
                   type=lambda v: v.split(","), help="refused: mimo passes no admin command "
                                                     "through")
    p.add_argument("-m", "--poll-groups-mask", help="refused: no poll groups to place")
    p.add_argument("--discovery-filters", type=lambda v: v.split(","),
                   help="match_any only")
    p.add_argument("--dup-host-policy", choices=["allow", "restrict_per_listener"],
                   help="allow only")
    p = simple(sub, "nvmf_subsystem_get_qpairs", "queues of a subsystem, with their "
               "authentication", lambda a: {"nqn": a.nqn})
    p.add_argument("nqn")
    p = simple(sub, "keyring_file_add_key", "add a key file to the keyring (0600, owned by "
               "mimo_tgt's user)", lambda a: {"name": a.name, "path": a.path})
    p.add_argument("name")
    p.add_argument("path")
    p = simple(sub, "keyring_file_remove_key", "remove a key from the keyring",
               lambda a: {"name": a.name})
    p.add_argument("name")
    simple(sub, "keyring_get_keys", "list the keyring's keys (never their secrets)")
    p = simple(sub, "nvmf_subsystem_allow_any_host", "allow any host, or the list only",
               lambda a: {"nqn": a.nqn, "allow_any_host": a.allow_any_host})
    p.add_argument("nqn")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--allow-any-host", dest="allow_any_host", action="store_true")
    g.add_argument("--no-allow-any-host", dest="allow_any_host", action="store_false")
    p = simple(sub, "nvmf_subsystem_get_controllers", "controllers of a subsystem",
               lambda a: {"nqn": a.nqn})
    p.add_argument("nqn")

    # The initiator's bdevs.
    p = simple(sub, "bdev_nvme_attach_controller", "attach a remote controller as bdevs",
               lambda a: _drop_none(name=a.name, trtype=a.trtype, traddr=a.traddr,
                                    adrfam=a.adrfam, trsvcid=a.trsvcid, subnqn=a.subnqn,
                                    hostnqn=a.hostnqn, hdgst=a.hdgst or None,
                                    ddgst=a.ddgst or None, psk=a.psk,
                                    dhchap_key=a.dhchap_key,
                                    dhchap_ctrlr_key=a.dhchap_ctrlr_key,
                                    ctrlr_loss_timeout_sec=a.ctrlr_loss_timeout_sec,
                                    reconnect_delay_sec=a.reconnect_delay_sec,
                                    fast_io_fail_timeout_sec=a.fast_io_fail_timeout_sec,
                                    multipath=a.multipath))
    p.add_argument("-b", "--name", required=True, help="controller name, bdev name prefix")
    p.add_argument("-t", "--trtype", required=True)
    p.add_argument("-a", "--traddr", required=True)
    p.add_argument("-f", "--adrfam")
    p.add_argument("-s", "--trsvcid")
    p.add_argument("-n", "--subnqn")
    p.add_argument("-q", "--hostnqn")
    p.add_argument("-e", "--hdgst", action="store_true", help="TCP header digest")
    p.add_argument("-d", "--ddgst", action="store_true", help="TCP data digest")
    p.add_argument("-k", "--psk", help="keyring name of the TLS PSK: connect over TLS 1.3")
    p.add_argument("--dhchap-key", help="keyring name of the host's DH-HMAC-CHAP secret")
    p.add_argument("--dhchap-ctrlr-key", help="keyring name of the controller's secret")
    p.add_argument("-l", "--ctrlr-loss-timeout-sec", type=int,
                   help="reconnect a lost controller this long (-1: forever, 0: never)")
    p.add_argument("-o", "--reconnect-delay-sec", type=int)
    p.add_argument("-u", "--fast-io-fail-timeout-sec", type=int)
    p.add_argument("-x", "--multipath", choices=["disable", "failover", "multipath"],
                   help="a second path under an attached name")
    # rpc.py prints the bdev names on one line.
    p.set_defaults(format=lambda names: " ".join(names))
    p = simple(sub, "bdev_nvme_detach_controller", "detach a controller and its bdevs (or one "
               "path of it)", lambda a: _drop_none(name=a.name, trtype=a.trtype,
                                                   traddr=a.traddr, adrfam=a.adrfam,
                                                   trsvcid=a.trsvcid, subnqn=a.subnqn))
    p.add_argument("name")
    p.add_argument("-t", "--trtype")
    p.add_argument("-a", "--traddr")
    p.add_argument("-f", "--adrfam")
    p.add_argument("-s", "--trsvcid")
    p.add_argument("-n", "--subnqn")
    for method, what in (("reset", "drop the connection and connect again"),
                         ("enable", "connect a disabled controller again"),
                         ("disable", "disconnect until enabled")):
        p = simple(sub, f"bdev_nvme_{method}_controller", what,
                   lambda a: _drop_none(name=a.name, cntlid=a.cntlid))
        p.add_argument("name")
        p.add_argument("-c", "--cntlid", type=int)
    p = simple(sub, "bdev_nvme_get_controller_health_info", "the SMART / health log page",
               lambda a: {"name": a.name})
    p.add_argument("-c", "--name", required=True)
    simple(sub, "bdev_nvme_get_transport_statistics", "per-reactor NVMe/TCP counters",
           lambda a: None)
    p = simple(sub, "bdev_nvme_get_io_paths", "the I/O paths of each reactor",
               lambda a: _drop_none(name=a.name) or None)
    p.add_argument("-n", "--name")
    p = simple(sub, "bdev_nvme_get_path_iostat", "a bdev's I/O statistics per path",
               lambda a: {"name": a.name})
    p.add_argument("-b", "--name", required=True)
    p = simple(sub, "bdev_nvme_set_multipath_policy", "a multipath bdev's policy",
               lambda a: _drop_none(name=a.name, policy=a.policy, selector=a.selector,
                                    rr_min_io=a.rr_min_io))
    p.add_argument("-b", "--name", required=True)
    p.add_argument("-p", "--policy", choices=["active_passive", "active_active"], required=True)
    p.add_argument("-s", "--selector", choices=["round_robin", "queue_depth"])
    p.add_argument("-r", "--rr-min-io", type=int)
    p = simple(sub, "bdev_nvme_set_preferred_path", "a multipath bdev's preferred controller",
               lambda a: {"name": a.name, "cntlid": a.cntlid})
    p.add_argument("-b", "--name", required=True)
    p.add_argument("-c", "--cntlid", type=int, required=True)
    p = simple(sub, "bdev_nvme_get_controllers", "list attached controllers",
               lambda a: _drop_none(name=a.name) or None)
    p.add_argument("-n", "--name")
