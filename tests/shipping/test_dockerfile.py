#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The Dockerfile, checked by hand the way hadolint would, plus what is ours to check: the
build stage builds exactly as hack/test.sh does, and the runtime stage installs the packages
that hold the shared libraries sluice-agent links (SLUICE_AGENT_BIN, set by CMake)."""

import os
import re
import shlex
import subprocess
import unittest

from shipping_common import REPO

DOCKERFILE = os.path.join(REPO, "Dockerfile")
TEST_SH = os.path.join(REPO, "hack", "test.sh")
# In debian:*-slim already (dpkg/apt need them), so the runtime stage need not name them.
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}


def parse_dockerfile(text):
    """[(stage_index, INSTRUCTION, args)] with continuations joined and comments dropped."""
    instructions, cur = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not cur and (not stripped or stripped.startswith("#")):
            continue
        if cur and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            cur += stripped[:-1] + " "
            continue
        cur += stripped
        instructions.append(cur)
        cur = ""
    out, stage = [], -1
    for ins in instructions:
        word, _, args = ins.partition(" ")
        word = word.upper()
        if word == "FROM":
            stage += 1
        out.append((stage, word, args.strip()))
    return out


def substitute(s, env):
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), m.group(0)), s)


def cmake_invocations(text):
    """The cmake command lines in a shell text (continuations joined), as token lists."""
    text = text.replace("\\\n", " ")
    cmds = []
    for line in text.splitlines():
        for part in re.split(r"&&|;", line):
            part = part.strip()
            if part.startswith("cmake "):
                cmds.append(shlex.split(part))
    return cmds


def defines(tokens):
    return dict(t[2:].split("=", 1) for t in tokens if t.startswith("-D") and "=" in t)


class Dockerfile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DOCKERFILE, encoding="utf-8") as f:
            cls.text = f.read()
        cls.ins = parse_dockerfile(cls.text)
        cls.global_args = {}
        for stage, word, args in cls.ins:
            if stage == -1 and word == "ARG" and "=" in args:
                k, v = args.split("=", 1)
                cls.global_args[k] = v
        cls.froms = [(s, substitute(a, cls.global_args)) for s, w, a in cls.ins if w == "FROM"]
        cls.last = len(cls.froms) - 1

    def stage(self, idx):
        return [(w, a) for s, w, a in self.ins if s == idx]

    def runs(self, idx=None):
        return [a for s, w, a in self.ins if w == "RUN" and (idx is None or s == idx)]

    def test_spdx(self):
        self.assertRegex(self.text.splitlines()[0], r"^# SPDX-License-Identifier: Apache-2.0$")

    def test_builds_offline_capable(self):
        # A "# syntax=" directive makes BuildKit pull a frontend image before anything else.
        self.assertNotRegex(self.text, r"(?m)^#\s*syntax=")

    def test_base_images_pinned(self):
        self.assertEqual(len(self.froms), 2, "multi-stage: build and runtime")
        for _, frm in self.froms:
            image = frm.split()[0]
            self.assertNotIn("$", image, f"unresolved variable in FROM {frm}")
            if "@sha256:" in image:
                continue
            name, _, tag = image.partition(":")
            self.assertTrue(tag, f"{image}: no tag")
            self.assertNotIn(tag, ("latest", "stable", "bookworm", "bookworm-slim"), f"{image}: floating tag")
            self.assertRegex(tag, r"\d", f"{image}: tag is not a version")
        build, runtime = self.froms[0][1], self.froms[1][1]
        self.assertRegex(build, r"^debian:12\.\d+ AS build$", "build stage: Debian 12 (bookworm), like our machines")
        self.assertRegex(runtime, r"^debian:12\.\d+-slim$", "runtime stage: bookworm-slim")
        self.assertEqual(build.split()[0].split(":")[1] + "-slim", runtime.split(":")[1], "same point release")

    def test_no_add_no_urls(self):
        for s, w, a in self.ins:
            self.assertNotEqual(w, "ADD", f"use COPY, not ADD: ADD {a}")
            if w in ("COPY", "RUN"):
                self.assertNotRegex(a, r"(curl|wget)\s", "no downloads outside the package managers")

    def test_apt_hygiene(self):
        apt_runs = [r for r in self.runs() if "apt-get install" in r]
        self.assertTrue(apt_runs, "the runtime stage installs its libraries with apt-get")
        for r in apt_runs:
            self.assertIn("--no-install-recommends", r)
            self.assertRegex(r, r"apt-get install (-y|--yes|-qq -y)")
            self.assertLess(r.index("apt-get update"), r.index("apt-get install"), "update in the same layer")
            self.assertIn("rm -rf /var/lib/apt/lists/*", r)
            self.assertGreater(r.index("rm -rf /var/lib/apt/lists/*"), r.index("apt-get install"))
            self.assertNotIn("apt-get upgrade", r)
        for r in self.runs():
            if "install-deps.sh" in r:
                self.assertIn("rm -rf /var/lib/apt/lists/*", r)

    def test_non_root_user(self):
        users = [a for s, w, a in self.ins if w == "USER" and s == self.last]
        self.assertTrue(users, "the runtime stage sets a USER")
        user = users[-1].split(":")[0]
        self.assertNotIn(user, ("0", "root"), "the image's last USER must not be root")

    def test_entrypoint_and_binaries(self):
        stage = self.stage(self.last)
        eps = [a for w, a in stage if w == "ENTRYPOINT"]
        self.assertEqual(eps, ['["/usr/local/bin/sluice-agent"]'], "exec-form ENTRYPOINT sluice-agent")
        copies = [a for w, a in stage if w == "COPY"]
        self.assertTrue(any(c.startswith("--from=build ") and "build/bin/sluice " in c + " "
                            and "build/bin/sluice-agent" in c and c.endswith(" /usr/local/bin/")
                            for c in copies), copies)
        self.assertNotIn("HEALTHCHECK", [w for w, _ in stage], "Kubernetes probes /healthz; no HEALTHCHECK")

    def test_oci_labels(self):
        labels = " ".join(a for s, w, a in self.ins if w == "LABEL" and s == self.last)
        for key in ("source", "version", "licenses"):
            self.assertIn(f"org.opencontainers.image.{key}=", labels)
        self.assertRegex(labels, r'org\.opencontainers\.image\.licenses="[^"]*Apache-2\.0')
        self.assertIn('org.opencontainers.image.version="${VERSION}"', labels)

    def test_build_stage_builds_like_ci(self):
        build_runs = self.runs(0)
        self.assertTrue(any(re.search(r"(^|\s)bash hack/install-deps\.sh(\s|$)", r) for r in build_runs),
                        "the build stage installs dependencies with hack/install-deps.sh")
        copied = " ".join(a for w, a in self.stage(0) if w == "COPY")
        self.assertIn("hack/install-deps.sh", copied)
        self.assertIn("hack/install-helm.sh", copied, "install-deps.sh calls install-helm.sh")

        with open(TEST_SH, encoding="utf-8") as f:
            ci = cmake_invocations(f.read())
        ci_configure = [c for c in ci if "-S" in c]
        ci_build = [c for c in ci if "--build" in c]
        self.assertEqual(len(ci_configure), 1, ci)
        self.assertEqual(len(ci_build), 1, ci)
        ours = [c for r in build_runs for c in cmake_invocations(r)]
        configure = [c for c in ours if "-S" in c]
        build = [c for c in ours if "--build" in c]
        self.assertEqual(len(configure), 1, ours)
        self.assertEqual(len(build), 1, ours)
        configure, build = configure[0], build[0]
        self.assertEqual(configure[configure.index("-S") + 1], ".")
        build_dir = configure[configure.index("-B") + 1]
        self.assertEqual(build[build.index("--build") + 1], build_dir)
        want = defines(ci_configure[0])
        have = defines(configure)
        for key, value in want.items():
            if key in ("CMAKE_BUILD_TYPE", "SLUICE_LINE_TABLES"):
                continue  # CI: RelWithDebInfo with line tables for tests; the image: Release
            self.assertEqual(have.get(key), value, f"-D{key} differs from hack/test.sh")
        self.assertEqual(have.get("CMAKE_BUILD_TYPE"), "Release")
        self.assertEqual(have.get("SLUICE_TESTS"), "OFF")
        targets = build[build.index("--target") + 1:]
        targets = [t for t in targets if not t.startswith("-")]
        self.assertEqual(sorted(targets), ["sluice", "sluice-agent"])
        for _, w, a in self.ins:
            if w == "COPY" and a.startswith("--from=build"):
                self.assertIn(f"/src/{build_dir}/bin/", a)
        # The plugin runs on the node, without our libraries: the build refuses a dynamic one.
        self.assertTrue(any("ldd build/bin/sluice" in r and "exit 1" in r for r in build_runs))

    def test_configure_options_exist(self):
        # A -D the project does not declare is silently ignored by CMake: the image would be
        # built without what the Dockerfile asks for.
        declared = set()
        for root, _, files in os.walk(REPO):
            if "/build" in root[len(REPO):] or "/.git" in root[len(REPO):]:
                continue
            for name in files:
                if name == "CMakeLists.txt" or name.endswith(".cmake"):
                    with open(os.path.join(root, name), encoding="utf-8") as f:
                        text = f.read()
                    declared |= set(re.findall(r"\boption\(\s*(\w+)", text))
                    declared |= set(re.findall(r"\bset\(\s*(\w+)\s[^)]*\bCACHE\b", text))
        configure = [c for r in self.runs(0) for c in cmake_invocations(r) if "-S" in c][0]
        for key in defines(configure):
            if not key.startswith("CMAKE_"):
                self.assertIn(key, declared, f"the Dockerfile sets -D{key}, which no CMake file declares")

    def test_plugin_is_static(self):
        plugin = os.environ.get("SLUICE_PLUGIN_BIN", "")
        if not plugin:
            self.fail("SLUICE_PLUGIN_BIN is not set: run through ctest (tests/shipping/CMakeLists.txt)")
        if os.environ.get("SLUICE_STATIC_PLUGIN", "").upper() not in ("ON", "1", "TRUE", "YES"):
            self.skipTest("this build was configured with SLUICE_STATIC_PLUGIN off (sanitizers)")
        dyn = subprocess.run(["readelf", "-d", plugin], capture_output=True, text=True, check=True).stdout
        self.assertNotIn("(NEEDED)", dyn, f"{plugin} needs shared libraries:\n{dyn}")
        interp = subprocess.run(["readelf", "-l", plugin], capture_output=True, text=True, check=True).stdout
        self.assertNotIn("Requesting program interpreter", interp, f"{plugin} is dynamically linked")

    def runtime_packages(self):
        runs = [r for r in self.runs(self.last) if "apt-get install" in r]
        tokens = shlex.split(runs[0].split("apt-get install", 1)[1].split("&&")[0])
        return {t for t in tokens if not t.startswith("-")}

    def test_runtime_packages_exist_in_debian(self):
        pkgs = self.runtime_packages()
        self.assertTrue({"libbpf1", "libnl-3-200", "libnl-route-3-200"} <= pkgs, pkgs)
        self.assertFalse({p for p in pkgs if p.endswith("-dev")}, "no -dev packages at runtime")
        # Installed here as dependencies of the -dev packages the build uses: the names are
        # right for this Debian release.
        for p in sorted(pkgs):
            with self.subTest(p):
                proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
                self.assertIn("install ok installed", proc.stdout, f"{p} is not a package of this Debian")

    def test_runtime_packages_cover_the_agent(self):
        agent = os.environ.get("SLUICE_AGENT_BIN", "")
        if not agent:
            self.fail("SLUICE_AGENT_BIN is not set: run through ctest (tests/shipping/CMakeLists.txt)")
        self.assertTrue(os.path.isfile(agent), f"{agent} is not built")
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                            subprocess.run(["readelf", "-d", agent], capture_output=True, text=True,
                                           check=True).stdout)
        self.assertTrue(needed, "sluice-agent has no NEEDED entries?")
        pkgs = self.runtime_packages() | BASE_PACKAGES
        for soname in needed:
            with self.subTest(soname):
                proc = subprocess.run(["dpkg", "-S", f"*/{soname}"], capture_output=True, text=True)
                self.assertEqual(proc.returncode, 0, f"no Debian package holds {soname}: {proc.stderr}")
                owners = {line.split(":")[0] for line in proc.stdout.splitlines()}
                self.assertTrue(owners & pkgs,
                                f"sluice-agent needs {soname} from {sorted(owners)}; "
                                "add it to the Dockerfile's runtime apt-get install")


if __name__ == "__main__":
    unittest.main(verbosity=2)
