"""uv.lock serves the Lambda image (Python 3.12, x86_64 or arm64) as well as the development
machines (Python 3.11, which `make setup` installs from the same lock), and the image and the
Makefile bootstrap the same uv."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

from handler.config import REPO_ROOT

LOCK = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
PACKAGES: dict[str, dict[str, Any]] = {package["name"]: package for package in LOCK["package"]}


def lambda_tags(machine: str) -> set[Tag]:
    """What pip accepts in public.ecr.aws/lambda/python:3.12 (Amazon Linux 2023, glibc 2.34)."""
    platforms = [f"manylinux_2_{minor}_{machine}" for minor in range(34, 16, -1)]
    platforms.append(f"manylinux2014_{machine}")
    return set(cpython_tags((3, 12), platforms=platforms)) | set(
        compatible_tags((3, 12), "cp312", platforms)
    )


def runtime_packages(machine: str) -> set[str]:
    """The packages the image installs: tinyscribe's dependencies (no dev group, no serve
    extra) and theirs, with markers evaluated for Linux on ``machine``."""
    environment = {
        "python_version": "3.12",
        "python_full_version": "3.12.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": machine,
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    wanted: set[str] = set()
    pending: list[dict[str, Any]] = list(PACKAGES["tinyscribe"]["dependencies"])
    while pending:
        requirement = pending.pop()
        marker = requirement.get("marker")
        if marker and not Marker(marker).evaluate({**environment, "extra": ""}):
            continue
        package = PACKAGES[requirement["name"]]
        pending += package.get("dependencies", [])
        for extra in requirement.get("extra", []):
            pending += package.get("optional-dependencies", {}).get(extra, [])
        wanted.add(package["name"])
    return wanted


def test_the_lock_holds_one_version_of_each_package() -> None:
    """fork-strategy = "fewest": Python 3.11 tests exactly what Python 3.12 runs."""
    assert len(PACKAGES) == len(LOCK["package"])


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_every_runtime_package_has_a_hashed_wheel_for_the_lambda_image(machine: str) -> None:
    tags = lambda_tags(machine)
    packages = runtime_packages(machine)
    assert {"faster-whisper", "ctranslate2", "av", "numpy", "fastapi", "boto3"} <= packages
    assert "uvicorn" not in packages and "pytest" not in packages  # dev and serve stay out
    missing = []
    for name in sorted(packages):
        wheels = PACKAGES[name].get("wheels", [])
        installable = [
            wheel
            for wheel in wheels
            if wheel["hash"].startswith("sha256:")
            and tags & set(parse_wheel_filename(wheel["url"].rsplit("/", 1)[1])[3])
        ]
        if not installable:
            missing.append(f"{name} {PACKAGES[name]['version']}")
    assert not missing, f"no cp312 manylinux {machine} wheel in uv.lock for {missing}"


def test_the_image_bootstraps_the_uv_the_makefile_does() -> None:
    makefile = re.search(r"^UV_VERSION := (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    dockerfile = re.search(r"^ARG UV_VERSION=(\S+)$", (REPO_ROOT / "Dockerfile").read_text(), re.M)
    assert makefile and dockerfile
    assert makefile.group(1) == dockerfile.group(1)
    assert "--require-hashes" in (REPO_ROOT / "Dockerfile").read_text()
