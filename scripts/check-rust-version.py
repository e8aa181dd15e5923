#!/usr/bin/env python3
"""Checks that the workspace's `rust-version` is true of its dependencies: no dependency in
Cargo.lock declares a newer one. (Only one toolchain is installed where the tests run, so the
workspace's own code is checked by building it with that toolchain, not with the declared one.)"""
import json
import subprocess
import sys


def parse(v):
    parts = [int(p) for p in v.split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


meta = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
)
members = set(meta["workspace_members"])
ours = {p["rust_version"] for p in meta["packages"] if p["id"] in members and p.get("rust_version")}
if len(ours) != 1:
    sys.exit(f"rust-version: the workspace's crates declare {sorted(ours) or 'none'}; expected one")
declared = ours.pop()
newer = sorted(
    (p["name"], p["version"], p["rust_version"])
    for p in meta["packages"]
    if p["id"] not in members and p.get("rust_version") and parse(p["rust_version"]) > parse(declared)
)
if newer:
    listed = ", ".join(f"{n} {v} needs {r}" for n, v, r in newer)
    sys.exit(f"rust-version {declared} is not true: {listed}")
print(f"rust-version {declared}: no dependency needs a newer Rust")
