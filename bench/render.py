#!/usr/bin/env python3
"""Render benchmark: `lookctl render DIR --no-template` vs `kubectl kustomize DIR`, same
trees, same run, same machine. Prints a Markdown table for BENCHMARKS.md.

Usage: bench/render.py [--runs N] [--sizes 200,400,1000,2000] [--no-build]
                       [--kustomize PATH] [--gen PATH]

--kustomize PATH compares with `PATH build DIR` (a kustomize binary, e.g. the oracle that
scripts/oracle builds) instead of `kubectl kustomize DIR`; $LOOKCTL_KUSTOMIZE sets it too.
--gen PATH takes the tree generator from PATH instead
of the repository's copy.

Builds lookctl in release mode first (CARGO_TARGET_DIR, default ./target). Trees come from tests/fixtures/kustomize/gen_tree.py (N apps x 3 objects,
overlay `production`) plus the example app's staging overlay.

Method, per tree:
- one untimed warm-up run of each command (page cache, binaries; kustomize's is skipped
  on trees over 400 apps, where lookctl's warm-up has already read the files);
- then N rounds, each running lookctl and then kubectl kustomize, so that load from other
  work on the machine hits both in the same round (kustomize, which takes seconds to
  minutes on the big trees, runs at most 3 times at 400 apps, 2 at 1000, 1 above);
- the table shows the median wall time of each, the ratio of the medians, the median
  CPU time (user+sys from wait4; less sensitive to other load on the machine), and the
  median peak RSS over the timed runs (ru_maxrss from wait4, the counter GNU time's %M
  prints; cross-checked once with /usr/bin/time -f %M, for kustomize only up to 400 apps);
- both outputs are compared: byte for byte, and object by object, field by field (keyed
  by apiVersion/kind/namespace/name). Differences are printed, never hidden.
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(ROOT, "tests", "fixtures", "kustomize", "gen_tree.py")
TARGET = os.environ.get("CARGO_TARGET_DIR") or (
    os.path.join(ROOT, "target"))
LOOKCTL = os.path.join(TARGET, "release", "lookctl")


def run(cmd):
    """Runs cmd once; returns (wall seconds, peak RSS in KiB, stdout, CPU seconds)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        elapsed = time.perf_counter() - start
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0); err.seek(0)
        if p.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{err.read().decode()}")
        return elapsed, usage.ru_maxrss, out.read(), usage.ru_utime + usage.ru_stime


def gnu_time_rss_kib(cmd):
    """Peak RSS of one run, measured by GNU time (-f %M, KiB)."""
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, check=True)
    return int(p.stderr.decode().strip().splitlines()[-1])


def objects(stream):
    import yaml  # PyYAML; only to compare objects
    return [d for d in yaml.safe_load_all(stream) if d]


def key(d):
    m = d.get("metadata") or {}
    return (d.get("apiVersion"), d.get("kind"), m.get("namespace") or "", m.get("name"))


def diff(a, b, path=""):
    """Paths where a and b differ (recursive, field by field)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a:
                out.append(f"{path}.{k}: only in kustomize")
            elif k not in b:
                out.append(f"{path}.{k}: only in lookctl")
            else:
                out += diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: list of {len(a)} (lookctl) vs {len(b)} (kustomize)"]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff(x, y, f"{path}[{i}]")
        return out
    if a != b or type(a) is not type(b):
        return [f"{path}: {a!r} (lookctl) vs {b!r} (kustomize)"]
    return []


def compare(lk_out, kz_out):
    """Returns (byte_identical, differences as text lines)."""
    a, b = objects(lk_out), objects(kz_out)
    da, db = {key(d): d for d in a}, {key(d): d for d in b}
    problems = []
    if len(da) != len(a) or len(db) != len(b):
        problems.append(f"duplicate keys: lookctl {len(a)} docs/{len(da)} keys, "
                        f"kustomize {len(b)} docs/{len(db)} keys")
    for k in sorted(set(da) - set(db), key=str):
        problems.append(f"only in lookctl: {k}")
    for k in sorted(set(db) - set(da), key=str):
        problems.append(f"only in kustomize: {k}")
    for k in sorted(set(da) & set(db), key=str):
        for d in diff(da[k], db[k]):
            problems.append(f"{k}: {d}")
    if not problems and [key(d) for d in a] != [key(d) for d in b]:
        problems.append("same objects, different order")
    return lk_out == kz_out, problems


KUSTOMIZE = None  # set by --kustomize / $LOOKCTL_KUSTOMIZE


def bench(name, tree, runs, kustomize_runs, big=False):
    lk = [LOOKCTL, "render", tree, "--no-template"]
    kz = [KUSTOMIZE, "build", tree] if KUSTOMIZE else ["kubectl", "kustomize", tree]
    run(lk)  # warm-up, untimed (also warms the page cache for kustomize)
    if not big:
        run(kz)
    lk_t, kz_t, lk_rss, kz_rss, lk_cpu, kz_cpu = [], [], [], [], [], []
    lk_out = kz_out = None
    for i in range(runs):
        t, r, lk_out, c = run(lk); lk_t.append(t); lk_rss.append(r); lk_cpu.append(c)
        if i < kustomize_runs:
            t, r, kz_out, c = run(kz); kz_t.append(t); kz_rss.append(r); kz_cpu.append(c)
    identical, problems = compare(lk_out, kz_out)
    for p in problems[:50]:
        print(f"  DIFF {name}: {p}", file=sys.stderr)
    if len(problems) > 50:
        print(f"  DIFF {name}: ... {len(problems) - 50} more", file=sys.stderr)
    n = len(objects(kz_out))
    lk_med, kz_med = statistics.median(lk_t), statistics.median(kz_t)
    row = {
        "name": name, "objects": n, "identical": identical, "problems": len(problems),
        "lookctl_s": lk_med, "kustomize_s": kz_med, "ratio": kz_med / lk_med,
        "lookctl_range": (min(lk_t), max(lk_t)), "kustomize_range": (min(kz_t), max(kz_t)),
        "lookctl_rss": statistics.median(lk_rss) / 1024, "kustomize_rss": statistics.median(kz_rss) / 1024,
        "lookctl_rss_gnu": gnu_time_rss_kib(lk) / 1024,
        "kustomize_rss_gnu": float("nan") if big else gnu_time_rss_kib(kz) / 1024,
        "runs": (len(lk_t), len(kz_t)),
        "lookctl_cpu": statistics.median(lk_cpu), "kustomize_cpu": statistics.median(kz_cpu),
    }
    print(f"  {name}: {n} objects, lookctl {lk_med*1000:.1f} ms "
          f"[{min(lk_t)*1000:.1f}..{max(lk_t)*1000:.1f}], kustomize {kz_med*1000:.0f} ms "
          f"[{min(kz_t)*1000:.0f}..{max(kz_t)*1000:.0f}], {kz_med/lk_med:.1f}x, "
          f"CPU {row['lookctl_cpu']*1000:.0f} vs {row['kustomize_cpu']*1000:.0f} ms, "
          f"RSS {row['lookctl_rss']:.1f} vs {row['kustomize_rss']:.1f} MiB "
          f"(GNU time: {row['lookctl_rss_gnu']:.1f} vs {row['kustomize_rss_gnu']:.1f}), "
          f"{'byte-identical' if identical else f'{len(problems)} differences'}",
          file=sys.stderr, flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default="200,400,1000,2000")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--kustomize", default=os.environ.get("LOOKCTL_KUSTOMIZE"),
                    help="a kustomize binary to compare with (default: kubectl kustomize)")
    ap.add_argument("--gen", default=GEN, help="the tree generator (gen_tree.py OUT N)")
    args = ap.parse_args()
    global KUSTOMIZE
    KUSTOMIZE = args.kustomize
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "--bin", "lookctl"], cwd=ROOT,
                       check=True, env={**os.environ, "CARGO_TARGET_DIR": TARGET})
    # With --no-template lookctl treats `{{ ... }}` as literal text, exactly as kustomize
    # does, so both build the same objects from the example app's templated overlay.
    rows = [bench("example app (overlays/staging)", os.path.join(ROOT, "overlays", "staging"),
                  args.runs, args.runs)]
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(s) for s in args.sizes.split(",") if s]:
            out = os.path.join(tmp, f"tree{n}")
            subprocess.run([sys.executable, args.gen, out, str(n)], check=True)
            # kustomize takes seconds to minutes on the big trees: fewer runs there.
            kustomize_runs = min(args.runs, 5 if n <= 200 else 3 if n <= 400 else 2 if n <= 1000 else 1)
            rows.append(bench(f"gen_tree.py {n} (overlays/production)",
                              os.path.join(out, "overlays", "production"), args.runs, kustomize_runs,
                              big=n > 400))
    print("| tree | objects | same output | lookctl wall | kustomize wall | speed-up (wall) | "
          "lookctl CPU | kustomize CPU | speed-up (CPU) | lookctl µs/object (wall) | "
          "peak RSS lookctl | peak RSS kustomize | runs (lk/kz) |")
    print("| --- | ---: | :---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        same = "byte-identical" if r["identical"] else (
            "same objects, other bytes" if r["problems"] == 0 else f"NO ({r['problems']} diffs)")
        print(f"| {r['name']} | {r['objects']} | {same} | {r['lookctl_s']*1000:.1f} ms | "
              f"{r['kustomize_s']*1000:.0f} ms | {r['ratio']:.0f}x | "
              f"{r['lookctl_cpu']*1000:.0f} ms | {r['kustomize_cpu']*1000:.0f} ms | "
              f"{r['kustomize_cpu']/max(r['lookctl_cpu'], 1e-3):.0f}x | "
              f"{r['lookctl_s']*1e6/max(r['objects'],1):.0f} | "
              f"{r['lookctl_rss']:.1f} MiB | {r['kustomize_rss']:.1f} MiB | {r['runs'][0]}/{r['runs'][1]} |")


if __name__ == "__main__":
    main()
