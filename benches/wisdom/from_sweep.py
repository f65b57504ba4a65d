"""A wisdom file from a kernel sweep's JSON lines (benches/kernel_sweep.sh, `bench --json`):
for each shape, the fastest variant by GPU time, the first line of the shape (the table's
choice when the sweep ran) as `table`. For sweeps made before `lstm-wgpu tune` existed, so
that benches/wisdom/table.py reads every measurement in one form.

    python3 benches/wisdom/from_sweep.py docs/h100-2026-11-27/ours.jsonl \
        > benches/wisdom/h100-vulkan-2026-11-27.json

The sweep recorded the adapter's name and backend only: vendor and device ids and the driver
are written as 0 / "not recorded", so the file never matches a live adapter (it feeds the
table, not a context). Shape classes as src/gpu/wisdom/class.rs buckets them.
"""
import json
import re
import sys

CRATE_VERSION = re.search(r'^version = "(.+)"', open("Cargo.toml").read(), re.M).group(1)


def up(n):
    return 1 << max(n - 1, 0).bit_length()


def shape_class(r):
    h = r["hidden"]
    p = r.get("proj_size") or 0
    b = r["batch"]
    batch = max(b, 1) if b <= 4 else up(b)
    proj = f"{up(p)}" if p and p != h else "h"
    d = 2 if r.get("bidirectional") else 1
    return f"h={up(h)} p={proj} b={batch} d={d} fwd"


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    rows = [r for r in rows if r.get("device") == "gpu" and r.get("gpu_ms")]
    adapter = rows[0]["adapter"]
    name, backend = re.match(r"(.*) \((\w+), \w+\)$", adapter).groups()
    shapes = {}
    for r in rows:
        key = (r["seq"], r["batch"], r["input"], r["hidden"], r.get("layers", 1),
               r.get("bidirectional", False))
        kernel = re.sub(r" chunk=\d+$", "", r["kernel"])
        shapes.setdefault(key, []).append((kernel, r["gpu_ms"], r))
    entries = {}
    for runs in shapes.values():
        table, table_ms, first = runs[0]
        best, best_ms, _ = min(runs, key=lambda k: k[1])
        cls = shape_class(first)
        # several shapes of one class: the one measured last wins, as `tune` would save it
        entries[cls] = {"family": "recurrence", "class": cls, "choice": best, "table": table,
                        "table_ms": table_ms, "tuned_ms": best_ms}
    wisdom = {
        "format": "lstm-wgpu wisdom", "version": 1, "crate_version": CRATE_VERSION,
        "adapter": {"vendor": 0, "device": 0, "name": name, "backend": backend,
                    "driver": "not recorded", "driver_info": "not recorded"},
        "source": f"converted from {path} by benches/wisdom/from_sweep.py",
        "entries": sorted(entries.values(), key=lambda e: e["class"]),
    }
    print(json.dumps(wisdom, indent=2, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
