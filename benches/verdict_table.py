"""The Markdown table of benches/gpu_verdict.sh, from its raw.jsonl: each section's rows of
ours beside PyTorch's (paired by the `pair` number the script gives both runs of a shape),
with the ratio ours / PyTorch (below 1: we are faster), and the tuner's choices. Exits 1
when any of our runs is missing, or a whole section.

    python3 benches/verdict_table.py OUT/raw.jsonl > OUT/verdict.md

Needs only the standard library.
"""
import json
import sys


def fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def shape(r):
    s = f"T={r['seq']} B={r['batch']} I={r['input']} H={r['hidden']}"
    if r.get("layers", 1) > 1:
        s += f" L={r['layers']}"
    if r.get("bidirectional"):
        s += " bidir"
    return s


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    by = {}
    for r in rows:
        by.setdefault((r["section"], r["pair"]), {})[r["side"]] = r
    def pairs(section):
        """(ours, PyTorch's, whichever ran) of each shape of `section`, in order."""
        for (s, _), v in sorted(by.items()):
            o, t = v.get("ours", {}), v.get("torch", {})
            if s == section and (o or t):
                yield o, t, o or t
    adapter = next((r["adapter"] for r in rows if r["side"] == "ours" and "adapter" in r), "?")
    torch = next((r["adapter"] for r in rows if r["side"] == "torch"), "?")
    out = [f"# GPU verdict: {adapter}", "", f"Beside PyTorch on {torch}. Ratios are ours / "
           "PyTorch's time (below 1: ours is faster); medians, one run.", ""]

    tuned = [r for r in rows if r["section"] == "tune"]
    if tuned:
        out += ["## Tuned kernel choices", "",
                "| shape | family | table choice | ms | tuned choice | ms | speed-up |",
                "|---|---|---|---|---|---|---|"]
        for r in tuned:
            out.append(f"| {r['shape']} | {r['family']} | `{r['table']}` | {fmt(r['table_ms'])} "
                       f"| `{r['tuned']}` | {fmt(r['tuned_ms'])} | {fmt(r['speedup'], 2)} |")
        out.append("")

    fwd = list(pairs("forward"))
    if fwd:
        out += ["## Forward", "",
                "| shape | kernel (from) | ours ms | PyTorch ms | ratio | ours GPU ms | "
                "PyTorch device ms | ratio |", "|---|---|---|---|---|---|---|---|"]
        for o, t, ref in fwd:
            out.append(
                f"| {shape(ref)} | `{o.get('kernel', '-')}` ({o.get('kernel_source', '-')}) "
                f"| {fmt(o.get('median_ms'))} | {fmt(t.get('median_ms'))} "
                f"| {fmt(ratio(o.get('median_ms'), t.get('median_ms')), 2)} "
                f"| {fmt(o.get('gpu_ms'))} | {fmt(t.get('device_ms'))} "
                f"| {fmt(ratio(o.get('gpu_ms'), t.get('device_ms')), 2)} |")
        out.append("")

    train = list(pairs("train"))
    if train:
        out += ["## Training steps", "",
                "| task, shape | kernel (from) | ours ms/step | PyTorch ms/step | ratio |",
                "|---|---|---|---|---|"]
        for o, t, ref in train:
            task = ref.get("task", "step")
            extra = f" V={ref['vocab']}" if task == "lm" else ""
            if ref.get("dropout"):
                extra += f" dropout {ref['dropout']}"
            out.append(
                f"| {task}: {shape(ref)}{extra} | `{o.get('kernel', '-')}` "
                f"({o.get('kernel_source', '-')}) | {fmt(o.get('median_ms'))} "
                f"| {fmt(t.get('median_ms'))} "
                f"| {fmt(ratio(o.get('median_ms'), t.get('median_ms')), 2)} |")
        out.append("")

    stream = list(pairs("stream"))
    if stream:
        out += ["## Streaming (one step at a time)", "",
                "| B, H | ours host µs | PyTorch host µs | ratio | ours resident µs | "
                "PyTorch resident µs | ratio |", "|---|---|---|---|---|---|---|"]
        for o, t, ref in stream:
            out.append(
                f"| B={ref['batch']} H={ref['hidden']} | {fmt(o.get('host_us'), 1)} "
                f"| {fmt(t.get('host_us'), 1)} | {fmt(ratio(o.get('host_us'), t.get('host_us')), 2)} "
                f"| {fmt(o.get('resident_step_us'), 1)} | {fmt(t.get('resident_step_us'), 1)} "
                f"| {fmt(ratio(o.get('resident_step_us'), t.get('resident_step_us')), 2)} |")
        out.append("")
    missing = [f"{s} {n}: no {side}" for (s, n), v in sorted(by.items()) if s != "tune"
               for side in ("ours", "torch") if side not in v]
    if missing:
        out += ["Missing runs (see the log): " + "; ".join(missing), ""]
    print("\n".join(out))
    expected = {"tune", "forward", "train", "stream"}
    ours = {r["section"] for r in rows if r["side"] == "ours"}
    return 1 if any(m.endswith("no ours") for m in missing) or ours != expected else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
