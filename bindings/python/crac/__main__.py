# SPDX-License-Identifier: MIT
"""python3 -m crac SCRIPT [ARGS...] | -m MODULE [ARGS...] | -c CODE [ARGS...]

Runs an unmodified Python program with the crac binding loaded first, so
that under `crac run` each restored instance gets a fresh `random` seed (and
Python's buffered output is flushed before a snapshot) without the program
importing crac itself:

    crac run --checkpoint-to img -- python3 -m crac app.py --port 8080
"""

import runpy
import sys

import crac  # noqa: F401  (registers the binding's runtime hooks)


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr if len(argv) < 2 else sys.stdout)
        return 2 if len(argv) < 2 else 0
    if argv[1] == "-m" and len(argv) >= 3:
        sys.argv = [argv[2]] + argv[3:]
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
    elif argv[1] == "-c" and len(argv) >= 3:
        sys.argv = ["-c"] + argv[3:]
        code = compile(argv[2], "<string>", "exec")
        main_mod = sys.modules["__main__"]
        g = {"__name__": "__main__", "__builtins__": __builtins__, "__doc__": None,
             "__spec__": None, "__loader__": getattr(main_mod, "__loader__", None)}
        exec(code, g)
    else:
        sys.argv = argv[1:]
        sys.path[0] = __import__("os").path.dirname(__import__("os").path.abspath(argv[1]))
        runpy.run_path(argv[1], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
