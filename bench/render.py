#!/usr/bin/env python3
"""Render benchmark: `lookctl render DIR --no-template` vs `kubectl kustomize DIR`, same
trees, same run, same machine. Prints a Markdown table for BENCHMARKS.md.

Usage: bench/render.py [--runs N] [--sizes 200,1000]
Builds lookctl in release mode first. Trees come from ../shared/tools/gen_tree.py
(N apps x 3 objects, overlay `production`) plus the example app's staging overlay.
Each command runs N times (default 5; kustomize on trees over 200 apps at most 3 times); the table
shows the median wall time, the ratio, and the peak RSS of one run (from wait4's rusage).
Both outputs are also checked to hold the same objects, so the race is on equal work.
"""
import argparse, os, resource, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(ROOT, "..", "shared", "tools", "gen_tree.py")
LOOKCTL = os.path.join(ROOT, "target", "release", "lookctl")


def run(cmd):
    """Runs cmd once; returns (seconds, stdout)."""
    start = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.stdout, p.stderr
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err.decode()}")
    return elapsed, out


def peak_rss_mib(cmd):
    """Peak RSS of one run, measured by GNU time (-f %M, KiB)."""
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, check=True)
    return int(p.stderr.decode().strip().splitlines()[-1]) / 1024


def objects(stream):
    import yaml  # PyYAML, present with pip; only to count and compare objects
    return [d for d in yaml.safe_load_all(stream) if d]


def bench(name, tree, runs, kustomize_runs):
    lk = [LOOKCTL, "render", tree, "--no-template"]
    kz = ["kubectl", "kustomize", tree]
    lk_times, kz_times = [], []
    lk_out = kz_out = None
    for i in range(runs):
        t, lk_out = run(lk); lk_times.append(t)
        if i < kustomize_runs:
            t, kz_out = run(kz); kz_times.append(t)
    a, b = objects(lk_out), objects(kz_out)
    key = lambda d: (d.get("kind"), d.get("metadata", {}).get("namespace") or "", d["metadata"]["name"])
    same = sorted(a, key=key) == sorted(b, key=key)
    lk_med, kz_med = statistics.median(lk_times), statistics.median(kz_times)
    return {
        "name": name, "objects": len(b), "same": same,
        "lookctl_s": lk_med, "kustomize_s": kz_med, "ratio": kz_med / lk_med,
        "lookctl_rss": peak_rss_mib(lk), "kustomize_rss": peak_rss_mib(kz),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default="200,1000")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "lookctl"], cwd=ROOT, check=True)
    # With --no-template lookctl treats `{{ ... }}` as literal text, exactly as kustomize
    # does, so both build the same objects from the example app's templated overlay.
    rows = [bench("example app (overlays/staging)", os.path.join(ROOT, "overlays", "staging"), args.runs, args.runs)]
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(s) for s in args.sizes.split(",") if s]:
            out = os.path.join(tmp, f"tree{n}")
            subprocess.run([sys.executable, GEN, out, str(n)], check=True)
            kustomize_runs = args.runs if n <= 200 else min(args.runs, 3)
            rows.append(bench(f"gen_tree.py {n} (overlays/production)",
                              os.path.join(out, "overlays", "production"), args.runs, kustomize_runs))
    print("| tree | objects | identical | lookctl | kubectl kustomize | speed-up | peak RSS lookctl | peak RSS kustomize |")
    print("| --- | ---: | :---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['name']} | {r['objects']} | {'yes' if r['same'] else 'NO'} | {r['lookctl_s']*1000:.1f} ms | "
              f"{r['kustomize_s']*1000:.0f} ms | {r['ratio']:.0f}x | {r['lookctl_rss']:.1f} MiB | {r['kustomize_rss']:.1f} MiB |")


if __name__ == "__main__":
    main()
