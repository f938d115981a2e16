"""mimo-rpc's subcommands of the stackable bdev modules - split, passthru, delay, raid - with
rpc.py's names, arguments and output."""


def _params(**kw):
    """rpc.py's remove_null: parameters not given are not sent."""
    return {k: v for k, v in kw.items() if v is not None and v is not False}


def add_commands(sub, simple):
    """simple(sub, name, help, build, aliases) adds a one-request subcommand (cli._simple)."""
    p = simple(sub, "bdev_split_create", "split a bdev into parts <base>p0..",
               lambda a: _params(base_bdev=a.base_bdev, split_count=a.split_count,
                                 split_size_mb=a.split_size_mb))
    p.add_argument("base_bdev")
    p.add_argument("split_count", type=int)
    p.add_argument("-s", "--split-size-mb", type=int, help="size of each part in MiB")
    p.set_defaults(format=" ".join)  # rpc.py prints the parts' names on one line
    p = simple(sub, "bdev_split_delete", "delete the parts of a split bdev",
               lambda a: {"base_bdev": a.base_bdev})
    p.add_argument("base_bdev")

    p = simple(sub, "bdev_passthru_create", "create a bdev passing I/O to another",
               lambda a: _params(base_bdev_name=a.base_bdev_name, name=a.name, uuid=a.uuid))
    p.add_argument("-b", "--base-bdev-name", required=True)
    p.add_argument("-p", "--name", required=True)
    p.add_argument("-u", "--uuid")
    p = simple(sub, "bdev_passthru_delete", "delete a passthru bdev", lambda a: {"name": a.name})
    p.add_argument("name")

    p = simple(sub, "bdev_delay_create", "create a bdev delaying another's completions (us)",
               lambda a: _params(base_bdev_name=a.base_bdev_name, name=a.name, uuid=a.uuid,
                                 avg_read_latency=a.avg_read_latency,
                                 p99_read_latency=a.p99_read_latency,
                                 avg_write_latency=a.avg_write_latency,
                                 p99_write_latency=a.p99_write_latency))
    p.add_argument("-b", "--base-bdev-name", required=True)
    p.add_argument("-d", "--name", required=True)
    p.add_argument("-u", "--uuid")
    p.add_argument("-r", "--avg-read-latency", type=int, required=True)
    p.add_argument("-t", "--nine-nine-read-latency", dest="p99_read_latency", type=int,
                   required=True)
    p.add_argument("-w", "--avg-write-latency", type=int, required=True)
    p.add_argument("-n", "--nine-nine-write-latency", dest="p99_write_latency", type=int,
                   required=True)
    p = simple(sub, "bdev_delay_delete", "delete a delay bdev", lambda a: {"name": a.name})
    p.add_argument("name")
    p = simple(sub, "bdev_delay_update_latency", "change one latency of a delay bdev",
               lambda a: {"delay_bdev_name": a.delay_bdev_name,
                          "latency_type": a.latency_type, "latency_us": a.latency_us})
    p.add_argument("delay_bdev_name")
    p.add_argument("latency_type", choices=["avg_read", "avg_write", "p99_read", "p99_write"])
    p.add_argument("latency_us", type=int)

    p = simple(sub, "bdev_raid_get_bdevs", "list raid bdevs of a state",
               lambda a: {"category": a.category})
    p.add_argument("category", choices=["all", "online", "configuring", "offline"])
    p = simple(sub, "bdev_raid_create", "create a raid0, raid1 or concat bdev",
               lambda a: _params(name=a.name, strip_size_kb=a.strip_size_kb,
                                 raid_level=a.raid_level, base_bdevs=a.base_bdevs,
                                 uuid=a.uuid, superblock=a.superblock))
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-z", "--strip-size-kb", type=int)
    p.add_argument("-r", "--raid-level", required=True,
                   choices=["raid0", "0", "raid1", "1", "raid5f", "5f", "concat"])
    p.add_argument("-b", "--base-bdevs", required=True, type=str.split,
                   help="base bdev names, space separated, in quotes")
    p.add_argument("--uuid")
    p.add_argument("-s", "--superblock", action="store_true",
                   help="refused by mimo: it writes no superblock")
    p = simple(sub, "bdev_raid_delete", "delete a raid bdev",
               lambda a: _params(name=a.name, clear_sb=a.clear_sb))
    p.add_argument("name")
    p.add_argument("-c", "--clear-sb", action="store_true")
    p = simple(sub, "bdev_raid_add_base_bdev", "add a member to a degraded raid1 (rebuilt)",
               lambda a: {"raid_bdev": a.raid_bdev, "base_bdev": a.base_bdev})
    p.add_argument("raid_bdev")
    p.add_argument("base_bdev")
    p = simple(sub, "bdev_raid_remove_base_bdev", "take a member out of its raid",
               lambda a: {"name": a.name})
    p.add_argument("name")
