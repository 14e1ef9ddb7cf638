# lookctl in a small image for CI steps (GitHub Actions, Cloud Build, GitLab CI).
#
#   docker build --build-arg LOOKCTL_BUILD_COMMIT="$(git rev-parse HEAD)" -t lookctl .
#   docker run --rm lookctl version
#
# The default image is distroless (glibc, CA certificates, no shell) with lookctl as the
# entrypoint. `--target with-kubectl` adds a kubectl of the version the tests use, for
# steps that also run kubectl; `--target shell` is Debian slim with lookctl, kubectl and
# git, for CI systems that run scripts in the image (GitLab CI). lookctl itself needs no
# kubectl, gcloud or kustomize.
#
# Every base image is pinned by tag; pin them by digest in your registry mirror if your
# policy asks for it. The build context leaves out .git (see .dockerignore), so the commit
# comes from the build argument; without it, `lookctl version` says "commit unknown".

ARG RUST_VERSION=1.95.0
ARG KUBECTL_VERSION=v1.37.2

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
ARG LOOKCTL_BUILD_COMMIT=""
ENV LOOKCTL_BUILD_COMMIT=${LOOKCTL_BUILD_COMMIT}
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin lookctl \
    && install -m 0755 target/release/lookctl /usr/local/bin/lookctl
# The image is only built if the binary runs and says what it is.
RUN lookctl version

FROM docker.io/library/debian:bookworm-slim AS kubectl
ARG KUBECTL_VERSION
ADD --chmod=0755 https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/amd64/kubectl /usr/local/bin/kubectl
ADD https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/amd64/kubectl.sha256 /tmp/kubectl.sha256
RUN echo "$(cat /tmp/kubectl.sha256)  /usr/local/bin/kubectl" | sha256sum --check --strict

FROM gcr.io/distroless/cc-debian12:nonroot AS with-kubectl
COPY --from=build /usr/local/bin/lookctl /usr/local/bin/lookctl
COPY --from=kubectl /usr/local/bin/kubectl /usr/local/bin/kubectl
ENTRYPOINT ["/usr/local/bin/lookctl"]

# For CI systems that run a shell script in the job's image (GitLab CI): Debian slim with
# lookctl, kubectl, git and CA certificates.
FROM docker.io/library/debian:bookworm-slim AS shell
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/lookctl /usr/local/bin/lookctl
COPY --from=kubectl /usr/local/bin/kubectl /usr/local/bin/kubectl
RUN lookctl version

# The default target: lookctl alone.
FROM gcr.io/distroless/cc-debian12:nonroot AS lookctl
COPY --from=build /usr/local/bin/lookctl /usr/local/bin/lookctl
ENTRYPOINT ["/usr/local/bin/lookctl"]
