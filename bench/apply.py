#!/usr/bin/env python3
"""Apply benchmark: `lookctl deploy --no-wait` vs `kubectl apply --server-side -f
rendered.yaml` of the same rendered objects, each against its own fresh fake API server
(testkit's `fake-apiserver`) with 10 ms latency injected into every request. Prints a
Markdown table for BENCHMARKS.md.

Usage: bench/apply.py [--runs N] [--apps 167] [--latency 10ms] [--no-build] [--no-count]
                      [--lookctl-arg=--concurrency=32 ...]

Input: tests/fixtures/kustomize/gen_tree.py OUT 167, overlay `staging` (167 x Deployment + Service
+ ConfigMap = 501 objects in namespace `staging`), plus a Namespace object added to the
overlay (the fake server, like a real one, refuses objects in a missing namespace), so
502 objects. A temp project has a deploy.toml whose target `bench` points at that overlay
and the fake server's kubeconfig context. kubectl gets exactly what lookctl deploys:
`lookctl render --target bench --sha S` written to rendered.yaml.

Per round (rounds alternate which tool goes first, so machine load hits both):
  1. two fresh servers; `lookctl deploy` against one, `kubectl apply --server-side`
     against the other (first deploy: everything is created);
  2. the same command again against the same server (no-change redeploy);
  3. the end state of both servers is compared: objects per kind, and every object's
     content with server-assigned metadata and lookctl's own bookkeeping removed.
kubectl's discovery cache lives in a temp --cache-dir: empty for the first apply (a new
server port), warm for the redeploy, as on a laptop.

Once (untimed), both commands run through a counting HTTP proxy to report how many
requests each sends, by method.
"""
import argparse, collections, http.client, http.server, json, os, re, shutil, signal
import statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(ROOT, "tests", "fixtures", "kustomize", "gen_tree.py")
TARGET = os.environ.get("CARGO_TARGET_DIR") or (
    os.path.join(ROOT, "target"))
LOOKCTL = os.path.join(TARGET, "release", "lookctl")
FAKE = os.path.join(TARGET, "release", "fake-apiserver")
SHA = "0123456789abcdef0123456789abcdef01234567"
CONTEXT = "fake"
NS = "staging"


class Server:
    """A fake-apiserver process; the kubeconfig it writes names its port."""

    def __init__(self, tmp, name, latency):
        self.kubeconfig = os.path.join(tmp, f"kubeconfig-{name}")
        self.proc = subprocess.Popen(
            [FAKE, "--addr", "127.0.0.1:0", "--kubeconfig", self.kubeconfig,
             "--context", CONTEXT, "--latency", latency],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (\S+)", line)
        if not m:
            sys.exit(f"fake-apiserver did not start: {line}{self.proc.stderr.read()}")
        self.url = m.group(1)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()


def timed(cmd, cwd=None):
    start = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return elapsed, p.stdout + p.stderr


def make_project(tmp, apps):
    proj = os.path.join(tmp, "project")
    subprocess.run([sys.executable, GEN, proj, str(apps)], check=True)
    ov = os.path.join(proj, "overlays", NS)
    with open(os.path.join(ov, "namespace.yaml"), "w") as f:
        f.write(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n")
    k = os.path.join(ov, "kustomization.yaml")
    text = open(k).read().replace("resources:\n- ../../base\n", "resources:\n- ../../base\n- namespace.yaml\n", 1)
    open(k, "w").write(text)
    with open(os.path.join(proj, "deploy.toml"), "w") as f:
        f.write(f'[project]\nname = "bench"\n\n[[target]]\nname = "bench"\nbranches = ["bench"]\n'
                f'overlay = "overlays/{NS}"\ncontext = "{CONTEXT}"\n')
    env_clean(proj)
    return proj


def env_clean(_):
    for v in ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "COMMIT_SHA", "BRANCH_NAME", "TAG_NAME"):
        os.environ.pop(v, None)


LOOKCTL_EXTRA = []  # --lookctl-arg values


def lookctl_cmd(kubeconfig):
    return [LOOKCTL, "deploy", "--target", "bench", "--sha", SHA, "--no-wait", "--yes",
            "--kubeconfig", kubeconfig] + LOOKCTL_EXTRA


def kubectl_cmd(kubeconfig, rendered, cache):
    return ["kubectl", "--kubeconfig", kubeconfig, "--context", CONTEXT, "--cache-dir", cache,
            "apply", "--server-side", "-f", rendered]


# --- end state ------------------------------------------------------------------------

KINDS = "namespaces,configmaps,services,deployments.apps,leases.coordination.k8s.io"


def live_objects(kubeconfig, cache):
    p = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "--cache-dir", cache, "get", KINDS,
                        "-A", "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, check=True)
    return json.loads(p.stdout)["items"]


def normalize(o):
    """Drops what differs by construction: server-assigned metadata, field managers, the
    allocated cluster IPs, status timestamps, and lookctl's own labels/annotations
    (`lookctl.dev/*`, `app.kubernetes.io/managed-by: lookctl`)."""
    o = json.loads(json.dumps(o))
    md = o.get("metadata", {})
    for f in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"):
        md.pop(f, None)
    for f in ("labels", "annotations"):
        if f in md:
            md[f] = {k: v for k, v in md[f].items() if not k.startswith("lookctl.dev/")
                     and not (k == "app.kubernetes.io/managed-by" and v == "lookctl")}
            if not md[f]:
                del md[f]
    for c in o.get("status", {}).get("conditions", []) or []:
        c.pop("lastTransitionTime", None); c.pop("lastUpdateTime", None)
    spec = o.get("spec", {})
    if o.get("kind") == "Service":
        spec.pop("clusterIP", None); spec.pop("clusterIPs", None)
    return o


def field_diff(a, b, path=""):
    """Paths where a (after lookctl) and b (after kubectl) differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in b:
                out.append(f"{path}.{k} only after lookctl ({a[k]!r})")
            elif k not in a:
                out.append(f"{path}.{k} only after kubectl ({b[k]!r})")
            else:
                out += field_diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in field_diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def end_state(lk_kubeconfig, kc_kubeconfig, cache):
    """Returns (counts per kind for lookctl, for kubectl, list of differences)."""
    lk, kc = live_objects(lk_kubeconfig, cache), live_objects(kc_kubeconfig, cache)
    count = lambda items: collections.Counter(o["kind"] for o in items)
    key = lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
    bookkeeping = lambda o: o["metadata"]["name"].startswith("lookctl-")
    a = {key(o): normalize(o) for o in lk if not bookkeeping(o)}
    b = {key(o): normalize(o) for o in kc}
    diffs = [f"only after lookctl: {k}" for k in sorted(set(a) - set(b))]
    diffs += [f"only after kubectl: {k}" for k in sorted(set(b) - set(a))]
    for k in sorted(set(a) & set(b)):
        d = field_diff(a[k], b[k])
        if d:
            diffs.append(f"content differs: {k}: {'; '.join(d[:4])}")
    return count(lk), count(kc), diffs, [key(o) for o in lk if bookkeeping(o)]


# --- request counting proxy (untimed run only) --------------------------------------------

def start_proxy(upstream_url, counter):
    host, port = upstream_url.split("//", 1)[1].rstrip("/").split(":")
    local = threading.local()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def forward(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            counter[self.command] += 1
            path = self.path.split("?")[0]
            counter["paths"].append(f"{self.command} {path}")
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection(host, int(port))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            local.conn.request(self.command, self.path, body=body, headers=headers)
            r = local.conn.getresponse()
            data = r.read()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def count_requests(tmp, proj, rendered, latency):
    """Counts requests per method for a first deploy and a redeploy of each tool."""
    out = {}
    for tool in ("lookctl", "kubectl"):
        server = Server(tmp, f"count-{tool}", latency)
        counter = collections.Counter(); counter["paths"] = []
        proxy, url = start_proxy(server.url, counter)
        kc = os.path.join(tmp, f"kubeconfig-count-{tool}-proxy")
        open(kc, "w").write(open(server.kubeconfig).read().replace(server.url.rstrip("/"), url))
        cache = os.path.join(tmp, f"cache-count-{tool}")
        for phase in ("first", "redeploy"):
            counter.clear(); counter["paths"] = []
            cmd = lookctl_cmd(kc) if tool == "lookctl" else kubectl_cmd(kc, rendered, cache)
            timed(cmd, cwd=proj)
            paths = collections.Counter(re.sub(r"/namespaces/[^/]+/([^/]+)/[^/]+$", r"/namespaces/NS/\1/NAME", p)
                                        for p in counter["paths"])
            out[(tool, phase)] = ({k: v for k, v in counter.items() if k != "paths"}, paths)
        proxy.shutdown(); server.stop()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--apps", type=int, default=167)
    ap.add_argument("--latency", default="10ms")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--no-count", action="store_true", help="skip the request-counting run")
    ap.add_argument("--lookctl-arg", action="append", default=[],
                    help="extra argument for lookctl deploy, e.g. --lookctl-arg=--concurrency=32")
    args = ap.parse_args()
    LOOKCTL_EXTRA.extend(args.lookctl_arg)
    if not args.no_build:
        env = {**os.environ, "CARGO_TARGET_DIR": TARGET}
        subprocess.run(["cargo", "build", "--release", "-q", "--bin", "lookctl"], cwd=ROOT, check=True, env=env)
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "testkit", "--bin", "fake-apiserver"],
                       cwd=ROOT, check=True, env=env)
    tmp = tempfile.mkdtemp(prefix="lookctl-bench-apply-")
    try:
        proj = make_project(tmp, args.apps)
        rendered = os.path.join(tmp, "rendered.yaml")
        _, _ = timed([LOOKCTL, "render", "--target", "bench", "--sha", SHA, "-o", rendered], cwd=proj)
        import yaml
        docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
        print(f"  {len(docs)} objects: {dict(collections.Counter(d['kind'] for d in docs))}", file=sys.stderr)

        times = collections.defaultdict(list)
        for i in range(args.runs):
            lk_srv, kc_srv = Server(tmp, f"lk{i}", args.latency), Server(tmp, f"kc{i}", args.latency)
            cache = os.path.join(tmp, f"cache{i}")
            order = ["lookctl", "kubectl"] if i % 2 == 0 else ["kubectl", "lookctl"]
            try:
                for phase in ("first", "redeploy"):
                    for tool in order:
                        cmd = (lookctl_cmd(lk_srv.kubeconfig) if tool == "lookctl"
                               else kubectl_cmd(kc_srv.kubeconfig, rendered, cache))
                        t, out = timed(cmd, cwd=proj)
                        times[(tool, phase)].append(t)
                        if tool == "kubectl":
                            verbs = collections.Counter(l.rsplit(" ", 1)[-1] for l in out.splitlines() if l.strip())
                        else:
                            verbs = out.strip().splitlines()[-1] if out.strip() else ""
                        print(f"  round {i} {phase} {tool}: {t:.2f} s  ({dict(verbs) if tool == 'kubectl' else verbs})",
                              file=sys.stderr, flush=True)
                lk_count, kc_count, diffs, extra = end_state(lk_srv.kubeconfig, kc_srv.kubeconfig, cache)
                same = not diffs
                print(f"  round {i} end state: lookctl {dict(lk_count)} / kubectl {dict(kc_count)}; "
                      f"lookctl bookkeeping {extra}; "
                      f"{'same objects and content' if same else f'{len(diffs)} DIFFERENCES'}",
                      file=sys.stderr, flush=True)
                for d in diffs[:20]:
                    print(f"    {d}", file=sys.stderr)
            finally:
                lk_srv.stop(); kc_srv.stop()

        counts = {} if args.no_count else count_requests(tmp, proj, rendered, args.latency)

        print(f"\n{len(docs)} objects, --latency {args.latency}, {args.runs} rounds, "
              f"lookctl args {LOOKCTL_EXTRA or 'default'}; median (min..max)\n")
        print("| scenario | lookctl deploy --no-wait | kubectl apply --server-side | speed-up | requests lookctl | requests kubectl |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for phase, label in (("first", "first deploy (all created)"), ("redeploy", "no-change redeploy")):
            if not times:
                break
            lk, kc = times[("lookctl", phase)], times[("kubectl", phase)]
            req = lambda tool: (" + ".join(f"{v} {k}" for k, v in sorted(counts[(tool, phase)][0].items()))
                                if counts else "n/a")
            print(f"| {label} | {statistics.median(lk):.2f} s ({min(lk):.2f}..{max(lk):.2f}) | "
                  f"{statistics.median(kc):.2f} s ({min(kc):.2f}..{max(kc):.2f}) | "
                  f"{statistics.median(kc)/statistics.median(lk):.1f}x | {req('lookctl')} | {req('kubectl')} |")
        if counts:
            for (tool, phase), (_, paths) in counts.items():
                print(f"\n{tool} {phase}: requests by path", file=sys.stderr)
                for p, n in paths.most_common(12):
                    print(f"  {n:5d}  {p}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
