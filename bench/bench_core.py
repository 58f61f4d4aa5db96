"""Vault-core benchmarks: import vs the do-it-yourself peer, KEK rotation, field-cipher overhead.

Run: .venv/bin/python -m bench.bench_core [--n 100000] [--runs 3]
Prints medians of several runs and ratios against baselines measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import timeit
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench import peer
from bench.common import machine, median, timed
from keys.dekstore import DekRef
from keys.rotation import rotate
from vault import demo
from vault.fieldcipher import FieldCipher
from vault.ids import new_citizen_id
from vault.importer import Importer
from vault.runtime import init_vault
from vault.settings import Settings


def bench_import(n: int, runs: int, workers: int) -> float:
    """Median profiles/s of `Importer.run` on a fresh SQLite vault."""
    rates = []
    for _ in range(runs):
        root = Path(tempfile.mkdtemp(prefix="cv-bench-"))
        source = demo.write_jsonl(root / "in.jsonl", n)
        vault = init_vault(Settings(data_dir=root / "data", keyring_scrypt_n=2**10))
        importer = Importer(vault.profiles, workers=workers)
        seconds = timed(lambda: importer.run(source, "civil-registry"))
        vault.close()
        shutil.rmtree(root)
        rates.append(n / seconds)
    return median(rates)


def bench_peer(n: int, runs: int) -> float:
    """Median profiles/s of the peer (StringEncryptedType, ORM, batches of 1,000)."""
    rates = []
    for _ in range(runs):
        root = Path(tempfile.mkdtemp(prefix="cv-peer-"))
        url = f"sqlite:///{root}/peer.db"
        seconds = timed(lambda: peer.import_profiles(url, demo.profiles(n)))
        shutil.rmtree(root)
        rates.append(n / seconds)
    return median(rates)


def bench_rotation(n: int, runs: int) -> float:
    """Median DEKs/s re-wrapped by `keys rotate`."""
    rates = []
    for _ in range(runs):
        root = Path(tempfile.mkdtemp(prefix="cv-rot-"))
        vault = init_vault(Settings(data_dir=root / "data", keyring_scrypt_n=2**10))
        for start in range(0, n, 5000):
            vault.dekstore.store(
                {DekRef(new_citizen_id(), "P", 1): os.urandom(32) for _ in range(min(5000, n - start))}
            )
        store = vault.dekstore
        seconds = timed(lambda: rotate(store, 2000))
        vault.close()
        shutil.rmtree(root)
        rates.append(n / seconds)
    return median(rates)


def bench_cipher(runs: int) -> list[tuple[int, float, float]]:
    """(size, wrapper µs/op, raw AESGCM µs/op) for encrypt+decrypt of one field value."""
    key, citizen, out = os.urandom(32), uuid.uuid4(), []
    cipher, raw = FieldCipher(citizen, key, "P", 1), AESGCM(key)
    for size in (16, 64, 256):
        value = b"x" * size

        def wrapped(v: bytes = value) -> None:
            cipher.decrypt("address", cipher.encrypt("address", v))

        def primitive(v: bytes = value) -> None:
            nonce = os.urandom(12)
            raw.decrypt(
                nonce,
                raw.encrypt(nonce, v, b"aad-of-similar-length-0123456789abcdef"),
                b"aad-of-similar-length-0123456789abcdef",
            )

        loops = 20_000
        w = median([timeit.timeit(wrapped, number=loops) / loops * 1e6 for _ in range(runs)])
        p = median([timeit.timeit(primitive, number=loops) / loops * 1e6 for _ in range(runs)])
        out.append((size, w, p))
    return out


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


_WHO = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)


class OtherLoad:
    """CPU that processes other than this benchmark (and its children) used since creation, in
    cores: the noise of a shared machine (from Linux /proc/stat; "n/a" elsewhere)."""

    def __init__(self) -> None:
        self._start = self._snap()

    @staticmethod
    def _snap() -> tuple[float, float, float] | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
        own = sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime for who in _WHO)
        return time.perf_counter(), busy, own

    def cores(self) -> str:
        end = self._snap()
        if self._start is None or end is None:
            return "n/a"
        wall = end[0] - self._start[0]
        return f"{max(0.0, (end[1] - self._start[1]) - (end[2] - self._start[2])) / wall:.2f}"


def main() -> None:
    """Run everything and print a markdown summary."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--peer-n", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="import worker processes of the main figure")
    parser.add_argument("--skip-single", action="store_true", help="skip the single-process import")
    parser.add_argument("--skip-rotation", action="store_true", help="skip the KEK rotation benchmark")
    parser.add_argument("--skip-cipher", action="store_true", help="skip the field-cipher benchmark")
    args = parser.parse_args()
    print(f"command: python -m bench.bench_core {' '.join(sys.argv[1:])}".strip())
    print(f"machine: {machine()}; load average at start: {os.getloadavg()[0]:.2f}")
    # The machine may be shared: the load average before and after each measurement, and the CPU
    # (in cores) that other processes took meanwhile.
    loads, others = [_load()], []
    other = OtherLoad()
    vault_rate = bench_import(args.n, args.runs, workers=args.workers)
    loads.append(_load())
    others.append(other.cores())
    other = OtherLoad()
    single = None if args.skip_single else bench_import(args.n, args.runs, workers=0)
    loads.append(_load())
    others.append(other.cores())
    other = OtherLoad()
    peer_rate = bench_peer(args.peer_n, args.runs)
    loads.append(_load())
    others.append(other.cores())
    print(
        f"\n| import | profiles/s (median of {args.runs}) | load before -> after | other processes' CPU (cores) |"
        "\n|---|---|---|---|"
    )
    print(
        f"| vault, {args.n:,} profiles x 9 fields, {args.workers} worker processes | {vault_rate:,.0f} "
        f"| {loads[0]} -> {loads[1]} | {others[0]} |"
    )
    if single is not None:
        print(f"| vault, same, single process | {single:,.0f} | {loads[1]} -> {loads[2]} | {others[1]} |")
    print(
        f"| peer (StringEncryptedType + ORM), {args.peer_n:,} profiles | {peer_rate:,.0f} "
        f"| {loads[2]} -> {loads[3]} | {others[2]} |"
    )
    print(f"| ratio vault / peer (target >= 3) | {vault_rate / peer_rate:.2f} | | |")
    if not args.skip_rotation:
        rot = bench_rotation(args.n, args.runs)
        print(
            f"\nKEK rotation: {rot:,.0f} DEKs/s re-wrapped ({args.n:,} DEKs); "
            f"1M would take {1_000_000 / rot:.0f} s (target <= 60)"
        )
    if not args.skip_cipher:
        print(
            "\n| field value | wrapper µs (encrypt+decrypt) | raw AESGCM µs | ratio (target <= 3) |\n|---|---|---|---|"
        )
        for size, w, p in bench_cipher(args.runs):
            print(f"| {size} B | {w:.2f} | {p:.2f} | {w / p:.2f} |")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
