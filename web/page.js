// The page: the adapter, a training run with a live loss curve, and a user's model run on the
// GPU against the CPU path. `?autorun=1` trains, runs the trained model and leaves the
// figures in `window.pageResult` (web/page_test.py reads them).
import init, { Engine, SineTrainer } from "./pkg/lstm_wgpu_web.js";

const $ = (id) => document.getElementById(id);
const autorun = new URLSearchParams(location.search).has("autorun");
let engine = null;
let model = null; // the .safetensors bytes to run
let trainedModel = null;

function fail(where, error) {
    const message = `${where}: ${error && error.message ? error.message : error}`;
    $("status").innerHTML = `<span class="bad">${message}</span>`;
    window.pageResult = { error: message };
    document.title = "failed";
}

// wgpu's web backend leaves the adapter's name empty: the browser's own GPUAdapterInfo names it
async function browserAdapterName() {
    const adapter = await navigator.gpu.requestAdapter();
    const info = adapter ? adapter.info : {};
    return [info.vendor, info.architecture, info.description].filter((s) => s).join(" ");
}

function showAdapter(json, name) {
    const a = JSON.parse(json);
    a.name = name || a.name;
    const rows = [
        ["adapter", a.name],
        ["backend", a.backend],
        ["device type", a.device_type],
        ["timestamps", a.timestamps ? "yes" : "no"],
        ...Object.entries(a.limits),
    ];
    $("adapter").innerHTML = rows.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join("");
    return a;
}

// The loss curve: log-scale y, the persistence baseline dashed.
function draw(losses, baseline, total) {
    const canvas = $("curve");
    const g = canvas.getContext("2d");
    const [w, h, left, bottom] = [canvas.width, canvas.height, 54, 26];
    g.clearRect(0, 0, w, h);
    const values = losses.concat([baseline]).filter((v) => v > 0 && isFinite(v));
    const hi = Math.log10(Math.max(...values)) + 0.1;
    const lo = Math.log10(Math.min(...values)) - 0.1;
    const x = (i) => left + ((w - left - 10) * i) / Math.max(total - 1, 1);
    const y = (v) => 8 + ((h - bottom - 8) * (hi - Math.log10(v))) / (hi - lo);
    g.strokeStyle = "#999";
    g.fillStyle = "#555";
    g.font = "11px system-ui";
    g.beginPath();
    g.moveTo(left, 8);
    g.lineTo(left, h - bottom);
    g.lineTo(w - 10, h - bottom);
    g.stroke();
    for (let p = Math.ceil(lo); p <= Math.floor(hi); p++) {
        g.fillText(`1e${p}`, 8, y(10 ** p) + 4);
    }
    g.fillText("step", w - 40, h - 8);
    g.fillText(`${total}`, x(total - 1) - 16, h - bottom + 14);
    g.setLineDash([5, 4]);
    g.strokeStyle = "#c77";
    g.beginPath();
    g.moveTo(left, y(baseline));
    g.lineTo(w - 10, y(baseline));
    g.stroke();
    g.fillStyle = "#c77";
    g.fillText("predict 'no change'", w - 130, y(baseline) - 4);
    g.setLineDash([]);
    g.strokeStyle = "#1f5fbf";
    g.lineWidth = 1.6;
    g.beginPath();
    losses.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
    g.stroke();
    g.lineWidth = 1;
}

async function train() {
    $("train").disabled = true;
    const [hidden, steps, lr] = [+$("hidden").value, +$("steps").value, +$("lr").value];
    const trainer = await SineTrainer.create(engine, hidden, lr, 0n);
    const baseline = trainer.baseline();
    const losses = [];
    const start = performance.now();
    while (losses.length < steps) {
        const chunk = await trainer.steps(Math.min(5, steps - losses.length));
        losses.push(...chunk);
        const seconds = (performance.now() - start) / 1000;
        draw(losses, baseline, steps);
        $("train-figures").innerHTML =
            `step ${losses.length} / ${steps}<br>` +
            `loss ${losses[losses.length - 1].toFixed(5)} (first ${losses[0].toFixed(5)})<br>` +
            `baseline ${baseline.toFixed(5)}<br>` +
            `${(losses.length / seconds).toFixed(1)} steps/s`;
    }
    const seconds = (performance.now() - start) / 1000;
    trainedModel = await trainer.safetensors();
    trainer.free();
    $("use-trained").disabled = false;
    $("train").disabled = false;
    return { losses, baseline, stepsPerSecond: steps / seconds, hidden, steps };
}

async function run() {
    const text = $("input").value.trim();
    const input = text ? Float32Array.from(text.split(/[\s,]+/).map(Number)) : new Float32Array(0);
    const json = await engine.run_safetensors(model, input, +$("seq").value, +$("batch").value, 7n);
    const r = JSON.parse(json);
    const verdict = r.within_tolerance ? '<span class="ok">within</span>' : '<span class="bad">outside</span>';
    $("run-figures").innerHTML =
        `kernel <code>${r.kernel}</code>, output ${JSON.stringify(r.output_shape)}; ` +
        `largest |GPU − CPU| = ${r.max_abs_difference.toExponential(2)}, ${verdict} ${r.tolerance}`;
    $("run-output").textContent = Object.entries(r)
        .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
        .join("\n");
    window.lastRun = r;
    return r;
}

async function main() {
    await init();
    engine = await Engine.create(false);
    const adapter = showAdapter(engine.adapter(), await browserAdapterName());
    $("status").textContent = "ready";
    $("train").onclick = () => train().catch((e) => fail("training", e));
    $("file").onchange = async () => {
        const file = $("file").files[0];
        if (!file) return;
        model = new Uint8Array(await file.arrayBuffer());
        $("run").disabled = false;
        $("status").textContent = `loaded ${file.name} (${model.length} bytes)`;
    };
    $("use-trained").onclick = () => {
        model = trainedModel;
        $("run").disabled = false;
        $("status").textContent = "the model just trained is loaded";
    };
    $("run").onclick = () => run().catch((e) => fail("run", e));
    if (!autorun) return;
    const trained = await train();
    model = trainedModel;
    $("run").disabled = false;
    const ran = await run();
    window.pageResult = {
        adapter: adapter.name,
        backend: adapter.backend,
        baseline: trained.baseline,
        firstLoss: trained.losses[0],
        lastLoss: trained.losses[trained.losses.length - 1],
        steps: trained.steps,
        stepsPerSecond: trained.stepsPerSecond,
        maxAbsDifference: ran.max_abs_difference,
        withinTolerance: ran.within_tolerance,
        kernel: ran.kernel,
    };
    $("status").textContent = "autorun done";
    document.title = "done";
}

main().catch((e) => fail("start", e));
