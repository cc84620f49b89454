"""Static look-ups that make the fake's droplets look like DO's.

Region/size/image objects (unknown slugs are accepted and given plausible
values, since the catalog mock may use others), the sizes' prices, default VPC
ids, timestamps, and the address allocation. Which region offers which size
depends on the config: that part lives in ``offerings.py``.
"""

from __future__ import annotations

import re
import time
import uuid
import zlib
from ipaddress import IPv4Address
from typing import Any

_REGION_NAMES = {
    "nyc1": "New York 1",
    "nyc2": "New York 2",
    "nyc3": "New York 3",
    "sfo2": "San Francisco 2",
    "sfo3": "San Francisco 3",
    "ams3": "Amsterdam 3",
    "fra1": "Frankfurt 1",
    "lon1": "London 1",
    "sgp1": "Singapore 1",
    "tor1": "Toronto 1",
    "blr1": "Bangalore 1",
    "syd1": "Sydney 1",
}

#: Every region the fake knows, in the order GET /v2/regions lists them.
REGION_SLUGS: tuple[str, ...] = tuple(_REGION_NAMES)

# slug -> (memory MiB, vcpus, disk GB)
_SIZES = {
    "s-1vcpu-512mb-10gb": (512, 1, 10),
    "s-1vcpu-1gb": (1024, 1, 25),
    "s-1vcpu-2gb": (2048, 1, 50),
    "s-2vcpu-2gb": (2048, 2, 60),
    "s-2vcpu-4gb": (4096, 2, 80),
    "s-4vcpu-8gb": (8192, 4, 160),
    "s-8vcpu-16gb": (16384, 8, 320),
    # CPU-optimised: the same 25 GB disk as s-1vcpu-1gb with more CPU and RAM,
    # so a resize between the two is CPU/RAM only.
    "c-2": (4096, 2, 25),
}

#: Every size the fake knows, in the order GET /v2/sizes lists them.
SIZE_SLUGS: tuple[str, ...] = tuple(_SIZES)

# slug -> (price_monthly USD, transfer TB, description), as DO lists them.
_SIZE_OFFERS = {
    "s-1vcpu-512mb-10gb": (4.0, 0.5, "Basic"),
    "s-1vcpu-1gb": (6.0, 1.0, "Basic"),
    "s-1vcpu-2gb": (12.0, 2.0, "Basic"),
    "s-2vcpu-2gb": (18.0, 3.0, "Basic"),
    "s-2vcpu-4gb": (24.0, 4.0, "Basic"),
    "s-4vcpu-8gb": (48.0, 5.0, "Basic"),
    "s-8vcpu-16gb": (96.0, 6.0, "Basic"),
    "c-2": (42.0, 4.0, "CPU-Optimized"),
}
_HOURS_BILLED_A_MONTH = 672  # DO's hourly price is the monthly one over 672 hours
_SIZE_RE = re.compile(r"(\d+)vcpu-(\d+)gb")

_DISTRIBUTIONS = {
    "ubuntu": "Ubuntu",
    "debian": "Debian",
    "centos": "CentOS",
    "fedora": "Fedora",
    "rockylinux": "Rocky Linux",
    "almalinux": "AlmaLinux",
}


def size_spec(slug: str) -> tuple[int, int, int]:
    """(memory MiB, vcpus, disk GB) for a size slug, guessed from the slug if unknown."""
    if slug in _SIZES:
        return _SIZES[slug]
    match = _SIZE_RE.search(slug)
    if match is None:
        return (1024, 1, 25)
    vcpus, gigabytes = int(match.group(1)), int(match.group(2))
    return (gigabytes * 1024, vcpus, gigabytes * 25)


_REGION_FEATURES = ("backups", "ipv6", "metadata", "install_agent")


def region_json(slug: str) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": _REGION_NAMES.get(slug, slug.upper()),
        "available": True,
        "features": list(_REGION_FEATURES),
    }


def size_json(slug: str) -> dict[str, Any]:
    memory, vcpus, disk = size_spec(slug)
    return {"slug": slug, "memory": memory, "vcpus": vcpus, "disk": disk, "available": True}


def size_offer(slug: str) -> dict[str, Any]:
    """A known size's entry of GET /v2/sizes, without ``regions`` and ``available``."""
    memory, vcpus, disk = _SIZES[slug]
    monthly, transfer, description = _SIZE_OFFERS[slug]
    return {
        "slug": slug,
        "memory": memory,
        "vcpus": vcpus,
        "disk": disk,
        "transfer": transfer,
        "price_monthly": monthly,
        "price_hourly": round(monthly / _HOURS_BILLED_A_MONTH, 5),
        "description": description,
    }


def image_json(image: str | int) -> dict[str, Any]:
    if isinstance(image, int):
        return {"id": image, "slug": None, "name": f"Image {image}", "distribution": "Unknown"}
    head, _, rest = image.partition("-")
    parts = rest.split("-") if rest else []
    arch = parts.pop() if parts and parts[-1].startswith("x") else ""
    name = " ".join(p for p in (".".join(parts), arch) if p) or image
    return {
        # A stable id per slug, so the same image always reports the same id.
        "id": 100_000_000 + zlib.crc32(image.encode()) % 100_000_000,
        "slug": image,
        "name": name,
        "distribution": _DISTRIBUTIONS.get(head, head.capitalize()),
        "public": True,
        "type": "base",
    }


def vpc_uuid(region: str) -> str:
    # One default VPC per region, stable across runs like DO's real default VPCs.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-do-vpc/{region}"))


def iso8601(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


# --------------------------------------------------------------------------
# Address allocation: the n-th droplet of an instance gets the n-th address,
# computed arithmetically (O(1)), never reused. Public addresses come from the
# documentation ranges first, then the benchmarking range, then CGNAT space, so
# even long benchmarks never run out or collide.
# --------------------------------------------------------------------------

_HOSTS_PER_BLOCK = 253  # .2-.254 of each /24: .0 network, .1 gateway, .255 broadcast
_PUBLIC_BLOCKS: tuple[tuple[int, int], ...] = (
    (int(IPv4Address("203.0.113.0")), 1),  # TEST-NET-3
    (int(IPv4Address("198.51.100.0")), 1),  # TEST-NET-2
    (int(IPv4Address("192.0.2.0")), 1),  # TEST-NET-1
    (int(IPv4Address("198.18.0.0")), 512),  # RFC 2544 benchmarking /15
    (int(IPv4Address("100.64.0.0")), 16384),  # RFC 6598 shared /10
)
_PRIVATE_BASE = int(IPv4Address("10.0.0.0"))


def _host_in_blocks(base: int, index: int) -> tuple[str, str]:
    block, host = divmod(index, _HOSTS_PER_BLOCK)
    network = base + block * 256
    return str(IPv4Address(network + host + 2)), str(IPv4Address(network + 1))


def public_ipv4(index: int) -> tuple[str, str]:
    """(address, gateway) of the index-th public address."""
    for base, blocks in _PUBLIC_BLOCKS:
        capacity = blocks * _HOSTS_PER_BLOCK
        if index < capacity:
            return _host_in_blocks(base, index)
        index -= capacity
    raise RuntimeError("the fake DigitalOcean API ran out of public test addresses")


def private_ipv4(index: int) -> tuple[str, str]:
    """(address, gateway) of the index-th private 10.x address."""
    return _host_in_blocks(_PRIVATE_BASE, index)
