#!/usr/bin/env python3
"""review serve benchmark: what `lookctl review serve` costs on the warm path (a request to
a running environment) against the same request sent straight to the environment and
through a plain reverse proxy (nginx), its throughput per core, and its cold-start
overhead beyond the bring-up itself.

Usage: bench/serve.py [--requests 4000] [--duration 10] [--cold 5] [--no-build]
                      [--profile release|debug]
(FAKE_APISERVER=path picks the fake-apiserver binary; default: the target dir's.)
Needs nginx and wrk (Debian: `apt-get install nginx wrk`; measured with nginx 1.22.1 and
wrk 4.1.0 of Debian 12) and taskset. Run it under the machine's heavy-work lock.

Setup: testkit's `fake-apiserver` on 127.0.0.1; the environment's app is an nginx
(`return 200 "ok"`, one worker); a project whose review overlay renders a selector-less
Service `web` whose Endpoints point at that app; `lookctl review up --sha S
--skip-image-check` deploys it; `lookctl review serve --listen 127.0.0.1:0` with
`route = "endpoints"` proxies `<sha>.review.bench` to it. The plain reverse proxy is a
second nginx (one worker, keep-alive to the app, `proxy_http_version 1.1`).

Measured:
1. Added latency: one keep-alive connection per side; blocks of 200 requests alternate
   between "direct" (the app), "nginx" and "serve", after 500 untimed requests each. Per
   side: p50 and p99 of the wall time of one request; "added" is a proxy minus direct at
   the same percentile (the client's and the app's cost cancel out).
2. Requests per second per core: wrk (1 thread, 32 connections, `--duration` s) against
   each proxy, the proxy pinned to CPU 1 and wrk and the app to CPU 0; the proxy's CPU
   time over the run (from /proc) divides its request rate: requests per CPU-second.
3. Cold start: `--cold` times, a request (not a browser: held until ready) for a new
   commit, from sending to the app's answer, against `lookctl review up` of another new
   commit (the same bring-up from the command line, process start included); the
   difference is serve's overhead beyond the bring-up (resolving, the commit's Lease, the
   lookups before and after).
"""
import argparse, http.client, http.server, os, re, shutil, statistics, subprocess, sys
import tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
SHA = "0123456789abcdef0123456789abcdef01234567"
CONTEXT = "fake"


def fake_apiserver():
    if os.environ.get("FAKE_APISERVER"):
        return os.environ["FAKE_APISERVER"]
    for profile in ("release", "debug"):
        path = os.path.join(TARGET, profile, "fake-apiserver")
        if os.path.exists(path):
            return path
    sys.exit("no fake-apiserver: cargo build -p testkit --bin fake-apiserver")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def timed(conn, host, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        conn.request("GET", "/", headers={"Host": host})
        r = conn.getresponse()
        body = r.read()
        out.append(time.perf_counter() - t)
        if r.status != 200 or body != b"ok":
            sys.exit(f"unexpected answer {r.status} {body[:200]!r}")
    return out


NGINX_APP = """
worker_processes 1;
daemon off;
pid {tmp}/app.pid;
error_log {tmp}/app-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok"; }}
    }}
}}
"""

NGINX_PROXY = """
worker_processes 1;
daemon off;
pid {tmp}/proxy.pid;
error_log {tmp}/proxy-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    upstream app {{ server 127.0.0.1:{app}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port):
    import socket
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def nginx(tmp, name, template, **kw):
    conf = os.path.join(tmp, f"{name}.conf")
    open(conf, "w").write(template.format(tmp=tmp, **kw))
    p = subprocess.Popen(["nginx", "-c", conf, "-e", os.path.join(tmp, f"{name}-error.log")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(kw["port"])
    return p


def cpu_seconds(pids):
    """User + system CPU time of these processes and their children threads."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]
    except OSError:
        return []


def wrk(port, host, duration, pids):
    before = cpu_seconds(pids)
    t = time.perf_counter()
    out = subprocess.run(["taskset", "-c", "0", "wrk", "-t1", "-c32", f"-d{duration}s", "--latency",
                          "-H", f"Host: {host}", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t
    cpu = cpu_seconds(pids) - before
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if not m:
        sys.exit(f"wrk: no rate in\n{out}")
    if errors:
        sys.exit(f"wrk saw errors:\n{out}")
    p50 = re.search(r"50%\s+(\S+)", out).group(1)
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    rate = float(m.group(1))
    return rate, cpu / wall, rate / (cpu / wall) if cpu else float("nan"), p50, p99


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--profile", default="release", choices=["release", "debug"])
    args = ap.parse_args()
    for tool in ("nginx", "wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (Debian: apt-get install nginx wrk)")
    lookctl = os.path.join(TARGET, args.profile, "lookctl")
    if not args.no_build:
        flags = ["--release"] if args.profile == "release" else []
        subprocess.run(["cargo", "build", "-q", "--bin", "lookctl"] + flags, cwd=ROOT, check=True)

    tmp = tempfile.mkdtemp(prefix="bench-serve-")
    procs = []
    try:
        port = free_port()
        procs.append(nginx(tmp, "app", NGINX_APP, port=port))
        subprocess.run(["taskset", "-pc", "0", str(procs[-1].pid)], capture_output=True)
        for child in children(procs[-1].pid):
            subprocess.run(["taskset", "-pc", "0", str(child)], capture_output=True)
        proxy_port = free_port()
        plain = nginx(tmp, "proxy", NGINX_PROXY, port=proxy_port, app=port)
        procs.append(plain)
        plain_pids = [plain.pid] + children(plain.pid)
        for pid in plain_pids:
            subprocess.run(["taskset", "-pc", "1", str(pid)], capture_output=True)

        kubeconfig = os.path.join(tmp, "kubeconfig")
        fake = subprocess.Popen(["taskset", "-c", "0", fake_apiserver(), "--addr", "127.0.0.1:0",
                                 "--kubeconfig", kubeconfig, "--context", CONTEXT],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(fake)
        fake.stdout.readline()
        for _ in range(100):
            if os.path.exists(kubeconfig):
                break
            time.sleep(0.05)
        os.makedirs(os.path.join(tmp, "overlay"))
        open(os.path.join(tmp, "deploy.toml"), "w").write(f"""[project]
name = "bench"

[review]
overlay = "overlay"
context = "{CONTEXT}"
namespace = "review-{{{{ SHORT_SHA }}}}"
url = "http://{{{{ SHORT_SHA }}}}.review.bench"
max_envs = 100

[review.serve]
service = "web"
port = 80
route = "endpoints"

[vars]
UPSTREAM_PORT = "{port}"
""")
        open(os.path.join(tmp, "overlay", "kustomization.yaml"), "w").write(
            "namespace: review-{{ SHORT_SHA }}\nresources:\n- service.yaml\n")
        open(os.path.join(tmp, "overlay", "service.yaml"), "w").write(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - name: http\n"
            "    port: 80\n    targetPort: {{ UPSTREAM_PORT | int }}\n---\napiVersion: v1\nkind: Endpoints\n"
            "metadata:\n  name: web\nsubsets:\n- addresses:\n  - ip: 127.0.0.1\n  ports:\n  - name: http\n"
            "    port: {{ UPSTREAM_PORT | int }}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOKCTL", "KUBECONFIG"))}

        def review_up(sha):
            t = time.perf_counter()
            subprocess.run([lookctl, "review", "up", "--sha", sha, "--skip-image-check", "--kubeconfig",
                            kubeconfig], cwd=tmp, env=env, check=True, capture_output=True)
            return time.perf_counter() - t

        review_up(SHA)
        serve = subprocess.Popen(["taskset", "-c", "1", lookctl, "review", "serve", "--listen", "127.0.0.1:0",
                                  "--kubeconfig", kubeconfig],
                                 cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(serve)
        line = serve.stderr.readline()
        m = re.search(r"on http://(\S+)", line)
        if not m:
            sys.exit(f"serve did not start: {line}")
        shost, sport = m.group(1).rsplit(":", 1)
        threading.Thread(target=serve.stderr.read, daemon=True).start()
        vhost = f"{SHA[:7]}.review.bench"

        # 1. Added latency, one request at a time.
        sides = {
            "direct": (http.client.HTTPConnection("127.0.0.1", port), f"127.0.0.1:{port}"),
            "nginx": (http.client.HTTPConnection("127.0.0.1", proxy_port), vhost),
            "serve": (http.client.HTTPConnection(shost, int(sport)), vhost),
        }
        times = {name: [] for name in sides}
        for conn, host in sides.values():
            timed(conn, host, 500)
        block = 200
        for _ in range(max(1, args.requests // block)):
            for name, (conn, host) in sides.items():
                times[name] += timed(conn, host, block)
        for conn, _ in sides.values():
            conn.close()
        ms = lambda x: f"{x * 1000:.3f}"
        d = times["direct"]
        print(f"{args.profile} build; requests per side: {len(d)}; load average: {os.getloadavg()[0]:.1f}")
        print()
        print("| one request at a time | p50 ms | p99 ms | mean ms | added p50 ms | added p99 ms |")
        print("|---|---|---|---|---|---|")
        for name, label in (("direct", "direct to the app"), ("nginx", "via nginx"), ("serve", "via review serve")):
            t = times[name]
            added = (f"{ms(percentile(t, .5) - percentile(d, .5))} | {ms(percentile(t, .99) - percentile(d, .99))}"
                     if name != "direct" else "– | –")
            print(f"| {label} | {ms(percentile(t, .5))} | {ms(percentile(t, .99))} | {ms(statistics.mean(t))} "
                  f"| {added} |")

        # 2. Throughput per core.
        print()
        print(f"| wrk -t1 -c32 -d{args.duration}s | requests/s | proxy CPU (cores) | requests per CPU-second "
              "| wrk p50 | wrk p99 |")
        print("|---|---|---|---|---|---|")
        rows = (("via nginx (1 worker, CPU 1)", proxy_port, vhost, plain_pids),
                ("via review serve (CPU 1)", int(sport), vhost, [serve.pid]))
        for label, p, host, pids in rows:
            rate, cores, per_core, p50, p99 = wrk(p, host, args.duration, pids)
            print(f"| {label} | {rate:,.0f} | {cores:.2f} | {per_core:,.0f} | {p50} | {p99} |")

        # 3. Cold start beyond the bring-up.
        cold, cli = [], []
        for i in range(args.cold):
            sha = f"{i + 1:02x}" + SHA[2:]
            other = f"{i + 0x81:02x}" + SHA[2:]
            conn = http.client.HTTPConnection(shost, int(sport), timeout=120)
            t = time.perf_counter()
            conn.request("GET", "/", headers={"Host": f"{sha}.review.bench"})
            r = conn.getresponse()
            body = r.read()
            cold.append(time.perf_counter() - t)
            if r.status != 200 or body != b"ok":
                sys.exit(f"cold start: {r.status} {body[:300]!r}")
            conn.close()
            cli.append(review_up(other))
        print()
        print(f"| cold start ({args.cold} commits each) | median ms | min ms | max ms |")
        print("|---|---|---|---|")
        for label, t in (("first request through serve, until the app answers", cold),
                         ("`lookctl review up` of a new commit (process included)", cli)):
            print(f"| {label} | {ms(statistics.median(t))} | {ms(min(t))} | {ms(max(t))} |")
        print(f"| serve's overhead beyond the bring-up (median difference) "
              f"| {ms(statistics.median(cold) - statistics.median(cli))} | | |")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
