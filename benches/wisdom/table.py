"""Regenerates the kernel table in src/gpu/kernels/choice.rs (the block between its
`table.py: begin` and `table.py: end` lines) from the wisdom files under benches/wisdom/:
the measured choices of the GPUs we have run on, so that the default table is what the
measurements found.

    python3 benches/wisdom/table.py           # rewrite the block
    python3 benches/wisdom/table.py --check   # exit 1 when the block is not what it generates

From every forward `recurrence` entry:
- per-step winners, grouped by the table's batch rows (B <= 1, 2, 4, 16, more), give each
  row's BT, U (H_out <= 512), wide U (H_out > 512) and most k-slices: the most common value
  among the winners (ties: the value the table holds now); a row or a field no measurement
  speaks for keeps its value;
- sequence winners give W_hh vec4s per invocation, H / KS, the most common value.
Needs only the standard library.
"""
import collections
import glob
import json
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CHOICE = os.path.join(ROOT, "src", "gpu", "kernels", "choice.rs")
BEGIN, END = "// table.py: begin", "// table.py: end"
ROW = re.compile(r"PerStepRow \{ max_batch: (\w+|usize::MAX), rows: (\d+), units: (\d+), "
                 r"wide_units: (\d+), max_splits: (\d+) \}")


def fields(text):
    kind, *rest = text.split()
    return kind, {k: int(v) for k, v in (w.split("=") for w in rest)}


def parse_class(text):
    h, p, b, d, mode = text.split()
    hidden = int(h[2:])
    return {"hidden": hidden, "out": hidden if p == "p=h" else int(p[2:]), "batch": int(b[2:]),
            "fwd": mode == "fwd"}


def most_common(values, now):
    if not values:
        return now
    counts = collections.Counter(values).most_common()
    top = [v for v, c in counts if c == counts[0][1]]
    return now if now in top else min(top)


def generate(source, files):
    block = source[source.index(BEGIN):source.index(END)]
    rows = [list(m.groups()) for m in ROW.finditer(block)]
    per_inv = int(re.search(r"SEQUENCE_PER_INVOCATION: u32 = (\d+);", block).group(1))
    limits = [10**9 if r[0] == "usize::MAX" else int(r[0]) for r in rows]
    winners = collections.defaultdict(lambda: collections.defaultdict(list))
    per_invocation = []
    for path in files:
        for e in json.load(open(path))["entries"]:
            cls = parse_class(e["class"])
            if e["family"] != "recurrence" or not cls["fwd"]:
                continue
            kind, f = fields(e["choice"])
            if kind == "sequence":
                per_invocation.append(cls["hidden"] // f["ks"])
                continue
            row = next(i for i, m in enumerate(limits) if cls["batch"] <= m)
            w = winners[row]
            w["rows"].append(f["bt"])
            w["wide_units" if cls["out"] > 512 else "units"].append(f["u"])
            # the table's KS is min(max_splits, quads / 2): only a smaller winner says less
            w["max_splits"].append(f["ks"])
    new_rows = []
    for i, r in enumerate(rows):
        w = winners.get(i, {})
        rows_, units, wide, splits = (int(x) for x in r[1:])
        rows_ = most_common(w.get("rows", []), rows_)
        units = most_common(w.get("units", []), units)
        wide = most_common(w.get("wide_units", []), wide)
        splits = max(w.get("max_splits", []) + [0]) or splits
        new_rows.append(f"    PerStepRow {{ max_batch: {r[0]}, rows: {rows_}, units: {units}, "
                        f"wide_units: {wide}, max_splits: {splits} }},")
    per_inv = most_common(per_invocation, per_inv)
    names = ", ".join(os.path.basename(f) for f in files)
    text = (f"{BEGIN} (from {names})\n"
            f"/// W_hh vec4s per invocation the table gives the sequence kernel.\n"
            f"const SEQUENCE_PER_INVOCATION: u32 = {per_inv};\n"
            f"#[rustfmt::skip]\n"
            f"const PER_STEP_TABLE: [PerStepRow; {len(new_rows)}] = [\n" + "\n".join(new_rows) +
            "\n];\n")
    return source.replace(block, text)


def main():
    files = sorted(glob.glob(os.path.join(ROOT, "benches", "wisdom", "*.json")))
    source = open(CHOICE).read()
    generated = generate(source, files)
    if "--check" in sys.argv:
        if generated != source:
            print("src/gpu/kernels/choice.rs: the kernel table is not what "
                  "benches/wisdom/table.py generates from benches/wisdom/*.json; run it")
            sys.exit(1)
        print("choice.rs's table is what the wisdom files give")
        return
    if generated != source:
        open(CHOICE, "w").write(generated)
        print("rewrote the table in src/gpu/kernels/choice.rs")
    else:
        print("the table is already what the wisdom files give")


if __name__ == "__main__":
    main()
