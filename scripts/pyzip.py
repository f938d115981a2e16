#!/usr/bin/python3
"""Make build/bin/mimo-rpc (and mimo_top): the `mimo` package as one executable zip (Python's
zipapp) that runs mimo.cli:main (or the ENTRY given) - a command that needs no installation
and no sys.path tricks.

    scripts/pyzip.py PACKAGE_DIR OUTPUT [MODULE:FUNCTION]
"""
import os
import sys
import tempfile
import zipapp


def main():
    pkg, out = sys.argv[1], sys.argv[2]
    module, func = (sys.argv[3] if len(sys.argv) > 3 else "mimo.cli:main").split(":")
    with tempfile.TemporaryDirectory() as tmp:
        # Only the package's sources, in a stable order (no __pycache__, no editor files).
        dst = os.path.join(tmp, "mimo")
        os.makedirs(dst)
        for name in sorted(os.listdir(pkg)):
            if name.endswith(".py"):
                with open(os.path.join(pkg, name), "rb") as src, \
                        open(os.path.join(dst, name), "wb") as f:
                    f.write(src.read())
        # Our own __main__ (zipapp's would drop main()'s exit status).
        with open(os.path.join(tmp, "__main__.py"), "w") as f:
            f.write(f"import sys\n\nfrom {module} import {func}\n\nsys.exit({func}())\n")
        zipapp.create_archive(tmp, out, interpreter="/usr/bin/python3")
    os.chmod(out, 0o755)


if __name__ == "__main__":
    main()
