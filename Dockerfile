# SPDX-License-Identifier: Apache-2.0
# The Sluice image: sluice-agent (the DaemonSet's entrypoint) and the sluice CNI plugin, which
# the chart's install-cni-bin init container copies onto the node.
#   docker build -t sluice:dev --build-arg VERSION=$(git describe --always --dirty) .
# Base images are pinned to a Debian point release (bump DEBIAN_RELEASE deliberately, together
# with the runtime library names below, which carry their sonames).
ARG DEBIAN_RELEASE=12.11

# ---- build: the same dependency script and CMake commands as hack/test.sh and CI ----------
FROM debian:${DEBIAN_RELEASE} AS build
WORKDIR /src
# Dependencies first, so editing sources does not invalidate this layer. SLUICE_DEPS=build
# asks install-deps.sh for the build subset only (no test, demo or shipping tools).
COPY hack/install-deps.sh hack/install-helm.sh hack/
RUN SLUICE_DEPS=build bash hack/install-deps.sh \
    && rm -rf /var/lib/apt/lists/*
COPY . .
# vmlinux.h for the BPF objects comes from the build machine's /sys/kernel/btf/vmlinux; the
# programs are CO-RE, so they load on any kernel with BTF.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSLUICE_WERROR=ON -DSLUICE_TESTS=OFF \
          -DSLUICE_STATIC_PLUGIN=ON \
    && cmake --build build -j"$(nproc)" --target sluice sluice-agent
# The plugin is exec'd by the container runtime on the node itself, where none of our
# libraries are installed: it must be a static executable.
RUN if ldd build/bin/sluice >/dev/null 2>&1; then \
      echo "build/bin/sluice is dynamically linked but runs on the node: build it static" >&2; \
      ldd build/bin/sluice >&2; exit 1; \
    fi \
    && build/bin/sluice-agent --version

# ---- runtime ------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim
ARG VERSION=0.1.0
ARG SOURCE_URL=unset
LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.description="Sluice CNI: node agent and plugin with an eBPF datapath" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0 AND (GPL-2.0-only OR BSD-2-Clause)"
# Only the shared libraries sluice-agent links (tests/shipping checks this list against the
# agent's ldd output). No shell tools beyond the base image's: the agent talks netlink and
# bpf() itself.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
         libbpf1 libelf1 zlib1g libnl-3-200 libnl-route-3-200 libspdlog1.10 libfmt9 \
         libcurl4 libssl3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/bin/sluice /src/build/bin/sluice-agent /usr/local/bin/
# Non-root by default for anyone running the image by hand (--help, inspection of a copied
# state dir). In the cluster the chart runs the agent as root with only the capabilities it
# needs (NET_ADMIN, BPF, PERFMON, SYS_ADMIN): Kubernetes gives added capabilities to non-root
# processes only as non-effective ones.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/sluice-agent"]
