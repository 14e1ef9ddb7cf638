#!/usr/bin/env python3
"""Real-world corpus: `lookctl render DIR --no-template` vs `kustomize build DIR`.

Usage:
  bench/corpus/run.py RESULTS_DIR [--repos bench/corpus/repos.txt] [--only SUBSTR ...]
                      [--timeout 20] [--jobs 2] [--second-oracle] [--keep-trees]

Inputs (environment):
  LOOKCTL_KUSTOMIZE  the oracle; default ~/.cache/lookctl/tools/kustomize-v5.8.2/kustomize
                     (what scripts/oracle builds). Its `version` is recorded in the summary.
  LOOKCTL_BIN        lookctl binary; default $CARGO_TARGET_DIR/release/lookctl, else
                     ./target/release/lookctl. Build it first (cargo build --release).
  LOOKCTL_MIRROR     where repository snapshots are; default /work/.mirror. A repository
                     owner/name is read from the bare git directory
                     $LOOKCTL_MIRROR/owner+name/repo (what the `fetch` tool creates), at the
                     commit pinned in repos.txt (the run stops if that commit is missing).
                     Without a snapshot there, the pinned commit is fetched from GitHub into
                     ~/.cache/lookctl/corpus (a clean clone needs nothing else).
  KUBECTL            kubectl for --second-oracle (its embedded kustomize); default kubectl.

Method: each pinned commit is exported (git ls-tree + cat-file) into a temporary directory;
every directory holding kustomization.yaml, kustomization.yml or Kustomization is one case.
For each case the oracle (`kustomize build DIR`) and lookctl (`lookctl render DIR
--no-template --show-secrets`, so Secrets are not masked) run with a timeout (process
group killed on expiry), at most --jobs processes at once, cwd = the exported tree root.
With --second-oracle, `kubectl kustomize DIR` also runs and the TSV records whether its
output has the same bytes as the oracle's.

Classes (first match wins):
  needs-helm     the oracle failed because the tree inflates a helm chart (helmCharts /
                 HelmChartInflationGenerator need --enable-helm and helm); lookctl's
                 status is still recorded in the TSV
  needs-network  the oracle failed because it had to fetch something (http resource,
                 git/ssh base); lookctl's status is still recorded
  oracle-timeout the oracle did not finish within the timeout
  hang           lookctl did not finish within the timeout
  crash          lookctl panicked or died from a signal
  identical      both built, same bytes
  equivalent     both built, same parsed objects in the same order (bytes differ)
  different      both built, objects differ
  refused        the oracle built, lookctl failed (note = lookctl's first error line)
  accepted-bad   the oracle failed, lookctl built (note = the oracle's error)
  both-refuse    both failed

Output in RESULTS_DIR (not committed): results.tsv (one row per case), summary.txt
(counts overall and per repository, top refusal reasons), and cases/<n>/ with
oracle.yaml, lookctl.yaml, diff.txt, stderr files for every case not identical/both-refuse.
"""
import argparse
import collections
import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import yamlsubset  # noqa: E402

KUST_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

# Oracle error text that means "this needed the network" (remote resource or git base).
# Kept narrow: a directory named "remote-..." or a URL quoted in some other error must not
# count.
NETWORK = re.compile(
    r"(Get \"https?://|dial tcp|no such host|Could not resolve host|Could not resolve hostname|"
    r"connection refused|Connection refused|i/o timeout|TLS handshake|network is unreachable|"
    r"failed to run '\S*git (fetch|clone)|git cmd)")
# ... or the helm chart inflator (needs `kustomize build --enable-helm` and a helm binary).
HELM = re.compile(r"(HelmChartInflationGenerator|enable-helm|helmCharts)")


def default_kustomize():
    return os.environ.get("LOOKCTL_KUSTOMIZE") or os.path.expanduser(
        "~/.cache/lookctl/tools/kustomize-v5.8.2/kustomize")


def default_lookctl():
    if os.environ.get("LOOKCTL_BIN"):
        return os.environ["LOOKCTL_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    return os.path.join(target, "release", "lookctl")


def read_repos(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, sha = line.split()[:2]
            out.append((name, sha))
    return out


def clone_pinned(name, sha):
    """The pinned commit of github.com/NAME in a bare cache repository under
    ~/.cache/lookctl/corpus (a shallow fetch of that one commit), for machines without
    the snapshot mirror."""
    cache = os.path.join(os.path.expanduser("~"), ".cache", "lookctl", "corpus",
                         name.replace("/", "+") + ".git")
    have = subprocess.run(["git", "--git-dir", cache, "cat-file", "-e", sha + "^{commit}"],
                          capture_output=True).returncode == 0
    if not have:
        os.makedirs(cache, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", cache], check=True)
        fetched = subprocess.run(["git", "--git-dir", cache, "fetch", "-q", "--depth", "1",
                                  f"https://github.com/{name}.git", sha])
        if fetched.returncode != 0:
            sys.exit(f"{name}: cannot fetch commit {sha} from GitHub, and there is no "
                     f"snapshot in $LOOKCTL_MIRROR")
    return cache


def export(mirror, name, sha, dest):
    gitdir = os.path.join(mirror, name.replace("/", "+"), "repo")
    if not os.path.isdir(gitdir):
        gitdir = clone_pinned(name, sha)
    ok = subprocess.run(["git", "--git-dir", gitdir, "cat-file", "-e", sha + "^{commit}"],
                        capture_output=True)
    if ok.returncode != 0:
        sys.exit(f"{name}: commit {sha} is not in {gitdir}")
    os.makedirs(dest)
    # Not `git archive`: snapshots lack files of 4 MiB and more (and LFS content), and
    # archive stops at the first missing blob. Missing blobs are skipped and counted.
    ls = subprocess.run(["git", "--git-dir", gitdir, "ls-tree", "-r", "-z", sha],
                        capture_output=True, check=True).stdout
    entries = []
    for rec in ls.split(b"\0"):
        if not rec:
            continue
        meta, path = rec.split(b"\t", 1)
        mode, typ, obj = meta.split()
        if typ == b"blob":
            entries.append((mode, obj, path.decode(errors="surrogateescape")))
    cat = subprocess.Popen(["git", "--git-dir", gitdir, "cat-file", "--batch"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    missing = 0
    for mode, obj, path in entries:
        cat.stdin.write(obj + b"\n")
        cat.stdin.flush()
        header = cat.stdout.readline().split()
        if header[-1] == b"missing":
            missing += 1
            continue
        data = cat.stdout.read(int(header[2]))
        cat.stdout.read(1)
        target = os.path.join(dest, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if mode == b"120000":
            os.symlink(data.decode(errors="surrogateescape"), target)
        else:
            with open(target, "wb") as f:
                f.write(data)
            if mode == b"100755":
                os.chmod(target, 0o755)
    cat.stdin.close()
    cat.wait()
    return missing


def find_cases(tree):
    cases = []
    for d, dirs, files in os.walk(tree):
        dirs[:] = sorted(x for x in dirs if x != ".git")
        if any(n in files for n in KUST_NAMES):
            cases.append(os.path.relpath(d, tree))
    return sorted(cases)


def run(cmd, cwd, timeout):
    """Runs cmd in its own process group; returns (status, stdout bytes, stderr bytes,
    seconds) where status is an exit code, 'timeout', or 'signal N'."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, start_new_session=True,
                         env=dict(os.environ, NO_COLOR="1"))
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        return "timeout", out, err, time.monotonic() - start
    rc = p.returncode
    status = f"signal {-rc}" if rc < 0 else rc
    return status, out, err, time.monotonic() - start


def first_error(err):
    lines = [l.strip() for l in err.decode(errors="replace").splitlines() if l.strip()]
    for l in lines:
        if l.lower().startswith(("error", "failed")) or "rror:" in l:
            return l[:300]
    return (lines[0] if lines else "")[:300]


def all_text(err):
    return " ".join(err.decode(errors="replace").split())[:600]


def canon(v):
    if isinstance(v, dict):
        return {k: canon(x) for k, x in v.items()}
    if isinstance(v, list):
        return [canon(x) for x in v]
    return v


def obj_id(d):
    if not isinstance(d, dict):
        return repr(d)[:60]
    g = lambda k: (d.get(("str", k)) or ("str", "?"))[1] if isinstance(d.get(("str", k)), tuple) else "?"
    md = d.get(("str", "metadata")) or {}
    name = md.get(("str", "name")) if isinstance(md, dict) else None
    ns = md.get(("str", "namespace")) if isinstance(md, dict) else None
    return f"{g('kind')}/{ns[1] if ns else ''}/{name[1] if name else ''}"


def first_diff(a, b, path=""):
    """A short description of the first place two parsed values differ."""
    if type(a) != type(b):
        return f"{path or '/'}: {short(a)} vs {short(b)}"
    if isinstance(a, dict):
        for k in a:
            if k not in b:
                return f"{path}/{k[1] if isinstance(k, tuple) else k}: only in oracle"
        for k in b:
            if k not in a:
                return f"{path}/{k[1] if isinstance(k, tuple) else k}: only in lookctl"
        for k in a:
            if a[k] != b[k]:
                return first_diff(a[k], b[k], f"{path}/{k[1] if isinstance(k, tuple) else k}")
    elif isinstance(a, list):
        if len(a) != len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                if x != y:
                    return first_diff(x, y, f"{path}[{i}]")
            return f"{path}: {len(a)} items vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return first_diff(x, y, f"{path}[{i}]")
    elif a != b:
        if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "str":
            x, y = a[1], b[1]
            i = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
            lo = max(0, i - 25)
            return (f"{path}: strings differ at char {i}/{len(x)} vs {len(y)}: "
                    f"{x[lo:i + 25]!r} vs {y[lo:i + 25]!r}")
        return f"{path}: {short(a)} vs {short(b)}"
    return ""


def short(v):
    s = repr(v)
    return s if len(s) < 80 else s[:77] + "..."


def compare(oracle_out, lookctl_out):
    """Returns (class, note) for two successful builds."""
    if oracle_out == lookctl_out:
        return "identical", ""
    try:
        a = yamlsubset.load_all(oracle_out.decode())
    except (yamlsubset.YamlError, IndexError, ValueError, AttributeError) as e:
        return "different", f"oracle output not readable by yamlsubset: {e}"
    try:
        b = yamlsubset.load_all(lookctl_out.decode())
    except (yamlsubset.YamlError, IndexError, ValueError, AttributeError) as e:
        return "different", f"lookctl output not readable: {e}"
    if a == b:
        # same objects: say where the bytes first differ
        ol, ll = oracle_out.decode().splitlines(), lookctl_out.decode().splitlines()
        for i, (x, y) in enumerate(zip(ol, ll)):
            if x != y:
                return "equivalent", f"line {i + 1}: {x.strip()[:70]!r} vs {y.strip()[:70]!r}"
        return "equivalent", f"{len(ol)} lines vs {len(ll)}"
    ids_a, ids_b = [obj_id(x) for x in a], [obj_id(x) for x in b]
    if ids_a != ids_b:
        if sorted(ids_a) == sorted(ids_b):
            i = next(i for i, (x, y) in enumerate(zip(ids_a, ids_b)) if x != y)
            return "different", f"order: object {i} is {ids_a[i]} vs {ids_b[i]}"
        only_a = [x for x in ids_a if x not in ids_b]
        only_b = [x for x in ids_b if x not in ids_a]
        return "different", f"objects: {len(a)} vs {len(b)}; only oracle {only_a[:3]} only lookctl {only_b[:3]}"
    for x, y in zip(a, b):
        if x != y:
            return "different", f"{obj_id(x)} {first_diff(x, y)}"
    return "different", "?"


def classify(o, l):
    """o, l: (status, out, err, secs). Returns (class, note)."""
    ost, lst = o[0], l[0]
    if ost != 0 and ost != "timeout" and HELM.search(o[2].decode(errors="replace")):
        return "needs-helm", first_error(o[2])
    if ost != 0 and ost != "timeout" and NETWORK.search(o[2].decode(errors="replace")):
        return "needs-network", first_error(o[2])
    if ost == "timeout":
        return "oracle-timeout", ""
    if lst == "timeout":
        return "hang", ""
    lerr = l[2].decode(errors="replace")
    if (isinstance(lst, str) and lst.startswith("signal")) or "panicked at" in lerr or lst == 101:
        m = re.search(r"panicked at [^\n]*\n?[^\n]*", lerr)
        return "crash", (m.group(0).replace("\n", " ") if m else str(lst))[:300]
    if ost == 0 and lst == 0:
        return compare(o[1], l[1])
    if ost == 0:
        return "refused", first_error(l[2])
    if lst == 0:
        return "accepted-bad", first_error(o[2])
    return "both-refuse", first_error(l[2])


def work(args, tree, repo, case, idx):
    o = run([args.kustomize, "build", case], tree, args.oracle_timeout)
    l = run([args.lookctl, "render", case, "--no-template", "--show-secrets"], tree, args.timeout)
    k = None
    if args.second_oracle:
        k = run([args.kubectl, "kustomize", case], tree, args.oracle_timeout)
    cls, note = classify(o, l)
    note = note.replace(tree + "/", "").replace(tree, ".")
    if cls not in ("identical", "both-refuse"):
        d = os.path.join(args.results, "cases", str(idx))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "case.txt"), "w") as f:
            f.write(f"{repo}\t{case}\t{cls}\t{note}\n")
        for fname, data in (("oracle.yaml", o[1]), ("lookctl.yaml", l[1]),
                            ("oracle.stderr", o[2]), ("lookctl.stderr", l[2])):
            with open(os.path.join(d, fname), "wb") as f:
                f.write(data)
        if o[0] == 0 and l[0] == 0:
            # diff(1), not difflib: difflib is quadratic on the multi-MB CRD bundles.
            with open(os.path.join(d, "diff.txt"), "wb") as f:
                subprocess.run(["diff", "-u", "--label", "oracle", "--label", "lookctl",
                                os.path.join(d, "oracle.yaml"), os.path.join(d, "lookctl.yaml")],
                               stdout=f, stderr=subprocess.DEVNULL)
    second = ""
    if k is not None:
        if k[0] == 0 and o[0] == 0:
            second = "same" if k[1] == o[1] else "differs"
        elif k[0] != 0 and o[0] != 0:
            second = "both-fail"
        else:
            second = "kubectl-ok" if k[0] == 0 else ("kubectl-timeout" if k[0] == "timeout" else "kubectl-fails")
    return dict(idx=idx, repo=repo, case=case, cls=cls, note=note.replace("\t", " "),
                ost=o[0], lst=l[0], osec=o[3], lsec=l[3], second=second,
                lerr=first_error(l[2]).replace(tree + "/", "") if l[0] != 0 else "")


def summarize(rows, args, kversion, started):
    counts = collections.Counter(r["cls"] for r in rows)
    order = ["identical", "equivalent", "different", "refused", "accepted-bad", "both-refuse",
             "hang", "crash", "needs-helm", "needs-network", "oracle-timeout"]
    out = []
    out.append(f"oracle: {args.kustomize} ({kversion})")
    out.append(f"lookctl: {args.lookctl}")
    out.append(f"timeout lookctl {args.timeout}s, oracle {args.oracle_timeout}s, jobs {args.jobs}"
               + (f", wall {time.time() - started:.0f}s" if started else ""))
    out.append(f"repositories: {len(set(r['repo'] for r in rows))}, kustomization dirs: {len(rows)}")
    out.append("")
    for c in order:
        out.append(f"{c:15} {counts.get(c, 0):5}")
    built = sum(counts.get(c, 0) for c in ("identical", "equivalent", "different", "refused"))
    if built:
        out.append("")
        out.append(f"of {built} dirs the oracle builds: identical {counts.get('identical', 0)} "
                   f"({100 * counts.get('identical', 0) / built:.1f}%), refused "
                   f"{counts.get('refused', 0)}, wrong output (equivalent+different) "
                   f"{counts.get('equivalent', 0) + counts.get('different', 0)}")
    if args.second_oracle:
        sc = collections.Counter(r["second"] for r in rows)
        out.append("")
        out.append("kubectl kustomize (v5.5.0) vs oracle: " +
                   ", ".join(f"{k or 'n/a'} {v}" for k, v in sc.most_common()))
    out.append("")
    net = [r for r in rows if r["cls"] in ("needs-network", "needs-helm")]
    if net and "lst" in net[0]:
        ok = sum(1 for r in net if str(r["lst"]) == "0")
        out.append(f"needs-network/needs-helm dirs that lookctl builds anyway: {ok} of {len(net)}")
    out.append("")
    out.append("per repository (identical/equivalent/different/refused/accepted-bad/both-refuse/hang/crash/needs-network+helm):")
    for repo in sorted(set(r["repo"] for r in rows)):
        c = collections.Counter(r["cls"] for r in rows if r["repo"] == repo)
        c["needs-network"] += c.get("needs-helm", 0)
        out.append(f"  {repo:50} " + "/".join(str(c.get(x, 0)) for x in
                   ["identical", "equivalent", "different", "refused", "accepted-bad",
                    "both-refuse", "hang", "crash", "needs-network"]))
    out.append("")
    out.append("top refusal reasons (class refused, lookctl's first error line, paths elided):")
    reasons = collections.Counter(normalize_reason(r["note"]) for r in rows if r["cls"] == "refused")
    for reason, n in reasons.most_common(40):
        out.append(f"  {n:4}  {reason}")
    return "\n".join(out) + "\n"


def normalize_reason(s):
    s = re.sub(r"\"[^\"]*\"", '"…"', s)
    s = re.sub(r"'[^']*'", "'…'", s)
    s = re.sub(r"[\w.@+-]*(/[\w.@+-]+)+", "<path>", s)
    s = re.sub(r"\b[\w.-]+\.ya?ml\b", "<file>", s)
    return s[:160]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("--repos", default=os.path.join(HERE, "repos.txt"))
    ap.add_argument("--only", action="append", default=[],
                    help="only repositories / case paths containing this text")
    ap.add_argument("--timeout", type=float, default=20, help="seconds, for lookctl")
    ap.add_argument("--oracle-timeout", type=float, default=60,
                    help="seconds, for kustomize (slow on big trees on a loaded machine)")
    ap.add_argument("--resummarize", action="store_true",
                    help="only rewrite summary.txt from RESULTS_DIR/results.tsv")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--second-oracle", action="store_true")
    ap.add_argument("--keep-trees", action="store_true")
    args = ap.parse_args()
    args.jobs = max(1, min(args.jobs, 2))
    args.kustomize = default_kustomize()
    args.lookctl = default_lookctl()
    args.kubectl = os.environ.get("KUBECTL", "kubectl")
    args.mirror = os.environ.get("LOOKCTL_MIRROR", "/work/.mirror")
    for p in (args.kustomize, args.lookctl):
        if not os.access(p, os.X_OK):
            sys.exit(f"not executable: {p}")
    if args.resummarize:
        rows = []
        with open(os.path.join(args.results, "results.tsv")) as f:
            head = f.readline().rstrip("\n").split("\t")
            for line in f:
                v = dict(zip(head, line.rstrip("\n").split("\t")))
                rows.append(dict(repo=v["repo"], case=v["dir"], cls=v["class"], note=v["note"],
                                 second=v["kubectl_vs_oracle"], lst=v["lookctl_rc"]))
        args.second_oracle = any(r["second"] for r in rows)
        kversion = subprocess.run([args.kustomize, "version"], capture_output=True,
                                  text=True).stdout.strip()
        summary = summarize(rows, args, kversion, None)
        with open(os.path.join(args.results, "summary.txt"), "w") as f:
            f.write(summary)
        print(summary)
        return
    kversion = subprocess.run([args.kustomize, "version"], capture_output=True,
                              text=True).stdout.strip()
    os.makedirs(args.results, exist_ok=True)
    shutil.rmtree(os.path.join(args.results, "cases"), ignore_errors=True)
    started = time.time()
    work_root = tempfile.mkdtemp(prefix="lookctl-corpus-")
    rows = []
    idx = 0
    tsv = open(os.path.join(args.results, "results.tsv"), "w")
    tsv.write("n\trepo\tdir\tclass\toracle_rc\tlookctl_rc\toracle_s\tlookctl_s\tkubectl_vs_oracle\tnote\n")
    try:
        for name, sha in read_repos(args.repos):
            tree = os.path.join(work_root, name.replace("/", "+"))
            missing = export(args.mirror, name, sha, tree)
            cases = [c for c in find_cases(tree)
                     if not args.only or any(s in f"{name}/{c}" for s in args.only)]
            if not cases:
                shutil.rmtree(tree, ignore_errors=True)
                continue
            print(f"{name}@{sha[:12]}: {len(cases)} dirs"
                  + (f" ({missing} files absent from the snapshot)" if missing else ""),
                  file=sys.stderr, flush=True)
            with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
                futs = []
                for c in cases:
                    idx += 1
                    futs.append(ex.submit(work, args, tree, name, c, idx))
                for fut in futs:
                    r = fut.result()
                    rows.append(r)
                    tsv.write("\t".join(str(x) for x in (
                        r["idx"], r["repo"], r["case"], r["cls"], r["ost"], r["lst"],
                        f"{r['osec']:.2f}", f"{r['lsec']:.2f}", r["second"], r["note"])) + "\n")
                    tsv.flush()
                    if r["cls"] not in ("identical", "both-refuse", "needs-network"):
                        print(f"  {r['cls']:13} {r['case']}  {r['note'][:120]}", file=sys.stderr,
                              flush=True)
            if not args.keep_trees:
                shutil.rmtree(tree, ignore_errors=True)
    finally:
        tsv.close()
        if not args.keep_trees:
            shutil.rmtree(work_root, ignore_errors=True)
        else:
            print(f"trees kept in {work_root}", file=sys.stderr)
    summary = summarize(rows, args, kversion, started)
    with open(os.path.join(args.results, "summary.txt"), "w") as f:
        f.write(summary)
    print(summary)


if __name__ == "__main__":
    main()
