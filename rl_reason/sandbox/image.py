"""Build the `rl-reason-sandbox` image: from the shipped Dockerfile, or offline from debootstrap."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

IMAGE = "rl-reason-sandbox"
BASE_IMAGE = "rl-reason-sandbox-base:bookworm"
HERE = Path(__file__).parent
ROOTFS_CACHE = Path(os.environ.get("RL_REASON_ROOTFS_CACHE", "/var/cache/rl-reason/debootstrap-bookworm"))
COMPLETE_MARK = ".rl-reason-complete"
DEBIAN_MIRROR = "http://deb.debian.org/debian"


def image_fingerprint() -> str:
    """Hash of what goes into the image; a pool refuses an image built from another runner."""
    digest = hashlib.sha256()
    for name in ("Dockerfile", "runner.py"):
        digest.update((HERE / name).read_bytes())
    return digest.hexdigest()[:16]


def _context_tar() -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("Dockerfile", "runner.py"):
            tar.add(HERE / name, arcname=name)
    buf.seek(0)
    return buf


def debootstrap_rootfs(log=print) -> Path:
    """A minimal Debian bookworm with python3 and pytest, cached between builds."""
    if (ROOTFS_CACHE / COMPLETE_MARK).exists():
        log(f"reusing root filesystem {ROOTFS_CACHE}")
        return ROOTFS_CACHE
    if not shutil.which("debootstrap"):
        raise RuntimeError("debootstrap is not installed (apt-get install -y debootstrap)")
    partial = ROOTFS_CACHE.with_name(ROOTFS_CACHE.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap bookworm into {partial} (a few minutes)")
    subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-pytest", "bookworm", str(partial),
                    DEBIAN_MIRROR], check=True)
    (partial / COMPLETE_MARK).touch()
    partial.rename(ROOTFS_CACHE)
    return ROOTFS_CACHE


def build_image(client, offline: bool, log=print) -> str:
    """Build IMAGE with the package's Dockerfile; offline, its base is an imported debootstrap tree."""
    buildargs = {}
    if offline:
        rootfs = debootstrap_rootfs(log)
        log(f"importing {rootfs} as {BASE_IMAGE}")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--exclude", f"./{COMPLETE_MARK}", "-c", "."], stdout=subprocess.PIPE)
        client.api.import_image_from_stream(tar.stdout, repository=BASE_IMAGE.split(":")[0], tag=BASE_IMAGE.split(":")[1])
        if tar.wait() != 0:
            raise RuntimeError(f"tar of {rootfs} failed")
        buildargs["BASE"] = BASE_IMAGE
    log(f"building {IMAGE}")
    image, _ = client.images.build(fileobj=_context_tar(), custom_context=True, tag=IMAGE, buildargs=buildargs, rm=True,
                                   forcerm=True, pull=False, labels={"rl-reason.fingerprint": image_fingerprint()})
    return image.id
