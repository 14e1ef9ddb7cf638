#!/usr/bin/env python3
"""Apply benchmark on the REAL control plane (scripts/real-cluster: etcd, kube-apiserver,
controller-manager, scheduler, kwok) with an injected round-trip time, side by side in one
run: `lookctl deploy --no-wait`, `kubectl apply --server-side` and `kapp deploy --wait=false`
(kluctl: see BENCHMARKS.md, the Go module proxy refuses it). Prints a Markdown table.

Usage: bench/apply_real.py [--objects 500,2000] [--rtt 10ms,50ms] [--configs 500@10ms,...]
                           [--tools lookctl,kubectl,kapp] [--scenarios first,...] [--no-build]
A tool `lookctl+ARG` is lookctl with an extra deploy argument, e.g.
`--tools lookctl,lookctl+--concurrency=32,kubectl,kapp`.

The round trip: every tool talks to kube-apiserver through a TCP proxy on 127.0.0.1 that
holds each chunk, in each direction, for half the round-trip time (TLS passes through it
untouched; the handshake pays the delay too, as over a real network). Nothing but
loopback is used.

Input: tests/fixtures/kustomize/gen_tree.py with N/3 apps, overlay `staging` (Deployment +
Service + ConfigMap per app), rendered once by `lookctl render`; each tool gets the same
objects in a namespace of its own (plus that Namespace object), so tools never share an
object. Scenarios, per size and round-trip time, tools in alternating order:
  first      everything created;
  no-change  the same objects again;
  one-change one Deployment's annotation changed.
With --scenarios, also (after `first`, changing nothing in the cluster):
  diff-no-change   the diff of the deployed objects: `lookctl diff`, `kubectl diff
                   --server-side`, `kapp deploy --diff-run`;
  diff-one-change  the diff with one Deployment's annotation changed.
kubectl and kapp get the rendered file; lookctl a project whose overlay is that file.

Requests: kube-apiserver's own `apiserver_request_total` (read directly, not through the
proxy) before and after each command, by verb: writes (POST, PUT, PATCH, APPLY = server-side
apply, DELETE) of namespaces, configmaps, services, deployments and leases (without lease
PUTs, the control plane's leader-election and node-heartbeat traffic), and reads (GET, LIST)
of every resource. The controllers add a little to both (the kube-root-ca.crt ConfigMap
POSTed in every new namespace; reads by kwok): the idle rate is printed.
"""
import argparse, asyncio, collections, os, re, shutil, statistics, subprocess, sys, tempfile
import threading, time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(ROOT, "tests", "fixtures", "kustomize", "gen_tree.py")
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
LOOKCTL = os.path.join(TARGET, "release", "lookctl")
SHA = "0123456789abcdef0123456789abcdef01234567"
WRITE_VERBS = ("POST", "PUT", "PATCH", "APPLY", "DELETE")
WRITE_RESOURCES = ("namespaces", "configmaps", "services", "deployments", "leases")


# --- the delaying proxy -------------------------------------------------------------------

class DelayProxy:
    """TCP proxy on 127.0.0.1: each chunk is forwarded half a round trip after it arrived."""

    def __init__(self, upstream, rtt):
        self.host, self.port = upstream
        self.half = rtt / 2
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.listen_port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _pump(self, reader, writer):
        queue = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def send():
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    try:
                        writer.close()
                    except Exception:
                        pass
                    return
                writer.write(data)
                try:
                    await writer.drain()
                except Exception:
                    return

        sender = asyncio.create_task(send())
        while True:
            try:
                data = await reader.read(1 << 16)
            except Exception:
                data = b""
            queue.put_nowait((loop.time() + self.half, data))
            if not data:
                break
        await sender

    async def _handle(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))


# --- helpers -------------------------------------------------------------------------------

def run(cmd, cwd=None, check=True, env=None):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if check and p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def timed(cmd, cwd=None, ok=(0,)):
    start = time.perf_counter()
    p = run(cmd, cwd=cwd, check=False)
    if p.returncode not in ok:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return time.perf_counter() - start, p.stdout + p.stderr


class Metrics:
    def __init__(self, kubectl, kubeconfig):
        self.cmd = [kubectl, "--kubeconfig", kubeconfig, "get", "--raw", "/metrics"]

    def read(self):
        text = run(self.cmd).stdout
        out = collections.Counter()
        for line in text.splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels, value = line[len("apiserver_request_total{"):].rsplit("} ", 1)
            lab = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            out[(lab.get("verb", ""), lab.get("resource", ""), lab.get("subresource", ""))] += float(value)
        return out

    @staticmethod
    def delta(before, after):
        writes, reads = collections.Counter(), collections.Counter()
        for (verb, resource, sub), n in after.items():
            d = n - before.get((verb, resource, sub), 0)
            if d <= 0:
                continue
            if verb in WRITE_VERBS and not sub and resource in WRITE_RESOURCES:
                if not (resource == "leases" and verb == "PUT"):
                    writes[verb] += d
            elif verb in ("GET", "LIST"):
                reads[verb] += d
        return writes, reads


def fmt(counter):
    return " ".join(f"{k} {int(v)}" for k, v in sorted(counter.items())) or "0"


# --- inputs ------------------------------------------------------------------------------

def render_objects(tmp, objects):
    apps = max(1, objects // 3)
    proj = os.path.join(tmp, "gen")
    run([sys.executable, GEN, proj, str(apps)])
    with open(os.path.join(proj, "deploy.toml"), "w") as f:
        f.write('[project]\nname = "bench"\n\n[[target]]\nname = "bench"\nbranches = ["bench"]\n'
                'overlay = "overlays/staging"\ncontext = "admin"\n')
    out = os.path.join(tmp, "rendered.yaml")
    run([LOOKCTL, "render", "--target", "bench", "--sha", SHA, "-o", out], cwd=proj)
    with open(out) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    shutil.rmtree(proj)
    return docs


def in_namespace(docs, ns):
    out = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}]
    for d in docs:
        d = yaml.safe_load(yaml.safe_dump(d))
        if d["kind"] != "Namespace":
            d["metadata"]["namespace"] = ns
            out.append(d)
    return out


def one_change(docs):
    docs = [yaml.safe_load(yaml.safe_dump(d)) for d in docs]
    for d in docs:
        if d["kind"] == "Deployment":
            d["metadata"].setdefault("annotations", {})["bench/change"] = "1"
            return docs
    sys.exit("no Deployment to change")


class Tool:
    def __init__(self, spec, tmp, ns, kubeconfig, binaries):
        self.name, _, extra = spec.partition("+")
        self.extra = [extra] if extra else []
        self.ns, self.kubeconfig, self.bin = ns, kubeconfig, binaries
        self.dir = os.path.join(tmp, ns)
        os.makedirs(os.path.join(self.dir, "overlay"))
        self.file = os.path.join(self.dir, "overlay", "objects.yaml")
        self.cache = os.path.join(self.dir, "kube-cache")
        with open(os.path.join(self.dir, "deploy.toml"), "w") as f:
            f.write('[project]\nname = "bench"\n\n[[target]]\nname = "bench"\nbranches = ["bench"]\n'
                    'overlay = "overlay"\ncontext = "admin"\n')
        with open(os.path.join(self.dir, "overlay", "kustomization.yaml"), "w") as f:
            f.write("resources:\n- objects.yaml\n")

    def set(self, docs):
        with open(self.file, "w") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False)

    def diff_command(self):
        """The tool's diff of its file against the cluster, and the exit codes that mean
        success (kubectl and lookctl exit 1 when there are differences)."""
        if self.name == "lookctl":
            return [self.bin["lookctl"], "diff", "--target", "bench", "--sha", SHA,
                    "--kubeconfig", self.kubeconfig] + self.extra, (0, 1)
        if self.name == "kubectl":
            return [self.bin["kubectl"], "--kubeconfig", self.kubeconfig, "--context", "admin",
                    "--cache-dir", self.cache, "diff", "--server-side", "-f", self.file], (0, 1)
        if self.name == "kapp":
            return [self.bin["kapp"], "deploy", "-a", f"bench-{self.ns}", "-n", "default", "-f",
                    self.file, "-y", "--diff-run", "--kubeconfig", self.kubeconfig,
                    "--kubeconfig-context", "admin", "--tty=false"], (0,)
        raise ValueError(self.name)

    def command(self):
        if self.name == "lookctl":
            return [self.bin["lookctl"], "deploy", "--target", "bench", "--sha", SHA, "--no-wait",
                    "--yes", "--kubeconfig", self.kubeconfig] + self.extra
        if self.name == "kubectl":
            return [self.bin["kubectl"], "--kubeconfig", self.kubeconfig, "--context", "admin",
                    "--cache-dir", self.cache, "apply", "--server-side", "-f", self.file]
        if self.name == "kapp":
            return [self.bin["kapp"], "deploy", "-a", f"bench-{self.ns}", "-n", "default", "-f",
                    self.file, "-y", "--wait=false", "--kubeconfig", self.kubeconfig,
                    "--kubeconfig-context", "admin", "--tty=false"]
        raise ValueError(self.name)

    def summary(self, out):
        lines = [l for l in out.strip().splitlines() if l.strip()]
        if self.name == "kubectl":
            return dict(collections.Counter(l.rsplit(" ", 1)[-1] for l in lines))
        return lines[-1][:160] if lines else ""


def wait_gone(kubectl, kubeconfig, namespaces, timeout=120):
    deadline = time.time() + timeout
    for ns in namespaces:
        run([kubectl, "--kubeconfig", kubeconfig, "delete", "namespace", ns, "--wait=false",
             "--ignore-not-found"], check=False)
    while time.time() < deadline:
        p = run([kubectl, "--kubeconfig", kubeconfig, "get", "namespaces", "-o", "name"], check=False)
        if not any(f"namespace/{ns}" in p.stdout.split() for ns in namespaces):
            return
        time.sleep(2)
    print(f"  namespaces still terminating after {timeout}s: {namespaces}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", default="500,2000")
    ap.add_argument("--rtt", default="10ms,50ms")
    ap.add_argument("--tools", default="lookctl,kubectl,kapp")
    ap.add_argument("--configs", help="OBJECTS@RTT pairs instead of --objects x --rtt, e.g. 500@10ms,2000@10ms")
    ap.add_argument("--scenarios", default="first,no-change,one-change",
                    help="in this order; diff-no-change and diff-one-change after first")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    for v in ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "COMMIT_SHA", "BRANCH_NAME", "TAG_NAME", "KUBECONFIG"):
        os.environ.pop(v, None)
    lock = ["nice", "-n", "10", "flock", os.environ.get("LOOKCTL_HEAVY_LOCK", "/tmp/lookctl-heavy.lock")]
    if not args.no_build:
        run(lock + ["cargo", "build", "--release", "-q", "--bin", "lookctl"], cwd=ROOT,
            env={**os.environ, "CARGO_TARGET_DIR": TARGET})
    tools = args.tools.split(",")
    binaries = {"lookctl": LOOKCTL}
    if any(t.startswith("kapp") for t in tools):
        for line in run([os.path.join(ROOT, "scripts", "peer-tools-build")]).stdout.splitlines():
            name, path = line.split(" ", 1)
            binaries[name] = path

    tmp = tempfile.mkdtemp(prefix="lookctl-bench-real-")
    cluster = os.path.join(tmp, "cluster")
    began = time.time()
    run(["bash", os.path.join(ROOT, "scripts", "real-cluster"), "up", cluster])
    print(f"  control plane up in {time.time() - began:.0f} s", file=sys.stderr)
    try:
        env = dict(l.split("=", 1) for l in open(os.path.join(cluster, "env")).read().splitlines() if "=" in l)
        admin_kubeconfig, server = env["KUBECONFIG"], env["SERVER"].rstrip("/")
        kubectl = env["KUBECTL"]
        binaries["kubectl"] = kubectl
        host, port = server.split("//", 1)[1].rsplit(":", 1)
        metrics = Metrics(kubectl, admin_kubeconfig)
        a = metrics.read(); time.sleep(5); b = metrics.read()
        idle_w, idle_r = Metrics.delta(a, b)
        print(f"  idle control plane, 5 s: writes {fmt(idle_w)}; reads {fmt(idle_r)}", file=sys.stderr)

        rows = []
        config_no = 0
        configs = [(int(o), r) for o in args.objects.split(",") for r in args.rtt.split(",")]
        if args.configs:
            configs = [(int(c.split("@")[0]), c.split("@")[1]) for c in args.configs.split(",")]
        rendered = {}
        for objects, rtt_text in configs:
            if objects not in rendered:
                rendered[objects] = render_objects(tmp, objects)
            docs = rendered[objects]
            rtt = float(rtt_text.rstrip("ms")) / 1000
            proxy = DelayProxy((host, int(port)), rtt)
            kubeconfig = os.path.join(tmp, f"kubeconfig-{objects}-{rtt_text}")
            text = open(admin_kubeconfig).read().replace(server, f"https://127.0.0.1:{proxy.listen_port}")
            open(kubeconfig, "w").write(text)
            ts = {}
            for i, tool in enumerate(tools):
                ns = f"b{objects}-{rtt_text}-t{i}"
                t = Tool(tool, tmp, ns, kubeconfig, binaries)
                t.docs = in_namespace(docs, ns)
                ts[tool] = t
            n = len(next(iter(ts.values())).docs)
            for phase in args.scenarios.split(","):
                order = tools[config_no % len(tools):] + tools[:config_no % len(tools)]
                config_no += 1
                for tool in order:
                    t = ts[tool]
                    t.set(one_change(t.docs) if phase.endswith("one-change") else t.docs)
                    cmd, ok = t.diff_command() if phase.startswith("diff") else (t.command(), (0,))
                    before = metrics.read()
                    secs, out = timed(cmd, cwd=t.dir, ok=ok)
                    writes, reads = Metrics.delta(before, metrics.read())
                    print(f"  {n} objects, rtt {rtt_text}, {phase}, {tool}: {secs:.2f} s; "
                          f"writes {fmt(writes)}; reads {fmt(reads)}; {t.summary(out)}",
                          file=sys.stderr, flush=True)
                    rows.append((n, rtt_text, phase, tool, secs, writes, reads))
            wait_gone(kubectl, admin_kubeconfig, [t.ns for t in ts.values()])
            proxy.loop.call_soon_threadsafe(proxy.loop.stop)

        print(f"\nreal control plane (kube-apiserver {os.path.basename(os.path.dirname(kubectl))}), "
              f"delaying proxy on 127.0.0.1; one run\n")
        print("| objects | RTT | scenario | " + " | ".join(f"{t} s" for t in tools)
              + " | kubectl / lookctl | " + " | ".join(f"{t} writes; reads" for t in tools) + " |")
        print("| ---: | ---: | --- | " + " | ".join("---:" for _ in tools) + " | ---: | "
              + " | ".join("---" for _ in tools) + " |")
        keyed = {(r[0], r[1], r[2], r[3]): r for r in rows}
        for (n, rtt_text, phase) in dict.fromkeys((r[0], r[1], r[2]) for r in rows):
            cells = [keyed.get((n, rtt_text, phase, t)) for t in tools]
            ratio = ""
            if keyed.get((n, rtt_text, phase, "kubectl")) and keyed.get((n, rtt_text, phase, "lookctl")):
                ratio = f"{keyed[(n, rtt_text, phase, 'kubectl')][4] / keyed[(n, rtt_text, phase, 'lookctl')][4]:.1f}x"
            print(f"| {n} | {rtt_text} | {phase} | " + " | ".join(f"{c[4]:.2f}" for c in cells)
                  + f" | {ratio} | " + " | ".join(f"{fmt(c[5])}; {fmt(c[6])}" for c in cells) + " |")
    finally:
        run(["bash", os.path.join(ROOT, "scripts", "real-cluster"), "down", cluster, "--purge"], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
