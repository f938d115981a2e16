"""mimo-rpc's subcommands for SPDK's framework, thread and log methods, with rpc.py's names and
argument forms (its python/spdk/cli/app.py and log.py)."""
import argparse
import json

LEVELS = ["ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"]


def add_commands(sub, simple):
    """simple(sub, name, help, build) adds a one-request subcommand (cli._simple)."""
    for name, help in (("framework_get_reactors", "reactors, their threads and CPU time"),
                       ("framework_get_scheduler", "the scheduler: static (mimo's reactors)"),
                       ("framework_get_governor", "the CPU frequency governor: none in mimo"),
                       ("framework_get_pci_devices", "PCI devices attached: none in mimo"),
                       ("framework_enable_cpumask_locks", "claim the core lock files"),
                       ("framework_disable_cpumask_locks", "release the core lock files"),
                       ("thread_get_stats", "each thread's busy and idle ticks, pollers"),
                       ("thread_get_pollers", "each thread's pollers and their counts"),
                       ("thread_get_io_channels", "each thread's io_channels"),
                       ("iobuf_get_stats", "SPDK's iobuf statistics (refused: no such pool)"),
                       ("log_get_flags", "log flags and whether each is set")):
        simple(sub, name, help)
    for name, help in (("log_get_level", "the syslog level"),
                       ("log_get_print_level", "the stderr level")):
        # rpc.py prints these strings as JSON ("INFO", quoted): scripts parse them so.
        simple(sub, name, help).set_defaults(format=json.dumps)
    p = simple(sub, "framework_monitor_context_switch",
               "turn the context switch monitor on or off; without an option: its state",
               lambda a: None if a.enabled is None else {"enabled": a.enabled})
    p.add_argument("--monitor", dest="enabled", action=argparse.BooleanOptionalAction)
    p = simple(sub, "scheduler_set_options", "the scheduling core and isolated cores",
               lambda a: {k: v for k, v in (("isolated_core_mask", a.isolated_core_mask),
                                            ("scheduling_core", a.scheduling_core))
                          if v is not None} or None)
    p.add_argument("-i", "--isolated-core-mask")
    p.add_argument("-s", "--scheduling-core", type=int)
    p = simple(sub, "thread_set_cpumask", "move a thread (refused in mimo but to its own core)",
               lambda a: {"id": a.id, "cpumask": a.cpumask})
    p.add_argument("-i", "--id", type=int, required=True)
    p.add_argument("-m", "--cpumask", required=True)
    for name, help in (("log_set_flag", "set a log flag"), ("log_clear_flag", "clear one")):
        p = simple(sub, name, help, lambda a: {"flag": a.flag})
        p.add_argument("flag", help='a component, a pattern, or "all"')
    for name, help in (("log_set_level", "the syslog level"),
                       ("log_set_print_level", "the stderr level")):
        p = simple(sub, name, help, lambda a: {"level": a.level})
        p.add_argument("level", choices=LEVELS)
    p = simple(sub, "log_enable_timestamps", "timestamps on log lines",
               lambda a: {"enabled": a.enabled})
    p.add_argument("--timestamps", dest="enabled", action=argparse.BooleanOptionalAction,
                   required=True)
