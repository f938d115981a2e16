"""mimo-rpc: SPDK's scripts/rpc.py command line for mimo_tgt.

Same global options, subcommand names, argument forms and parameter shapes as rpc.py, so
scripts and habits written for SPDK work by replacing ``rpc.py`` with ``mimo-rpc``.
save_config and load_config run on the client side, exactly as rpc.py does them.
"""
import argparse
import itertools
import json
import logging
import sys

from . import (cli_bdev, cli_framework, cli_fuse, cli_net, cli_nvmf, cli_spdk_opts, cli_vbdev,
               cli_vhost)
from .client import DEFAULT_SOCKET, Client, RpcConnectionError, RpcError

SIGNALS = ["SIGINT", "SIGTERM", "SIGQUIT", "SIGHUP", "SIGKILL", "SIGUSR1"]


def _params(**kw):
    """rpc.py's remove_null, then no params at all when nothing is left."""
    kw = {k: v for k, v in kw.items() if v is not None and v is not False}
    return kw or None


def _num_blocks(args):
    return int(args.total_size * 1024 * 1024) // args.block_size


def _json_params(text):
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from e
    if not isinstance(value, (dict, list)):
        raise argparse.ArgumentTypeError("params must be a JSON object or array")
    return value


class DryRunClient:
    """Prints each request it would send and sends nothing (--dry-run)."""

    def __init__(self):
        self._ids = itertools.count(1)

    def call(self, method, params=None):
        req = {"jsonrpc": "2.0", "method": method, "id": next(self._ids)}
        if params is not None:
            req["params"] = params
        print(json.dumps(req, indent=2))
        return None

    def batch(self, calls):
        return [self.call(m, p) for m, p in calls]


# --- client-side commands ----------------------------------------------------------------

def save_config(client, args):
    """framework_get_subsystems, then framework_get_config for each, as one config file."""
    subsystems = client.call("framework_get_subsystems")
    if subsystems is None:
        return 0  # dry run
    config = {"subsystems": [
        {"subsystem": s["subsystem"],
         "config": client.call("framework_get_config", {"name": s["subsystem"]}) or []}
        for s in subsystems]}
    json.dump(config, sys.stdout, indent=None if args.indent < 0 else args.indent)
    sys.stdout.write("\n")
    return 0


def _config_entries(path):
    """[(subsystem, [entry or batch, ...])] from a save_config file ("-" is stdin)."""
    if path == "-":
        config = json.load(sys.stdin)
    else:
        with open(path) as f:
            config = json.load(f)
    try:
        return [(s["subsystem"], list(s["config"])) for s in config["subsystems"]
                if s.get("config")]
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} is not a save_config file ({e!r})") from e


def _unknown_method(pending, known):
    """The first (subsystem, method) the daemon does not have, or None."""
    for subsystem, entries in pending:
        for entry in entries:
            for item in entry if isinstance(entry, list) else [entry]:
                method = item.get("method") if isinstance(item, dict) else None
                if not isinstance(method, str) or (known is not None and method not in known):
                    return subsystem, method
    return None


def load_config(client, args):
    """Replay a save_config file as rpc.py does: every entry whose method the daemon can run
    now, then framework_start_init while it is in the start-up state, until nothing more
    can run."""
    pending = _config_entries(args.json_conf)
    aliases = {"include_aliases": True} if args.include_aliases else None
    unknown = _unknown_method(pending, client.call("rpc_get_methods", aliases))
    if unknown:
        print(f"load_config: unknown method {unknown[1]!r} in subsystem {unknown[0]!r}",
              file=sys.stderr)
        return 1
    while True:  # at least once: an empty config in the start-up state still starts init
        current = client.call("rpc_get_methods", dict(aliases or {}, current=True))
        progress = False
        for _, entries in pending:
            for entry in list(entries):
                items = entry if isinstance(entry, list) else [entry]
                if current is not None and any(i["method"] not in current for i in items):
                    continue  # not in this state: maybe after framework_start_init
                if isinstance(entry, list):
                    for result in client.batch([(i["method"], i.get("params")) for i in items]):
                        if isinstance(result, RpcError):
                            raise result
                else:
                    client.call(entry["method"], entry.get("params"))
                entries.remove(entry)
                progress = True
        pending = [(s, e) for s, e in pending if e]
        if current is not None and "framework_start_init" in current:
            client.call("framework_start_init")
            progress = True
        if not pending or not progress:
            break
    if pending:
        left = [e["method"] if isinstance(e, dict) else "batch" for _, es in pending for e in es]
        print(f"load_config: not callable in the daemon's current state: {', '.join(left)} "
              "(start-up methods: start mimo_tgt with --wait-for-rpc to apply them)",
              file=sys.stderr)
        return 1
    return 0


# --- parser ------------------------------------------------------------------------------

def _simple(sub, name, help, build=lambda a: None, aliases=()):
    """A subcommand that is one request: ``build(args)`` gives its params. An alias (an old
    name rpc.py also took) sends the same request, under ``name``."""
    p = sub.add_parser(name, help=help, aliases=list(aliases))
    p.set_defaults(request=lambda a: (name, build(a)))
    return p


def build_parser():
    parser = argparse.ArgumentParser(prog="mimo-rpc",
                                     description="mimo_tgt JSON-RPC command line (rpc.py's)")
    parser.add_argument("-s", dest="server_addr", default=DEFAULT_SOCKET,
                        help=f"RPC Unix socket path or IP address (default {DEFAULT_SOCKET})")
    parser.add_argument("-p", dest="port", type=int, default=None,
                        help="RPC port when -s is an IP address (default 5260)")
    parser.add_argument("-t", dest="rpc_timeout", type=float, default=60.0,
                        help="seconds to wait for a response (default 60.0)")
    parser.add_argument("-r", dest="conn_retries", type=int, default=0,
                        help="retry connecting N times, 0.2 s apart (default 0)")
    parser.add_argument("-v", dest="verbose", action="store_true",
                        help="log requests and responses to stderr")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the requests that would be sent and send nothing")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _simple(sub, "rpc_get_methods", "list the RPC methods",
                lambda a: _params(current=a.current, include_aliases=a.include_aliases))
    p.add_argument("-c", "--current", action="store_true",
                   help="only methods callable in the current state")
    p.add_argument("-i", "--include-aliases", action="store_true",
                   help="include deprecated aliases")
    _simple(sub, "spdk_get_version", "daemon version")
    _simple(sub, "framework_start_init", "leave the start-up state (--wait-for-rpc)")
    _simple(sub, "framework_wait_init", "wait until the daemon is initialised")
    _simple(sub, "framework_get_subsystems", "subsystems in initialisation order")
    p = _simple(sub, "framework_get_config", "one subsystem's configuration",
                lambda a: {"name": a.name})
    p.add_argument("name", help="subsystem name")
    p = _simple(sub, "spdk_kill_instance", "send a signal to the daemon",
                lambda a: {"sig_name": a.sig_name})
    p.add_argument("sig_name", choices=SIGNALS)

    p = _simple(sub, "bdev_malloc_create", "create a RAM-backed bdev",
                lambda a: _params(num_blocks=_num_blocks(a), block_size=a.block_size,
                                  name=a.name, uuid=a.uuid))
    p.add_argument("total_size", type=float, help="size in MiB")
    p.add_argument("block_size", type=int, help="block size in bytes")
    p.add_argument("-b", "--name", help="bdev name (default Malloc<N>)")
    p.add_argument("-u", "--uuid", help="bdev UUID")
    p = _simple(sub, "bdev_malloc_delete", "delete a malloc bdev", lambda a: {"name": a.name})
    p.add_argument("name")
    p = _simple(sub, "bdev_null_create", "create a bdev that discards writes",
                lambda a: _params(name=a.name, num_blocks=_num_blocks(a),
                                  block_size=a.block_size, uuid=a.uuid))
    p.add_argument("name")
    p.add_argument("total_size", type=float, help="size in MiB")
    p.add_argument("block_size", type=int, help="block size in bytes")
    p.add_argument("-u", "--uuid", help="bdev UUID")
    p = _simple(sub, "bdev_null_delete", "delete a null bdev", lambda a: {"name": a.name})
    p.add_argument("name")
    p = _simple(sub, "bdev_aio_create", "create a bdev on a file or block device",
                lambda a: _params(filename=a.filename, name=a.name, block_size=a.block_size,
                                  readonly=a.readonly))
    p.add_argument("filename")
    p.add_argument("name")
    p.add_argument("block_size", type=int, nargs="?")
    p.add_argument("-r", "--readonly", action="store_true")
    p = _simple(sub, "bdev_aio_delete", "delete an aio bdev", lambda a: {"name": a.name})
    p.add_argument("name")
    p = _simple(sub, "bdev_error_create", "create EE_<base>, an error-injection bdev",
                lambda a: _params(base_name=a.base_name, uuid=a.uuid))
    p.add_argument("base_name")
    p.add_argument("-u", "--uuid", help="bdev UUID")
    p = _simple(sub, "bdev_error_delete", "delete an error bdev", lambda a: {"name": a.name})
    p.add_argument("name")
    p = _simple(sub, "bdev_error_inject_error", "make an error bdev fail I/O",
                lambda a: _params(name=a.name, io_type=a.io_type, error_type=a.error_type,
                                  num=a.num))
    p.add_argument("name")
    p.add_argument("io_type", choices=["clear", "read", "write", "unmap", "flush", "all"])
    p.add_argument("error_type", choices=["failure", "pending", "corrupt_data", "nomem"])
    p.add_argument("-n", "--num", type=int, help="number of commands to fail")
    p = _simple(sub, "bdev_get_bdevs", "list bdevs, or one bdev",
                lambda a: _params(name=a.name, timeout=a.timeout))
    p.add_argument("-b", "--name")
    p.add_argument("-t", "--timeout-ms", dest="timeout", type=int,
                   help="ms to wait for the bdev to appear")
    p = _simple(sub, "bdev_get_iostat", "I/O statistics",
                lambda a: _params(name=a.name, names=a.names, per_channel=a.per_channel,
                                  reset_mode=a.reset_mode))
    p.add_argument("-b", "--name")
    p.add_argument("--names", type=lambda t: t.split(","), help="comma-separated bdev names")
    p.add_argument("-c", "--per-channel", action="store_true")
    p.add_argument("--reset-mode", choices=["all", "maxmin", "error", "none"])
    _simple(sub, "notify_get_types", "notification types")
    p = _simple(sub, "notify_get_notifications", "notifications from the ring",
                lambda a: _params(id=a.id, max=a.max))
    p.add_argument("-i", "--id", type=int, help="first notification id (default 0)")
    p.add_argument("-n", "--max", type=int, help="at most this many")

    _simple(sub, "scsi_get_devices", "SCSI devices (vhost-user-scsi targets) and their LUNs")

    cli_bdev.add_commands(sub, _simple)
    cli_nvmf.add_commands(sub, _simple)
    cli_spdk_opts.add_commands(sub, _simple)
    cli_framework.add_commands(sub, _simple)
    cli_fuse.add_commands(sub, _simple)
    cli_net.add_commands(sub, _simple)
    cli_vhost.add_commands(sub, _simple)
    cli_vbdev.add_commands(sub, _simple)

    p = sub.add_parser("call", help="call any method with JSON params")
    p.add_argument("method")
    p.add_argument("params", nargs="?", type=_json_params, help="JSON object of params")
    p.set_defaults(request=lambda a: (a.method, a.params))
    p = sub.add_parser("save_config", help="print the daemon's configuration as JSON")
    p.add_argument("-i", "--indent", type=int, default=2, help="indent; < 0 is compact")
    p.set_defaults(run=save_config)
    p = sub.add_parser("load_config", help="replay a save_config file")
    p.add_argument("-j", "--json-conf", default="-", help="config file (default stdin)")
    p.add_argument("-i", "--include-aliases", action="store_true",
                   help="accept deprecated method names")
    p.set_defaults(run=load_config)
    return parser


def _print_result(result):
    if result is None:
        return
    print(result if isinstance(result, str) else json.dumps(result, indent=2))


def _print_rpc_error(e):
    """rpc.py's error report: the request's params with method and id, then the error."""
    if isinstance(e.params, dict):
        request = dict(e.params)
    else:
        request = {} if e.params is None else {"params": e.params}
    request.update(method=e.method, req_id=e.req_id)
    error = {"code": e.code, "message": e.message}
    print("\n".join(["request:", json.dumps(request, indent=2), "Got JSON-RPC error response",
                     "response:", json.dumps(error, indent=2)]), file=sys.stderr)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logging.getLogger("mimo").addHandler(handler)
        logging.getLogger("mimo").setLevel(logging.DEBUG)
    method = None
    try:
        if args.dry_run:
            client = DryRunClient()
        else:
            client = Client(args.server_addr, timeout=args.rpc_timeout, port=args.port,
                            conn_retries=args.conn_retries)
        if hasattr(args, "run"):
            return args.run(client, args)
        method, params = args.request(args)
        result = client.call(method, params)
        if hasattr(args, "format") and result is not None:
            result = args.format(result)
        _print_result(result)
        return 0
    except RpcError as e:
        _print_rpc_error(e)
    except RpcConnectionError as e:
        if method == "spdk_kill_instance":
            return 0  # the daemon may die before it replies
        print(e, file=sys.stderr)
    except (TimeoutError, OSError, ValueError) as e:
        print(f"mimo-rpc: {e}", file=sys.stderr)
    return 1
