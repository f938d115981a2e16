"""mimo-rpc's FUSE export subcommands."""


def add_commands(sub, simple):
    """simple(sub, name, help, build) adds a one-request subcommand (cli._simple)."""
    def create(a):
        p = {"mountpoint": a.mountpoint}
        if a.bdev:
            p["bdevs"] = a.bdev
        if a.read_only:
            p["writable"] = False
        if a.coherence:
            p["coherence"] = a.coherence
        if a.allow_other:
            p["allow_other"] = True
        return p

    p = simple(sub, "fuse_export_create", "export bdevs as files under MOUNTPOINT/bdevs",
               create)
    p.add_argument("mountpoint")
    p.add_argument("-b", "--bdev", action="append",
                   help="a bdev to show (repeat; default: every bdev, now and later)")
    p.add_argument("-r", "--read-only", action="store_true")
    p.add_argument("-c", "--coherence", choices=["store", "inval", "none"],
                   help="how writes by other paths reach the page cache (default store)")
    p.add_argument("--allow-other", action="store_true",
                   help="mount with allow_other (files stay 0600, owned by the daemon's user)")
    p = simple(sub, "fuse_export_delete", "unmount an export",
               lambda a: {"mountpoint": a.mountpoint})
    p.add_argument("mountpoint")
    simple(sub, "fuse_get_exports", "list FUSE exports and their notification counters",
           lambda a: None)
    p = simple(sub, "fuse_export_verify_cache",
               "compare the kernel's cached pages of a bdev file with the bdev (RETRIEVE)",
               lambda a: {"mountpoint": a.mountpoint, "bdev": a.bdev})
    p.add_argument("mountpoint")
    p.add_argument("bdev")
