"""mimo_top: a live view of a running mimo_tgt (or SPDK target), as SPDK's spdk_top.

It asks the daemon over its JSON-RPC socket, every refresh, for what each tab shows, and draws
it with curses (Python's standard library: nothing to install beside Python):

    1 reactors   framework_get_reactors: busy % since the last refresh, messages/s, sleeps/s
    2 threads    thread_get_stats: each thread's busy %, its active and timed pollers
    3 pollers    thread_get_pollers: runs/s, busy runs/s, totals, the period of timed ones
    4 bdevs      bdev_get_iostat: IOPS, MiB/s, average latency, failed I/O
    5 subsystems nvmf_get_subsystems: namespaces, hosts, listeners, controllers, queue pairs
    6 qpairs     nvmf_subsystem_get_qpairs of every subsystem

Keys: 1-6 or Tab / Shift-Tab change tab, s sorts by the next column (S the previous one),
r reverses the order, q quits. Rates need two samples, so the first screen shows totals only.
A tab whose method the daemon does not have says so instead of failing; a daemon that goes
away is retried every refresh.

    mimo_top [-r SOCK] [-d SECONDS] [-t TAB] [-b [-n N]]

-b (batch) prints the tab as text instead of drawing it, N times (default 1), for scripts.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from mimo.client import DEFAULT_SOCKET, Client, RpcConnectionError, RpcError


@dataclass
class Column:
    title: str
    key: str
    width: int
    numeric: bool = True
    fmt: Callable[[Any], str] = str


def _num(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def _pct(v):
    return "-" if v is None else f"{v:5.1f}%"


def _mib(v):
    return "-" if v is None else f"{v / (1 << 20):.2f}"


@dataclass
class Tab:
    name: str
    columns: list
    fetch: Callable[["Sampler"], list]  # rows: dicts keyed by the columns' keys
    sort: int = 0                       # index of the sort column
    reverse: bool = False


class Sampler:
    """The daemon's answers, with the previous sample of each row kept for rates."""

    def __init__(self, client: Client):
        self.client = client
        self.prev: dict = {}  # (tab, row id) -> (time, values)
        self.now = time.monotonic()

    def call(self, method, params=None):
        return self.client.call(method, params)

    def rate(self, tab, row_id, values: dict) -> dict:
        """For each counter in values, its increase per second since the last sample of this
        row (None for the first sample)."""
        key = (tab, row_id)
        last = self.prev.get(key)
        self.prev[key] = (self.now, values)
        if last is None or self.now <= last[0]:
            return {k: None for k in values}
        dt = self.now - last[0]
        return {k: max(0, v - last[1].get(k, v)) / dt for k, v in values.items()}

    def delta(self, tab, row_id, values: dict) -> Optional[dict]:
        """Each counter's increase since the last sample of this row, or None the first time."""
        key = (tab, row_id)
        last = self.prev.get(key)
        self.prev[key] = (self.now, values)
        if last is None:
            return None
        return {k: max(0, v - last[1].get(k, v)) for k, v in values.items()}


def _busy_pct(s, tab, row_id, busy, hz):
    """The share of wall-clock time the reactor or thread spent on work since the last sample.
    Not busy / (busy + idle): a mimo reactor that sleeps in epoll counts neither, so that
    ratio would call a reactor that woke once for a message and slept again 100 % busy."""
    d = s.delta(tab, row_id, {"busy": busy, "t": s.now})
    if d is None or d["t"] <= 0 or not hz:
        return None
    return min(100.0, 100.0 * d["busy"] / (d["t"] * hz))


def fetch_reactors(s: Sampler):
    res = s.call("framework_get_reactors")
    rows = []
    for r in res["reactors"]:
        rid = r["lcore"]
        rates = s.rate("reactors-rate", rid, {"msgs": r.get("msgs", 0),
                                              "sleeps": r.get("sleeps", 0)})
        rows.append({
            "lcore": rid, "tid": r.get("tid"),
            "busy_pct": _busy_pct(s, "reactors", rid, r["busy"], res.get("tick_rate")),
            "msgs_s": rates["msgs"], "sleeps_s": rates["sleeps"],
            "usr": r.get("usr"), "sys": r.get("sys"), "irq": r.get("irq"),
            "threads": ",".join(t["name"] for t in r.get("lw_threads", [])),
            "mode": "interrupt" if r.get("in_interrupt") else "poll",
        })
    return rows


def fetch_threads(s: Sampler):
    res = s.call("thread_get_stats")
    rows = []
    for t in res["threads"]:
        rows.append({
            "name": t["name"], "id": t["id"], "cpumask": t["cpumask"],
            "busy_pct": _busy_pct(s, "threads", t["id"], t["busy"], res.get("tick_rate")),
            "active": t["active_pollers_count"], "timed": t["timed_pollers_count"],
            "paused": t["paused_pollers_count"],
        })
    return rows


def fetch_pollers(s: Sampler):
    res = s.call("thread_get_pollers")
    hz = res.get("tick_rate") or 1
    rows = []
    for t in res["threads"]:
        for kind in ("active", "timed", "paused"):
            for p in t.get(kind + "_pollers", []):
                rid = (t["id"], p["id"])
                rates = s.rate("pollers", rid, {"run": p["run_count"], "busy": p["busy_count"]})
                period = p.get("period_ticks")
                rows.append({
                    "thread": t["name"], "name": p["name"], "type": kind, "id": p["id"],
                    "runs_s": rates["run"], "busy_s": rates["busy"],
                    "run_count": p["run_count"], "busy_count": p["busy_count"],
                    "period_us": None if not period else round(period * 1e6 / hz),
                })
    return rows


def fetch_bdevs(s: Sampler):
    res = s.call("bdev_get_iostat")
    hz = res.get("tick_rate") or 1
    rows = []
    for b in res["bdevs"]:
        c = {k: b.get(k, 0) for k in ("num_read_ops", "num_write_ops", "bytes_read",
                                      "bytes_written", "read_latency_ticks",
                                      "write_latency_ticks")}
        r = s.rate("bdevs", b["name"], c)
        ops = c["num_read_ops"] + c["num_write_ops"]
        lat = c["read_latency_ticks"] + c["write_latency_ticks"]
        rows.append({
            "name": b["name"],
            "read_iops": r["num_read_ops"], "write_iops": r["num_write_ops"],
            "read_mib_s": r["bytes_read"], "write_mib_s": r["bytes_written"],
            "ops": ops,
            "lat_us": lat * 1e6 / hz / ops if ops else 0.0,
            "failed": b.get("num_failed_ops", 0),
        })
    return rows


def _qpairs(s, nqn):
    try:
        return s.call("nvmf_subsystem_get_qpairs", {"nqn": nqn})
    except RpcError:
        return []


def fetch_subsystems(s: Sampler):
    rows = []
    for sub in s.call("nvmf_get_subsystems"):
        nqn = sub["nqn"]
        ctrlrs = []
        if sub.get("subtype") != "Discovery":
            try:
                ctrlrs = s.call("nvmf_subsystem_get_controllers", {"nqn": nqn})
            except RpcError:
                ctrlrs = []
        rows.append({
            "nqn": nqn, "type": sub.get("subtype", ""),
            "namespaces": len(sub.get("namespaces", [])),
            "hosts": "any" if sub.get("allow_any_host") else len(sub.get("hosts", [])),
            "listeners": len(sub.get("listen_addresses", [])),
            "controllers": len(ctrlrs), "qpairs": len(_qpairs(s, nqn)),
        })
    return rows


def fetch_qpairs(s: Sampler):
    rows = []
    for sub in s.call("nvmf_get_subsystems"):
        for q in _qpairs(s, sub["nqn"]):
            la = q.get("listen_address", {})
            rows.append({
                "nqn": sub["nqn"], "cntlid": q.get("cntlid"), "qid": q.get("qid"),
                "state": q.get("state", ""), "thread": q.get("thread", ""),
                "listener": f"{la.get('traddr', '')}:{la.get('trsvcid', '')}",
            })
    return rows


def make_tabs():
    text = False  # numeric=False: a column of text, sorted A-Z
    return [
        Tab("reactors", [Column("lcore", "lcore", 6), Column("tid", "tid", 8),
                         Column("busy", "busy_pct", 7, fmt=_pct),
                         Column("msgs/s", "msgs_s", 10, fmt=_num),
                         Column("sleeps/s", "sleeps_s", 9, fmt=_num),
                         Column("usr", "usr", 7), Column("sys", "sys", 7),
                         Column("irq", "irq", 6), Column("mode", "mode", 9, text),
                         Column("threads", "threads", 24, text)], fetch_reactors),
        Tab("threads", [Column("thread", "name", 24, text), Column("id", "id", 4),
                        Column("cpumask", "cpumask", 8, text),
                        Column("busy", "busy_pct", 7, fmt=_pct),
                        Column("active", "active", 6), Column("timed", "timed", 6),
                        Column("paused", "paused", 6)], fetch_threads),
        Tab("pollers", [Column("thread", "thread", 12, text), Column("poller", "name", 26, text),
                        Column("type", "type", 6, text), Column("runs/s", "runs_s", 10, fmt=_num),
                        Column("busy/s", "busy_s", 10, fmt=_num),
                        Column("runs", "run_count", 11), Column("busy", "busy_count", 11),
                        Column("period_us", "period_us", 9, fmt=_num)], fetch_pollers),
        Tab("bdevs", [Column("bdev", "name", 20, text), Column("r IOPS", "read_iops", 10, fmt=_num),
                      Column("w IOPS", "write_iops", 10, fmt=_num),
                      Column("r MiB/s", "read_mib_s", 9, fmt=_mib),
                      Column("w MiB/s", "write_mib_s", 9, fmt=_mib),
                      Column("ops", "ops", 11), Column("lat us", "lat_us", 8, fmt=_num),
                      Column("failed", "failed", 7)], fetch_bdevs),
        Tab("subsystems", [Column("nqn", "nqn", 40, text), Column("type", "type", 9, text),
                           Column("ns", "namespaces", 4), Column("hosts", "hosts", 5, text),
                           Column("listeners", "listeners", 9),
                           Column("ctrlrs", "controllers", 6),
                           Column("qpairs", "qpairs", 6)], fetch_subsystems),
        Tab("qpairs", [Column("nqn", "nqn", 40, text), Column("cntlid", "cntlid", 6),
                       Column("qid", "qid", 4), Column("state", "state", 8, text),
                       Column("listener", "listener", 22, text)], fetch_qpairs),
    ]


def sort_rows(tab: Tab, rows):
    col = tab.columns[tab.sort]

    def key(r):
        v = r.get(col.key)
        if col.numeric:
            return (v is None, -(v or 0) if not tab.reverse else (v or 0))
        return (v is None, str(v))
    rows = sorted(rows, key=key)
    if tab.reverse and not col.numeric:
        rows.reverse()
    return rows


def render(tab: Tab, rows, width: int):
    """The tab as lines of text: the column titles (the sort column marked), then the rows."""
    def cell(text, c):
        text = str(text)
        if len(text) > c.width:
            text = text[:c.width - 1] + "~"
        return text.rjust(c.width) if c.numeric else text.ljust(c.width)
    titles = []
    for i, c in enumerate(tab.columns):
        mark = ("^" if tab.reverse else "v") if i == tab.sort else ""
        titles.append(cell(c.title + mark, c))
    lines = [" ".join(titles)[:width]]
    for r in sort_rows(tab, rows):
        lines.append(" ".join(cell(c.fmt(r.get(c.key)), c) for c in tab.columns)[:width])
    return lines


class Screen:
    """What a refresh produced for the current tab: lines, or the reason there are none."""

    def __init__(self, tabs, current):
        self.tabs = tabs
        self.current = current
        self.lines: list = []
        self.message = ""

    def update(self, sampler: Optional[Sampler], width: int):
        tab = self.tabs[self.current]
        if sampler is None:
            self.lines, self.message = [], "not connected"
            return
        sampler.now = time.monotonic()
        try:
            rows = tab.fetch(sampler)
            self.lines, self.message = render(tab, rows, width), f"{len(rows)} {tab.name}"
        except RpcError as e:
            if e.code == -32601:
                self.lines, self.message = [], f"this daemon has no {e.method or 'method'} " \
                    f"for the {tab.name} tab"
            else:
                self.lines, self.message = [], f"{tab.name}: {e}"


def header(tabs, current, sock, delay):
    names = "  ".join(f"[{i + 1} {t.name}]" if i == current else f" {i + 1} {t.name} "
                      for i, t in enumerate(tabs))
    # The tabs first: a long socket path is what gets cut on a narrow terminal.
    return f"mimo_top {names}   every {delay:g}s  {sock}"


HELP = "1-6/Tab: tab  s/S: sort column  r: reverse  q: quit"


def connect(sock, timeout):
    try:
        return Sampler(Client(sock, timeout=timeout))
    except (OSError, RpcConnectionError):
        return None


def run_curses(args, tabs):
    import curses

    def main(stdscr):
        curses.curs_set(0)
        stdscr.timeout(100)
        screen = Screen(tabs, args.tab)
        sampler = connect(args.rpc_socket, args.timeout)
        next_refresh = 0.0
        while True:
            now = time.monotonic()
            if now >= next_refresh:
                if sampler is None:
                    sampler = connect(args.rpc_socket, args.timeout)
                try:
                    screen.update(sampler, stdscr.getmaxyx()[1] - 1)
                except (OSError, RpcConnectionError) as e:
                    sampler = None
                    screen.lines, screen.message = [], f"connection lost: {e}"
                next_refresh = now + args.delay
                draw(stdscr, screen, args)
            key = stdscr.getch()
            if key == -1:
                continue
            if key in (ord("q"), ord("Q")):
                return
            tab = tabs[screen.current]
            if ord("1") <= key < ord("1") + len(tabs):
                screen.current = key - ord("1")
            elif key == ord("\t"):
                screen.current = (screen.current + 1) % len(tabs)
            elif key == curses.KEY_BTAB:
                screen.current = (screen.current - 1) % len(tabs)
            elif key == ord("s"):
                tab.sort = (tab.sort + 1) % len(tab.columns)
            elif key == ord("S"):
                tab.sort = (tab.sort - 1) % len(tab.columns)
            elif key == ord("r"):
                tab.reverse = not tab.reverse
            elif key == curses.KEY_RESIZE:
                pass
            else:
                continue
            next_refresh = 0.0  # show the change at once

    curses.wrapper(main)


def draw(stdscr, screen, args):
    import curses
    stdscr.erase()
    h, w = stdscr.getmaxyx()
    put = lambda y, text, attr=0: stdscr.addnstr(y, 0, text, w - 1, attr)  # noqa: E731
    put(0, header(screen.tabs, screen.current, args.rpc_socket, args.delay), curses.A_BOLD)
    for i, line in enumerate(screen.lines[:max(0, h - 3)]):
        put(i + 1, line, curses.A_REVERSE if i == 0 else 0)
    put(h - 1, f"{screen.message}   {HELP}")
    stdscr.refresh()


def run_batch(args, tabs):
    screen = Screen(tabs, args.tab)
    sampler = connect(args.rpc_socket, args.timeout)
    if sampler is None:
        print(f"mimo_top: cannot connect to {args.rpc_socket}", file=sys.stderr)
        return 1
    for i in range(args.iterations):
        if i:
            time.sleep(args.delay)
        screen.update(sampler, 1 << 16)
        print(header(tabs, screen.current, args.rpc_socket, args.delay))
        print("\n".join(screen.lines))
        print(screen.message)
    return 0


def main(argv=None):
    tabs = make_tabs()
    p = argparse.ArgumentParser(prog="mimo_top", description="A live view of mimo_tgt.")
    p.add_argument("-r", "--rpc-socket", default=DEFAULT_SOCKET,
                   help=f"the daemon's JSON-RPC socket (default {DEFAULT_SOCKET})")
    p.add_argument("-d", "--delay", type=float, default=1.0,
                   help="seconds between refreshes (default 1)")
    p.add_argument("-t", "--tab", default="reactors",
                   choices=[t.name for t in tabs] + [str(i + 1) for i in range(len(tabs))],
                   help="the tab shown first")
    p.add_argument("-b", "--batch", action="store_true", help="print text instead of drawing")
    p.add_argument("-n", "--iterations", type=int, default=1, help="refreshes in batch mode")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer")
    args = p.parse_args(argv)
    if args.delay <= 0:
        p.error("-d must be more than 0")
    names = [t.name for t in tabs]
    args.tab = int(args.tab) - 1 if args.tab.isdigit() else names.index(args.tab)
    if args.batch:
        return run_batch(args, tabs)
    run_curses(args, tabs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
