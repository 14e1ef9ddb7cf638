#!/usr/bin/env python3
"""Minimal reproductions of the corpus divergences: lookctl vs the oracle on each one.

Usage: bench/corpus/repros.py [--update] [NAME ...]

Each directory bench/corpus/repros/<cause>/ is a tiny kustomize tree written for this
purpose (nothing copied from the corpus). It is built at "." unless a file BUILD lists the
directories to build (one per line, relative). For each build dir D the expected oracle
result is stored next to it:
  D/expected.yaml   kustomize's stdout when it builds
  D/expected.error  the first line of kustomize's error when it refuses
--update rewrites those files from the oracle ($LOOKCTL_KUSTOMIZE, default
~/.cache/lookctl/tools/kustomize-v5.8.2/kustomize). Without it, lookctl
($LOOKCTL_BIN, default $CARGO_TARGET_DIR/release/lookctl) runs on every build dir and the
result is compared with the stored expectation: `ok` when lookctl prints the same bytes
(or refuses where the oracle refuses), `DIFF`, `REFUSED`, `ACCEPTED-BAD` or `HANG`.
Exit status 1 when any is not ok (they all diverge until the engine is fixed).
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402

REPROS = os.path.join(HERE, "repros")


def build_dirs(repro):
    f = os.path.join(repro, "BUILD")
    if os.path.exists(f):
        with open(f) as fh:
            return [l.strip() for l in fh if l.strip() and not l.startswith("#")]
    return ["."]


def main():
    args = [a for a in sys.argv[1:] if a != "--update"]
    update = "--update" in sys.argv[1:]
    kustomize, lookctl = run.default_kustomize(), run.default_lookctl()
    names = args or sorted(n for n in os.listdir(REPROS)
                           if os.path.isdir(os.path.join(REPROS, n)))
    bad = 0
    for name in names:
        repro = os.path.join(REPROS, name)
        for d in build_dirs(repro):
            where = os.path.normpath(os.path.join(repro, d))
            label = f"{name}/{d}" if d != "." else name
            exp_yaml = os.path.join(where, "expected.yaml")
            exp_err = os.path.join(where, "expected.error")
            if update:
                st, out, err, _ = run.run([kustomize, "build", "."], where, 60)
                for p in (exp_yaml, exp_err):
                    if os.path.exists(p):
                        os.remove(p)
                if st == 0:
                    with open(exp_yaml, "wb") as f:
                        f.write(out)
                else:
                    with open(exp_err, "w") as f:
                        f.write(run.first_error(err).replace(where, ".") + "\n")
                print(f"updated  {label}")
                continue
            st, out, err, _ = run.run([lookctl, "render", ".", "--no-template", "--show-secrets"],
                                      where, 20)
            if st == "timeout":
                verdict = "HANG"
            elif os.path.exists(exp_yaml):
                with open(exp_yaml, "rb") as f:
                    want = f.read()
                verdict = ("ok" if out == want else "DIFF") if st == 0 else "REFUSED"
            else:
                verdict = "ok" if st != 0 else "ACCEPTED-BAD"
            bad += verdict != "ok"
            print(f"{verdict:12} {label}")
    sys.exit(1 if bad and not update else 0)


if __name__ == "__main__":
    main()
