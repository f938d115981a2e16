"""mimo-rpc's subcommands over a bdev's statistics, histograms, QoS and size, in rpc.py's forms
(bdev_get_iostat is cli.py's, with these options)."""


def _params(**kw):
    """rpc.py's remove_null: leave out what was not given."""
    return {k: v for k, v in kw.items() if v is not None} or None


def add_commands(sub, simple):
    """simple(sub, name, help, build) adds a one-request subcommand (cli._simple)."""
    modes = ["all", "maxmin", "error", "none"]
    p = simple(sub, "bdev_reset_iostat", "reset I/O statistics of every bdev, or of one",
               lambda a: _params(name=a.name, mode=a.mode))
    p.add_argument("-b", "--name")
    p.add_argument("-m", "--mode", choices=modes)
    p = simple(sub, "bdev_set_qd_sampling_period", "sample a bdev's queue depth (0: stop)",
               lambda a: {"name": a.name, "period": a.period})
    p.add_argument("name")
    p.add_argument("period", type=int, help="microseconds")
    p = simple(sub, "bdev_set_qos_limit", "rate limits of a bdev (0: unlimited)",
               lambda a: _params(name=a.name, rw_ios_per_sec=a.rw_ios_per_sec,
                                 rw_mbytes_per_sec=a.rw_mbytes_per_sec,
                                 r_mbytes_per_sec=a.r_mbytes_per_sec,
                                 w_mbytes_per_sec=a.w_mbytes_per_sec))
    p.add_argument("name")
    p.add_argument("--rw-ios-per-sec", type=int, help="multiple of 1000 (rounded up)")
    p.add_argument("--rw-mbytes-per-sec", type=int)
    p.add_argument("--r-mbytes-per-sec", type=int)
    p.add_argument("--w-mbytes-per-sec", type=int)
    p = simple(sub, "bdev_enable_histogram", "collect a latency histogram of a bdev",
               lambda a: _params(name=a.name, enable=a.enable, opc=a.opc,
                                 granularity=a.granularity, min_nsec=a.min_nsec,
                                 max_nsec=a.max_nsec))
    p.add_argument("name")
    p.add_argument("--histogram", dest="enable", action="store_true", default=None)
    p.add_argument("--no-histogram", dest="enable", action="store_false")
    p.add_argument("-o", "--opc", help="one I/O type (default all)")
    p.add_argument("--granularity", type=int)
    p.add_argument("--min-nsec", type=int)
    p.add_argument("--max-nsec", type=int)
    p = simple(sub, "bdev_get_histogram", "a bdev's latency histogram (SPDK's encoding)",
               lambda a: {"name": a.name})
    p.add_argument("name")
    p = simple(sub, "bdev_get_histogram_borders", "I/Os under each border (microseconds)",
               lambda a: {"name": a.name, "borders": [int(x) for x in a.borders.split(",")]})
    p.add_argument("name")
    p.add_argument("--borders", required=True, help="comma-separated, ascending")
    p = simple(sub, "bdev_examine", "examine a bdev (with auto-examine off)",
               lambda a: {"name": a.name})
    p.add_argument("name")
    p = simple(sub, "bdev_null_resize", "grow a null bdev",
               lambda a: {"name": a.name, "new_size": a.new_size})
    p.add_argument("name")
    p.add_argument("new_size", type=int, help="MiB")
    p = simple(sub, "bdev_aio_rescan", "read an aio bdev's size again",
               lambda a: {"name": a.name})
    p.add_argument("name")
    p = simple(sub, "bdev_error_resume_pending", "send on the I/Os a pending injection holds",
               lambda a: {"name": a.name})
    p.add_argument("name")
