#!/usr/bin/env python3
"""review serve benchmark: the latency `lookctl review serve` adds to a request to a running
environment (the warm path), against the same request sent straight to the upstream.

Usage: bench/serve.py [--requests 4000] [--no-build] [--profile release|debug]
(FAKE_APISERVER=path picks the fake-apiserver binary; default: the target dir's.)

Setup: testkit's `fake-apiserver` on 127.0.0.1; a project whose review overlay renders a
selector-less Service `web` with an Endpoints object pointing at a local upstream (Python's
ThreadingHTTPServer answering `ok` over keep-alive); `lookctl review up --sha S
--skip-image-check` deploys it; `lookctl review serve --listen 127.0.0.1:0` with
`route = "endpoints"` proxies `<sha>.review.bench` to it.

Measured: one keep-alive connection per side; blocks of 200 requests alternate between
"direct" (to the upstream) and "serve" (to serve, Host `<sha>.review.bench`), after 500
untimed requests each. Per side: p50 and p99 of the wall time of one request; "added" is
serve minus direct at the same percentile. The upstream is the same Python server in
both, so its cost cancels out.
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


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per response and no Nagle: otherwise delayed ACKs add ~40 ms to both sides.
    disable_nagle_algorithm = True
    wbufsize = 65536

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--profile", default="release", choices=["release", "debug"])
    args = ap.parse_args()
    lookctl = os.path.join(TARGET, args.profile, "lookctl")
    if not args.no_build:
        flags = ["--release"] if args.profile == "release" else []
        subprocess.run(["cargo", "build", "-q", "--bin", "lookctl"] + flags, cwd=ROOT, check=True)

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = upstream.server_address[1]

    tmp = tempfile.mkdtemp(prefix="bench-serve-")
    procs = []
    try:
        kubeconfig = os.path.join(tmp, "kubeconfig")
        fake = subprocess.Popen([fake_apiserver(), "--addr", "127.0.0.1:0", "--kubeconfig", kubeconfig,
                                 "--context", CONTEXT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
        subprocess.run([lookctl, "review", "up", "--sha", SHA, "--skip-image-check", "--kubeconfig", kubeconfig],
                       cwd=tmp, env=env, check=True, capture_output=True)
        serve = subprocess.Popen([lookctl, "review", "serve", "--listen", "127.0.0.1:0", "--kubeconfig", kubeconfig],
                                 cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(serve)
        line = serve.stderr.readline()
        m = re.search(r"on http://(\S+)", line)
        if not m:
            sys.exit(f"serve did not start: {line}")
        shost, sport = m.group(1).rsplit(":", 1)
        threading.Thread(target=serve.stderr.read, daemon=True).start()

        direct = http.client.HTTPConnection("127.0.0.1", port)
        proxied = http.client.HTTPConnection(shost, int(sport))
        vhost = f"{SHA[:7]}.review.bench"
        timed(direct, f"127.0.0.1:{port}", 500)
        timed(proxied, vhost, 500)
        d, s = [], []
        block = 200
        for _ in range(max(1, args.requests // block)):
            d += timed(direct, f"127.0.0.1:{port}", block)
            s += timed(proxied, vhost, block)
        ms = lambda x: f"{x * 1000:.3f}"
        print(f"requests per side: {len(d)}; load average: {os.getloadavg()[0]:.1f}")
        print("| | p50 ms | p99 ms | mean ms |")
        print("|---|---|---|---|")
        print(f"| direct | {ms(percentile(d, .5))} | {ms(percentile(d, .99))} | {ms(statistics.mean(d))} |")
        print(f"| via review serve | {ms(percentile(s, .5))} | {ms(percentile(s, .99))} | {ms(statistics.mean(s))} |")
        print(f"| added | {ms(percentile(s, .5) - percentile(d, .5))} | {ms(percentile(s, .99) - percentile(d, .99))} "
              f"| {ms(statistics.mean(s) - statistics.mean(d))} |")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        upstream.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
