"""GPU benchmark (issue 14): how fast the paper's training steps run, and what that makes of its sweep.

Times the training step the loops run (`s2i_models/train/fast_step.py`) at full width, batch 64, fp32 with
TF32 allowed, on synthetic data held on the GPU, in five ways:

  plain             eager, contiguous tensors, torch's default SGD (the reference)
  channels_last     eager, channels_last, fused SGD
  graphed           the whole step as CUDA graphs (`step: graphed`), channels_last, fused SGD
  compiled          torch.compile of the networks (`compile: true`), channels_last, fused SGD
  compiled+graphed  both

for the GAN at dims 128, 512 and 2048 (G's step, and D's then G's on D's epochs) and the autoencoder at 512;
then trains 1, 2 and 3 GANs (dim 512, graphed) at once on the one GPU, as separate processes, and with CUDA
MPS as well when `nvidia-cuda-mps-control` is there. It prints one table: step times, samples per second,
projections for the paper's 4000 epochs (48,945 training samples an epoch, SPEC §1; D updated in one epoch
of 5) and 1000 autoencoder epochs, and the five-dimension sweep one at a time and N at once.

Each (work, dim, eager or compiled) runs in a process of its own. The compiled ones compile at once first
(minutes of CPU; nothing is timed meanwhile); then each eager one in turn warms up (cuDNN's algorithm search)
and is timed with the machine to itself; then the compiled ones are timed one at a time. Under 8 minutes on
one H200 (`--budget`, 420 s: what does not fit is left out, and the table says so).

    python benchmarks/gpu_sweep.py [--json out.json] [--budget 420] [--no-compile] [--no-mps]
    python benchmarks/gpu_sweep.py --smoke     # on the CPU, width 0.0625, a few steps: the code paths only

Without a GPU it says that it needs one and exits 0; with S2I_REQUIRE_GPU=1 it exits 2 instead.
Not timed: data loading beyond the in-memory gather, validation, checkpoints, per-epoch judging (about 2 %
of an epoch at full width, README).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SAMPLES = 48_945  # one training epoch: 9,789 segments x 5 classes (SPEC §1)
GAN_EPOCHS, AE_EPOCHS = 4000, 1000  # the paper's GAN; AutoencoderConfig's default (the paper: 1,000-2,000)
N_GD = 5  # D trains in one epoch of five
SWEEP_DIMS = (128, 256, 512, 1024, 2048)
REQUIRE_GPU = "S2I_REQUIRE_GPU"
MARK = "@@ "  # a worker's protocol lines on stdout start with this
STATS = {"min": -12.0, "max": 3.0}
SPEED = {"memory_format": "channels_last", "sgd": "fused"}
MODES = {
    "plain": {},
    "channels_last": SPEED,
    "graphed": {"step": "graphed", **SPEED},
    "compiled": {"compile": True, **SPEED},
    "compiled+graphed": {"compile": True, "step": "graphed", **SPEED},
}
EAGER, COMPILED = ["plain", "channels_last", "graphed"], ["compiled", "compiled+graphed"]


# ---- a worker: one (work, dim), several modes -------------------------------------------------------------------


def emit(**fields) -> None:
    print(MARK + json.dumps(fields), flush=True)


def forever(loader):
    while True:
        yield from loader


class Unit:
    """One mode of one work, built and warmed up (compiled, captured); `time` then measures its steps."""

    def __init__(self, spec: dict, mode: str, data: dict) -> None:
        import torch

        from s2i_models.loaders import InMemoryBatches
        from s2i_models.train.fast_step import graph_fallback

        self.spec, self.mode, self.device = spec, mode, spec["device"]
        options = MODES[mode]
        cuda = self.device == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() if cuda else 0
        started = time.perf_counter()
        torch.manual_seed(0)
        if spec["work"] == "gan":
            from s2i_models.losses import MovingAverageAdversarial
            from s2i_models.train.fast_step import GanStep
            from s2i_models.train.gan import GanConfig, build_training

            config = GanConfig(dim=spec["dim"], width=spec["width"], batch_size=spec["batch"], **options)
            generator, discriminator, optimizer_g, optimizer_d, scaler = build_training(config, self.device)
            generator.train()
            discriminator.train()
            discriminator.requires_grad_(False)  # as train_gan holds it between D's updates
            self.step = GanStep(
                config, generator, discriminator, optimizer_g, optimizer_d, scaler, self.device
            )
            self.step.begin_epoch(MovingAverageAdversarial(config.adversarial_average_epochs))
            fields = {"frames": data["frames"], "embeddings": data["embeddings"]}
            self.kinds = [False, True]  # G's step; D's then G's
        else:
            from s2i_models.train.autoencoder import AutoencoderConfig, build_training
            from s2i_models.train.fast_step import AutoencoderStep

            config = AutoencoderConfig(
                dim=spec["dim"], width=spec["width"], batch_size=spec["batch"], **options
            )
            model, optimizer, scaler = build_training(config, self.device)
            model.train()
            self.step = AutoencoderStep(config, model, optimizer, scaler, STATS, self.device)
            self.step.begin_epoch()
            fields = {"mels": data["mels"]}
            self.kinds = [None]
        self.batches = forever(
            InMemoryBatches(device=self.device, batch_size=spec["batch"], seed=0, **fields)
        )
        for kind in self.kinds:
            for _ in range(spec["warmup"]):
                self.run(kind)
        self.sync()
        self.setup_s = time.perf_counter() - started
        self.memory_gb = (torch.cuda.max_memory_allocated() - before) / 1e9 if cuda else None
        self.note = ""
        if config.step == "graphed" and self.step.graphs is None:
            reason = graph_fallback(config.step, self.device, config.precision) or "capturing failed (stderr)"
            self.note = f"ran the plain step: {reason}"

    def run(self, kind) -> None:
        if kind is None:
            self.step(next(self.batches))
        else:
            self.step(next(self.batches), kind)

    def sync(self) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()

    def time(self, steps: int) -> dict:
        """Milliseconds a step of each kind, after a few more warm-up steps."""
        times = []
        for kind in self.kinds:
            for _ in range(self.spec["warmup"]):
                self.run(kind)
            self.sync()
            started = time.perf_counter()
            for _ in range(steps):
                self.run(kind)
            self.sync()
            times.append(1000 * (time.perf_counter() - started) / steps)
        return {"g_step_ms": times[0], "dg_step_ms": times[1] if len(times) > 1 else None}

    def window(self, seconds: float) -> dict:
        """Steps for `seconds` (D's step one in N_GD, the epochs' average): samples per second."""
        steps, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for _ in range(self.spec["chunk"]):  # steps between syncs
                self.run(steps % N_GD == N_GD - 1)
                steps += 1
            self.sync()
        elapsed = time.perf_counter() - started
        return {"steps": steps, "seconds": elapsed, "samples_per_s": steps * self.spec["batch"] / elapsed}


def synthetic(spec: dict) -> dict:
    import torch

    n = spec["batch"] * spec["batches"]
    g = torch.Generator().manual_seed(0)
    if spec["work"] == "gan":
        return {
            "frames": torch.randint(0, 256, (n, 96, 96, 3), dtype=torch.uint8, generator=g).to(
                spec["device"]
            ),
            "embeddings": (torch.rand(n, spec["dim"], generator=g) * 2 - 1).to(spec["device"]),
        }
    return {"mels": (torch.randn(n, 100, 128, generator=g) * 2.5 - 5).half().to(spec["device"])}


def worker(spec: dict) -> None:
    """Build and warm up every mode, say "ready", wait for "go" on stdin, then time them one by one."""
    import torch

    from s2i_models.train import training_mode

    torch.backends.cuda.matmul.allow_tf32 = True  # fp32 with TF32 allowed (cuDNN's convolutions: by default)
    torch.backends.cudnn.allow_tf32 = True
    cuda = spec["device"] == "cuda"
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    emit(event="started", device=torch.cuda.get_device_name() if cuda else "cpu", pid=os.getpid())
    with training_mode(spec["device"]):
        data = synthetic(spec)
        units: list[Unit | dict] = []
        for mode in spec["modes"]:
            try:
                units.append(Unit(spec, mode, data))
            except Exception as error:  # one mode's failure is a row, not the end of the benchmark
                units.append({"mode": mode, "error": f"{type(error).__name__}: {error}"[:300]})
        emit(event="ready")
        if sys.stdin.readline().strip() != "go":
            return
        for unit in units:
            if isinstance(unit, dict):
                emit(event="row", **unit)
                continue
            try:
                measured = unit.window(spec["window"]) if spec.get("window") else unit.time(spec["steps"])
            except Exception as error:
                measured = {"error": f"{type(error).__name__}: {error}"[:300]}
            extra = {"setup_s": unit.setup_s, "memory_gb": unit.memory_gb, "note": unit.note}
            emit(event="row", mode=unit.mode, **extra, **measured)
    emit(event="done")


# ---- the coordinator -------------------------------------------------------------------------------------------


class Worker:
    """A worker process, its protocol lines read by a thread into a queue."""

    def __init__(self, spec: dict, env: dict, logs: Path) -> None:
        self.spec = spec
        self.log = logs / f"{spec['name']}-{len(list(logs.iterdir()))}.log"
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log.open("w"),
            text=True,
            env=env,
        )
        self.lines: queue.Queue = queue.Queue()
        self.device = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith(MARK):
                self.lines.put(json.loads(line[len(MARK) :]))
        self.lines.put({"event": "exit"})

    def until(self, event: str, deadline: float) -> list[dict] | None:
        """The messages up to `event` (None: the worker ended or the deadline passed first)."""
        seen = []
        while True:
            try:
                message = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if message["event"] == "started":
                self.device = message["device"]
            seen.append(message)
            if message["event"] == event:
                return seen
            if message["event"] == "exit":
                return None

    def send(self, line: str) -> None:
        try:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def stop(self) -> None:
        if self.process.poll() is None:
            self.send("quit")
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def failure(self, what: str) -> str:
        tail = self.log.read_text(errors="replace").strip().splitlines()[-3:] if self.log.exists() else []
        return f"{what}; stderr: {' | '.join(tail)}"[:400] if tail else what


class Group:
    """Workers started at once; `warm` waits until they are ready, `measure` times them one at a time (or
    all together), `stop` ends them. Rows of what failed are kept in `rows`."""

    def __init__(self, specs: list[dict], env: dict, logs: Path) -> None:
        self.workers = [Worker(spec, env, logs) for spec in specs]
        self.ready: list[Worker] = []
        self.rows: list[dict] = []

    def warm(self, seconds: float) -> None:
        ready_by = time.monotonic() + seconds
        for w in self.workers:
            if w.until("ready", ready_by) is None:
                error = w.failure(f"not warm within {seconds:.0f} s")
                self.rows += [{**base_row(w.spec, mode), "error": error} for mode in w.spec["modes"]]
                w.stop()
            else:
                self.ready.append(w)

    def measure(self, seconds: float, together: bool = False) -> list[dict]:
        for group in [self.ready] if together else [[w] for w in self.ready]:
            for w in group:
                w.send("go")
            for w in group:
                seen = w.until("done", time.monotonic() + seconds)
                if seen is None:
                    self.rows.append({**base_row(w.spec, "?"), "error": w.failure("no result in time")})
                    continue
                self.rows += [{**base_row(w.spec, m["mode"]), **m} for m in seen if m["event"] == "row"]
        for row in self.rows:
            row.pop("event", None)
        return self.rows

    @property
    def device(self) -> str | None:
        return next((w.device for w in self.workers if w.device), None)

    def stop(self) -> None:
        for w in self.workers:
            w.stop()


def base_row(spec: dict, mode: str) -> dict:
    work = f"gan_{spec['dim']}" if spec["work"] == "gan" else f"autoencoder_{spec['dim']}"
    return {"work": work, "mode": mode, "dim": spec["dim"], "kind": spec["work"]}


def add_projections(row: dict, batch: int) -> None:
    """samples/s and epoch seconds (the average over D's 1-in-5 epochs), hours for the paper's epochs."""
    if row.get("error") or "g_step_ms" not in row:
        return
    steps = math.ceil(SAMPLES / batch)
    g = row["g_step_ms"] / 1000
    if row["kind"] == "gan":
        dg = row["dg_step_ms"] / 1000
        mean_step = ((N_GD - 1) * g + dg) / N_GD
        row["epoch_s"] = steps * mean_step
        row["hours"] = GAN_EPOCHS * row["epoch_s"] / 3600
        row["epochs"] = GAN_EPOCHS
    else:
        mean_step = g
        row["epoch_s"] = steps * g
        row["hours"] = AE_EPOCHS * row["epoch_s"] / 3600
        row["epochs"] = AE_EPOCHS
    row["samples_per_s"] = batch / mean_step


def sweep_hours(hours: dict[int, float], rates: dict[int, float], slots: int) -> float:
    """The five dims' GANs on one GPU, `slots` at a time (largest first): `rates[k]` is each run's speed
    when k run at once, relative to running alone."""
    waiting = sorted(hours.values(), reverse=True)
    running, clock = [], 0.0
    while waiting or running:
        while waiting and len(running) < slots:
            running.append(waiting.pop(0))
        rate = rates[max(k for k in rates if k <= len(running))]
        step = min(running) / rate
        clock += step
        running = [left - step * rate for left in running if left - step * rate > 1e-9]
    return clock


def five_dims(best: dict[int, float]) -> dict[int, float] | None:
    """Hours for 4000 epochs at each of the paper's dims: 256 and 1024 halfway (in log2 dim) between."""
    if not all(d in best for d in (128, 512, 2048)):
        return None
    return {
        128: best[128],
        256: (best[128] + best[512]) / 2,
        512: best[512],
        1024: (best[512] + best[2048]) / 2,
        2048: best[2048],
    }


def fmt(value, digits: int = 1, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{value:,.0f}{unit}"
    return f"{value:.{digits}f}{unit}"


def table(rows: list[dict], summary: list[tuple[str, str]], device: str, batch: int, width: float) -> str:
    lines = [
        f"GPU: {device}; batch {batch}, width {width}, fp32 (TF32 allowed); epoch = {SAMPLES:,} samples, "
        f"D updated in 1 epoch of {N_GD}",
        "",
        "setup s: building and warming up (capturing; compiling, with the other compiled workers side by side)",
        "",
        "| work | mode | setup s | G step ms | D+G step ms | samples/s | epoch s | projected | memory GB | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if r["work"] == "gan_512 sweep":
            name = f"gan_512 x{r['concurrent']}" + (" (MPS)" if r.get("mps") else "")
            speed = f"{fmt(r.get('samples_per_s'), 0)} total"
            projected = f"{r['speedup']:.2f}x of one" if r.get("speedup") else "–"
            note = r.get("error") or f"{r.get('steps', 0)} steps in {fmt(r.get('seconds'))} s"
            lines.append(f"| {name} | {r['mode']} | – | – | – | {speed} | – | {projected} | – | {note} |")
            continue
        projected = f"{fmt(r.get('hours'), 2)} h ({r['epochs']} epochs)" if r.get("hours") else "–"
        lines.append(
            f"| {r['work']} | {r['mode']} | {fmt(r.get('setup_s'))} | {fmt(r.get('g_step_ms'), 2)} | "
            f"{fmt(r.get('dg_step_ms'), 2)} | {fmt(r.get('samples_per_s'), 0)} | {fmt(r.get('epoch_s'), 2)} | "
            f"{projected} | {fmt(r.get('memory_gb'), 2)} | {r.get('error') or r.get('note') or ''} |"
        )
    for what, value in summary:
        lines.append(f"| **{what}** | | | | | | | **{value}** | | |")
    return "\n".join(lines)


def why_no_cuda() -> str:
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    hidden = "" if visible is None else f"; CUDA_VISIBLE_DEVICES={visible!r}"
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build{hidden}"
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no device{hidden}"


def start_mps(folder: Path) -> tuple[dict | None, str]:
    """An MPS control daemon of our own (pipe and log folders in `folder`): (its clients' env, why not)."""
    control = shutil.which("nvidia-cuda-mps-control")
    if control is None:
        return None, "nvidia-cuda-mps-control not found"
    env = dict(os.environ)
    env["CUDA_MPS_PIPE_DIRECTORY"], env["CUDA_MPS_LOG_DIRECTORY"] = str(folder / "pipe"), str(folder / "log")
    for name in ("pipe", "log"):
        (folder / name).mkdir(parents=True)
    try:
        done = subprocess.run([control, "-d"], env=env, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"could not start MPS: {error}"
    if done.returncode != 0:
        return None, f"could not start MPS: {(done.stderr or done.stdout).strip()[:200]}"
    return env, ""


def stop_mps(env: dict) -> None:
    control = shutil.which("nvidia-cuda-mps-control")
    if control is not None:
        subprocess.run([control], input="quit\n", env=env, capture_output=True, text=True, timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smoke", action="store_true", help="CPU, width 0.0625, a few steps: code paths only"
    )
    parser.add_argument("--budget", type=float, default=420, help="seconds for the whole run (default 420)")
    parser.add_argument("--ready-timeout", type=float, default=240, help="seconds to build, compile, capture")
    parser.add_argument("--steps", type=int, default=40, help="timed steps of each kind")
    parser.add_argument("--window", type=float, default=10, help="seconds each multi-GAN run is timed")
    parser.add_argument("--no-compile", action="store_true", help="leave out the compiled modes")
    parser.add_argument("--no-mps", action="store_true", help="leave out the multi-GAN runs under MPS")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return 0

    started = time.monotonic()
    if args.smoke:
        device, width, batch, dims, ae_dim = "cpu", 0.0625, 8, [128], 512
        common = {"device": device, "width": width, "batch": batch, "warmup": 1, "steps": 1}
        common |= {"batches": 2, "chunk": 1, "threads": 1}
        window, concurrency, compiled = 0.3, [1, 2], False
    else:
        import torch

        if not torch.cuda.is_available():
            if os.environ.get(REQUIRE_GPU) == "1":
                print(
                    f"{REQUIRE_GPU}=1 but no CUDA device is visible ({why_no_cuda()}): gpu_sweep.py times "
                    "the training steps on a GPU; check nvidia-smi, the container's GPU access and that torch "
                    "is a CUDA build",
                    file=sys.stderr,
                )
                return 2
            print(
                f"gpu_sweep.py needs a CUDA device ({why_no_cuda()}): run it on a machine with a GPU, or "
                "with --smoke for a quick CPU run of its code paths"
            )
            return 0
        device, width, batch, dims, ae_dim = "cuda", 1.0, 64, [128, 512, 2048], 512
        common = {"device": device, "width": width, "batch": batch, "warmup": 3, "steps": args.steps}
        common |= {"batches": 64, "chunk": 10}
        window, concurrency, compiled = args.window, [1, 2, 3], not args.no_compile

    def left() -> float:
        return args.budget - (time.monotonic() - started)

    def spec(work: str, dim: int, modes: list[str], **more) -> dict:
        return {"work": work, "dim": dim, "modes": modes, "name": f"{work}{dim}", **common, **more}

    specs = [spec("gan", d, EAGER) for d in dims] + [spec("ae", ae_dim, EAGER)]
    if compiled:
        specs += [spec("gan", d, COMPILED) for d in dims] + [spec("ae", ae_dim, COMPILED)]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="gpu-sweep-") as folder:
        logs = Path(folder) / "logs"
        logs.mkdir()
        # The compiled workers compile at once (minutes of CPU; nothing is timed meanwhile). Then each eager
        # worker in turn builds, warms up (cuDNN's algorithm search) and is timed with the GPU to itself; then
        # the compiled workers are timed one at a time.
        env = dict(os.environ)
        slow = Group([x for x in specs if x["modes"] == COMPILED], env, logs)
        try:
            if slow.workers:
                print(f"compiling in {len(slow.workers)} workers ...", file=sys.stderr, flush=True)
            slow.warm(min(args.ready_timeout, max(30.0, left() - 220)))
            device_name = slow.device
            for one in (x for x in specs if x["modes"] != COMPILED):
                if left() < 40:
                    rows += [
                        {**base_row(one, m), "error": "left out: past the time budget"} for m in one["modes"]
                    ]
                    continue
                print(f"timing {one['name']} ...", file=sys.stderr, flush=True)
                group = Group([one], env, logs)
                try:
                    group.warm(120)
                    rows += group.measure(120)
                finally:
                    group.stop()
                device_name = device_name or group.device
            rows += slow.measure(120)
        finally:
            slow.stop()
        if not compiled:
            rows += [
                {
                    "work": f"gan_{d}",
                    "mode": m,
                    "dim": d,
                    "kind": "gan",
                    "note": "left out (--no-compile or --smoke)",
                }
                for d in dims
                for m in COMPILED
            ]
        for row in rows:
            add_projections(row, batch)

        # Several GANs on the one GPU: 1, 2, 3 processes at once, then 2 and 3 under MPS.
        runs: list[tuple[int, bool]] = [(n, False) for n in concurrency]
        mps_env, mps_why = None, "left out (--no-mps)" if args.no_mps else ""
        if not args.no_mps and not args.smoke:
            mps_env, mps_why = start_mps(Path(folder) / "mps")
            if mps_env is not None:
                runs += [(n, True) for n in concurrency if n > 1]
        try:
            for n, mps in runs:
                if left() < window + 40:
                    rows.append({"work": "gan_512 sweep", "mode": "graphed", "concurrent": n, "mps": mps,
                                 "error": "left out: past the time budget"})  # fmt: skip
                    continue
                print(f"{n} GAN(s) at once{' under MPS' if mps else ''} ...", file=sys.stderr, flush=True)
                one = spec("gan", 512, ["graphed"], window=window)
                specs_n = [{**one, "name": f"sweep{n}-{i}"} for i in range(n)]
                env = mps_env if mps else dict(os.environ)
                group = Group(specs_n, env, logs)
                try:
                    group.warm(120)
                    measured = group.measure(window + 60, together=True)
                finally:
                    group.stop()
                errors = [m["error"] for m in measured if m.get("error")]
                total = sum(m.get("samples_per_s", 0.0) for m in measured) if not errors else None
                rows.append(
                    {"work": "gan_512 sweep", "mode": "graphed", "concurrent": n, "mps": mps, "samples_per_s": total,
                     "steps": sum(m.get("steps", 0) for m in measured),
                     "seconds": max((m.get("seconds", 0.0) for m in measured), default=0.0),
                     "error": "; ".join(errors)[:300] or None}
                )  # fmt: skip
        finally:
            if mps_env is not None:
                stop_mps(mps_env)
        if mps_why:
            rows.append(
                {"work": "gan_512 sweep", "mode": "graphed", "concurrent": 2, "mps": True, "error": mps_why}
            )

    # Speedups and projections
    alone = next(
        (r["samples_per_s"] for r in rows if r.get("concurrent") == 1 and r.get("samples_per_s")), None
    )
    for r in rows:
        if r.get("concurrent") and r.get("samples_per_s") and alone:
            r["speedup"] = r["samples_per_s"] / alone
    best: dict[int, float] = {}
    best_mode: dict[int, str] = {}
    for r in rows:
        if r.get("kind") == "gan" and r.get("hours") and r["hours"] < best.get(r["dim"], math.inf):
            best[r["dim"]], best_mode[r["dim"]] = r["hours"], r["mode"]
    summary = []
    main_dim = 512 if 512 in best else 128  # --smoke times dim 128 only
    if main_dim in best:
        summary.append(
            (f"gan_{main_dim}, {GAN_EPOCHS} epochs ({best_mode[main_dim]})", f"{best[main_dim]:.2f} h")
        )
    hours = five_dims(best)
    if hours is not None:
        summary.append(("five dims, one at a time", f"{sum(hours.values()):.1f} h"))
        for mps in (False, True):
            measured = {r["concurrent"]: r["speedup"] / r["concurrent"] for r in rows
                        if r.get("speedup") and bool(r.get("mps")) == mps}  # fmt: skip
            if mps and measured:
                measured.setdefault(1, 1.0)
            for n in sorted(k for k in measured if k > 1):
                rates = {k: v for k, v in measured.items() if k <= n}
                if 1 in rates:
                    label = f"five dims, {n} at once{' (MPS)' if mps else ''}"
                    summary.append((label, f"{sweep_hours(hours, rates, n):.1f} h"))
    device_text = device_name or device
    print(table(rows, summary, device_text, batch, width))
    print(f"\n({time.monotonic() - started:.0f} s in all)", flush=True)
    if args.json:
        args.json.write_text(
            json.dumps({"device": device_text, "rows": rows, "summary": dict(summary)}, indent=1, default=str)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
