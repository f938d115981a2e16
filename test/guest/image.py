#!/usr/bin/python3
"""The guest image for tests with real kernel clients: Debian 12's own kernel and tools, booted
by QEMU with -kernel/-initrd. See docs/guest-tests.md.

    fetch   apt-get download the packages in PACKAGES (the kernel: the version linux-image-amd64
            names) into <cache>/debs, once; later runs use what is there and ask nothing.
    build   unpack them, keep the kernel (bzImage), the modules in MODULES with everything they
            depend on (modules.dep from `depmod -b`), busybox and the programs in PROGRAMS with
            the shared libraries they need; write <cache>/base.cpio (newc, uncompressed) and
            <cache>/vmlinux (the ELF kernel out of the bzImage, which QEMU boots through PVH).
            Rebuilt only when the packages or this directory's files change.

<cache> is build/guest (MIMO_GUEST_DIR overrides it). Run as a script it does both and prints
where the files are; `--force` rebuilds, `--kernel bookworm-backports` makes the image with
backports' 6.12 kernel (files named with that suffix). Nothing here downloads anything but
Debian packages through apt, from the machine's own sources (those scripts/deps.sh installs
from), or their mirror's bookworm-backports suite for that kernel.
"""
import glob
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CACHE = os.environ.get("MIMO_GUEST_DIR") or os.path.join(REPO, "build", "guest")

# The guest kernels: Debian 12's own (the default), and bookworm-backports' (6.12), the one
# with NVMe in-band authentication (Debian 12's 6.1 is built without CONFIG_NVME_AUTH) and
# NVMe/TCP TLS. "pattern" finds the cached package, "suite" is where apt gets it: the machine's
# own sources, or the same mirror's bookworm-backports through a private apt state under
# <cache>/apt-<name> (the machine's configuration is not changed).
KERNELS = {
    "bookworm": {"pattern": "linux-image-6.1.0-*-amd64_*.deb", "suite": None},
    "bookworm-backports": {"pattern": "linux-image-*-amd64_*bpo12*.deb",
                           "suite": "bookworm-backports"},
}
DEFAULT_KERNEL = "bookworm"
KERNEL_META = "linux-image-amd64"          # resolved to linux-image-6.1.0-N-amd64 (and so on)
# The guest's userspace: busybox (shell, modprobe, ip, dd, cmp...) and nvme-cli with the
# libraries it links. libc6 is taken from the archive too, so the guest does not depend on what
# the host happens to have installed.
PACKAGES = ["busybox-static", "nvme-cli", "libnvme1", "libjson-c5", "libssl3", "libdbus-1-3",
            "zlib1g", "libc6", "libsystemd0", "libcap2", "libgcrypt20", "libgpg-error0",
            "liblz4-1", "liblzma5", "libzstd1",
            # mkfs.ext4 (busybox's mke2fs makes ext2 only), for filesystems on vhost-user-blk
            "e2fsprogs", "libext2fs2", "libcom-err2", "libblkid1", "libuuid1",
            # libiscsi's conformance suite, run through SG_IO on vhost-user-scsi disks
            "libiscsi-bin", "libiscsi7", "libcunit1", "librdmacm1", "libibverbs1",
            "libnl-3-200", "libnl-route-3-200"]
# Modules in the image (their dependencies and soft dependencies come with them). crc32c for
# NVMe/TCP digests, crct10dif/crc64 for t10-pi (nvme-core's dependency).
MODULES = ["nvme-tcp", "nvme-fabrics", "nvme-core", "virtio_net", "virtio_pci",
           "crc32c_intel", "crc32c_generic", "crct10dif_pclmul", "crct10dif_generic",
           "crc64_rocksoft_generic",
           # vhost-user-blk disks and a filesystem on them
           "virtio_blk", "ext4",
           # vhost-user-scsi disks: /dev/sdX and their /dev/sgN
           "virtio_scsi", "sd_mod", "sg"]
# Programs from the packages (paths inside them), with their shared libraries.
PROGRAMS = ["usr/sbin/nvme", "sbin/mkfs.ext4", "usr/bin/iscsi-test-cu"]
# Files of this directory that go into the image; a change to them (or to this file) rebuilds.
INIT = os.path.join(HERE, "init")
GUEST_SH = os.path.join(HERE, "guest.sh")


class Unavailable(Exception):
    """The packages cannot be had here (no network to the archive, no package lists): tests
    that need the guest skip, saying this."""


def log(msg):
    print(f"guest image: {msg}", file=sys.stderr, flush=True)


# --- fetch ------------------------------------------------------------------------------------

def _debs_dir():
    return os.path.join(CACHE, "debs")


def _cached(name):
    """The cached .deb of package `name` (the newest if several), or None."""
    found = sorted(glob.glob(os.path.join(_debs_dir(), f"{name}_*.deb")))
    return found[-1] if found else None


def _kernel_deb(kernel):
    found = sorted(glob.glob(os.path.join(_debs_dir(), KERNELS[kernel]["pattern"])))
    return found[-1] if found else None


def _mirror():
    """The URI the machine's apt gets bookworm from (apt-cache policy says)."""
    r = subprocess.run(["apt-cache", "policy"], capture_output=True, text=True)
    m = re.search(r"^\s*\d+\s+(\S+)\s+bookworm/main amd64 Packages", r.stdout, re.M)
    if not m:
        raise Unavailable("apt has no bookworm source (no package lists? `apt-get update`)")
    return m.group(1)


def _apt_options(kernel):
    """apt-get/apt-cache options for the kernel's suite: none for the machine's own sources;
    otherwise a private sources list and state (updated when made)."""
    suite = KERNELS[kernel]["suite"]
    if not suite:
        return []
    d = os.path.join(CACHE, f"apt-{kernel}")
    opts = ["-o", f"Dir::Etc::sourcelist={d}/sources.list",
            "-o", f"Dir::Etc::sourceparts={d}/sources.list.d",
            "-o", f"Dir::State::Lists={d}/lists", "-o", f"Dir::Cache={d}/cache",
            "-o", "APT::Sandbox::User=root"]
    if not os.path.exists(os.path.join(d, "updated")):
        for sub in ("lists/partial", "cache/archives/partial", "sources.list.d"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(os.path.join(d, "sources.list"), "w") as f:
            f.write(f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                    f"{_mirror()} {suite} main\n")
        _apt(["apt-get", *opts, "-q", "update"], d, f"apt-get update of {suite}")
        open(os.path.join(d, "updated"), "w").close()
    return opts


def _apt(args, cwd, what):
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        errors = [ln for ln in (r.stderr + r.stdout).splitlines() if ln.startswith(("E:", "W:"))]
        first = re.sub(r"https?://\S*/", "", errors[0] if errors else
                       (r.stderr.strip() or r.stdout.strip())[-300:])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise Unavailable(f"{what} failed, Debian's archive out of reach? {first[:300]}{more}")
    return r.stdout


def _resolve_kernel(opts):
    """The versioned kernel package linux-image-amd64 depends on, from apt's package lists."""
    r = subprocess.run(["apt-cache", *opts, "depends", KERNEL_META], capture_output=True,
                       text=True)
    m = re.search(r"Depends: (linux-image-\S+-amd64)\b", r.stdout)
    if not m:
        raise Unavailable(f"apt-cache does not know {KERNEL_META} (no package lists? "
                          f"`apt-get update` fetches them): {r.stderr.strip()[:300]}")
    return m.group(1)


def _download(names, opts=()):
    log(f"downloading {' '.join(names)} into {_debs_dir()}")
    # Into a temporary folder first, so an interrupted download leaves no partial .deb.
    tmp = tempfile.mkdtemp(prefix=".dl-", dir=_debs_dir())
    try:
        # As root, apt would hand the download to its _apt user, who cannot write here.
        _apt(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *opts, *names],
             tmp, "apt-get download")
        for f in os.listdir(tmp):
            os.rename(os.path.join(tmp, f), os.path.join(_debs_dir(), f))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(kernel=DEFAULT_KERNEL):
    """Download what is missing from the cache. Returns the list of .deb paths, the kernel's
    first."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel {kernel!r}: one of {', '.join(KERNELS)}")
    os.makedirs(_debs_dir(), exist_ok=True)
    missing = [p for p in PACKAGES if not _cached(p)]
    if (missing or not _kernel_deb(kernel)) and not shutil.which("apt-get"):
        raise Unavailable("apt-get is not installed")
    if missing:
        _download(missing)
    if not _kernel_deb(kernel):
        opts = _apt_options(kernel)
        _download([_resolve_kernel(opts)], opts)
    debs = [_kernel_deb(kernel)] + [_cached(p) for p in PACKAGES]
    assert all(debs), debs
    return debs


# --- cpio (newc) ------------------------------------------------------------------------------

class Cpio:
    """A newc archive written in order, every entry owned by root with mtime 0, so the same
    input gives the same bytes. Directories are created for every path added."""

    def __init__(self, f):
        self.f = f
        self.ino = 1
        self.dirs = set()

    def _entry(self, name, mode, data=b"", nlink=1):
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08X}" for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
        self.ino += 1
        out = hdr.encode() + name_b
        out += b"\0" * (-len(out) % 4)
        out += data + b"\0" * (-len(data) % 4)
        self.f.write(out)

    def dir(self, path):
        path = path.strip("/")
        if not path or path in self.dirs:
            return
        self.dir(os.path.dirname(path))
        self.dirs.add(path)
        self._entry(path, 0o040755, nlink=2)

    def file(self, path, data, mode=0o644):
        path = path.strip("/")
        self.dir(os.path.dirname(path))
        self._entry(path, 0o100000 | mode, data)

    def symlink(self, path, target):
        path = path.strip("/")
        self.dir(os.path.dirname(path))
        self._entry(path, 0o120777, target.encode())

    def close(self):
        self._entry("TRAILER!!!", 0)
        # The kernel finds the next archive of a concatenation at any 4-byte boundary; pad to
        # 512 as cpio(1) does.
        self.f.write(b"\0" * (-self.f.tell() % 512))


# --- build ------------------------------------------------------------------------------------

def _stamp(debs):
    h = hashlib.sha256()
    for d in debs:
        h.update(os.path.basename(d).encode() + b"\n")
    for f in sorted([os.path.abspath(__file__), INIT, GUEST_SH]):
        with open(f, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


def _vmlinux(bz):
    """The ELF kernel inside a bzImage (xz in Debian 12's 6.1, zstd in backports' 6.12), or
    None. QEMU boots it through PVH, which skips the firmware and the decompressor: 3 to 5 s
    less per boot under TCG."""
    i = bz.find(b"\xfd7zXZ\x00")
    if i >= 0:
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(bz[i:])
    else:
        i = bz.find(b"\x28\xb5\x2f\xfd")
        if i < 0 or not shutil.which("zstd"):
            return None
        # The bzImage's stream ends with the decompressed size; zstd warns about it.
        r = subprocess.run(["zstd", "-dcq"], input=bz[i:], capture_output=True)
        elf = r.stdout
    return elf if elf.startswith(b"\x7fELF") else None


def paths(kernel=DEFAULT_KERNEL):
    """Where the image of `kernel` is: kernel, initrd, manifest."""
    sfx = "" if kernel == DEFAULT_KERNEL else f"-{kernel}"
    return {"kernel": os.path.join(CACHE, f"vmlinux{sfx}"),
            "initrd": os.path.join(CACHE, f"base{sfx}.cpio"),
            "manifest": os.path.join(CACHE, f"manifest{sfx}.json")}


def _inside(root, path):
    """path with its symbolic links followed inside root (absolute links are relative to it)."""
    for _ in range(40):
        if not os.path.islink(path):
            return path
        t = os.readlink(path)
        path = os.path.join(root, t.lstrip("/")) if t.startswith("/") else \
            os.path.normpath(os.path.join(os.path.dirname(path), t))
    raise RuntimeError(f"symbolic link loop at {path}")


def _needed(elf):
    r = subprocess.run(["readelf", "-d", elf], capture_output=True, text=True, check=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout)


def build(debs, force=False, kernel=DEFAULT_KERNEL):
    p = paths(kernel)
    stamp = _stamp(debs)
    try:
        with open(p["manifest"]) as f:
            if not force and json.load(f)["stamp"] == stamp and \
                    os.path.exists(p["kernel"]) and os.path.exists(p["initrd"]):
                return p
    except (OSError, ValueError, KeyError):
        pass
    for tool in ("dpkg-deb", "depmod", "modprobe", "readelf"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}") \
                and not os.path.exists(f"/sbin/{tool}"):
            raise RuntimeError(f"{tool} is missing (scripts/deps.sh installs it)")
    log(f"building the {kernel} image in {CACHE}")
    work = tempfile.mkdtemp(prefix=".build-", dir=CACHE)
    try:
        root = os.path.join(work, "root")
        for d in debs:
            subprocess.run(["dpkg-deb", "-x", d, root], check=True)
        kvers = os.listdir(os.path.join(root, "lib", "modules"))
        assert len(kvers) == 1, kvers
        kver = kvers[0]
        # Dependencies, soft dependencies included, as the full tree's modules.dep says.
        subprocess.run(["depmod", "-b", root, kver], check=True)
        mods = []
        for m in MODULES:
            r = subprocess.run(["modprobe", "-d", root, "-S", kver, "--show-depends", m],
                               capture_output=True, text=True)
            if r.returncode != 0:
                # Built in, or gone in this kernel (crc32c_intel became crc32c-x86 later):
                # only the essential ones must be there.
                if m in ("nvme-tcp", "virtio_net"):
                    raise RuntimeError(f"{m}: {r.stderr.strip()}")
                continue
            for line in r.stdout.splitlines():
                w = line.split()
                if w and w[0] == "insmod" and w[1] not in mods:
                    mods.append(w[1])
        # Userspace: programs, and the libraries they need, transitively.
        libdirs = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64"]
        files, todo = [], [os.path.join(root, x) for x in PROGRAMS]
        while todo:
            f = todo.pop()
            if f in files:
                continue
            files.append(f)
            for lib in _needed(_inside(root, f)):
                hits = [os.path.join(root, d, lib) for d in libdirs
                        if os.path.lexists(os.path.join(root, d, lib))]
                if not hits:
                    raise RuntimeError(f"{lib} (needed by {f}) is in none of the packages: "
                                       "add its package to PACKAGES")
                todo.append(hits[0])
        files.append(os.path.join(root, "lib64", "ld-linux-x86-64.so.2"))

        stage = os.path.join(work, "stage")
        mdir = os.path.join(stage, "lib", "modules", kver)
        for m in mods:
            rel = os.path.relpath(m, os.path.join(root, "lib", "modules", kver))
            os.makedirs(os.path.dirname(os.path.join(mdir, rel)), exist_ok=True)
            if rel.endswith(".xz"):
                # Uncompressed in the image: busybox's modprobe then needs no xz.
                with lzma.open(m) as src, open(os.path.join(mdir, rel[:-3]), "wb") as dst:
                    shutil.copyfileobj(src, dst)
            else:
                shutil.copy(m, os.path.join(mdir, rel))
        for f in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            src = os.path.join(root, "lib", "modules", kver, f)
            if os.path.exists(src):
                shutil.copy(src, mdir)
        subprocess.run(["depmod", "-b", stage, kver], check=True)

        # Written in the work folder, then renamed: two test sessions may build at once.
        tmp, ktmp = os.path.join(work, "base.cpio"), os.path.join(work, "vmlinux")
        with open(tmp, "wb") as out:
            c = Cpio(out)
            for d in ("dev", "proc", "sys", "tmp", "run", "etc", "root", "mnt", "sbin",
                      "usr/bin", "usr/sbin", "test"):
                c.dir(d)
            bb = os.path.join(root, "bin", "busybox")
            with open(bb, "rb") as fh:
                c.file("bin/busybox", fh.read(), 0o755)
            applets = subprocess.run([bb, "--list-full"], capture_output=True, text=True,
                                     check=True).stdout.split()
            for a in applets:
                if a != "bin/busybox":
                    c.symlink(a, "/bin/busybox")
            for f in files:
                with open(_inside(root, f), "rb") as fh:
                    c.file(os.path.relpath(f, root), fh.read(), 0o755)
            for dirpath, _, names in sorted(os.walk(os.path.join(stage, "lib"))):
                for n in sorted(names):
                    full = os.path.join(dirpath, n)
                    with open(full, "rb") as fh:
                        c.file(os.path.relpath(full, stage), fh.read())
            with open(INIT, "rb") as fh:
                c.file("init", fh.read(), 0o755)
            with open(GUEST_SH, "rb") as fh:
                c.file("lib/guest.sh", fh.read())
            c.close()
        with open(glob.glob(os.path.join(root, "boot", "vmlinuz-*"))[0], "rb") as f:
            bz = f.read()
        with open(ktmp, "wb") as f:
            f.write(_vmlinux(bz) or bz)
        os.rename(ktmp, p["kernel"])
        os.rename(tmp, p["initrd"])
        manifest = {"stamp": stamp, "kernel_version": kver,
                    "packages": [os.path.basename(d) for d in debs],
                    "modules": [os.path.basename(m).removesuffix(".xz") for m in mods],
                    "files": [os.path.relpath(f, root) for f in files]}
        with open(os.path.join(work, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
        os.rename(f.name, p["manifest"])
        log(f"{p['initrd']}: {os.path.getsize(p['initrd']) >> 10} KiB, kernel {kver}")
        return p
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure(kernel=DEFAULT_KERNEL, force=False):
    """fetch() then build(): the paths of kernel, initrd and manifest. Raises Unavailable when
    the packages cannot be downloaded."""
    os.makedirs(CACHE, exist_ok=True)
    return build(fetch(kernel), force, kernel)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="Fetch and build the guest image (build/guest).")
    ap.add_argument("--kernel", default=DEFAULT_KERNEL, choices=list(KERNELS))
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    a = ap.parse_args()
    try:
        print(json.dumps(ensure(a.kernel, a.force), indent=1))
    except Unavailable as e:
        print(f"guest image unavailable: {e}", file=sys.stderr)
        sys.exit(77)
