"""``edgesplit demo``: the device answering a stream of requests from its sensors.

Glasses: rendered camera frames -> PP-OCRv4 INT8. Earbuds: a synthesised audio stream -> Silero VAD
(always on) -> DS-CNN KWS INT8 on each detected utterance. Phone: typed requests -> MiniLM INT8 +
intent head -> where the request should be served. Every input is generated from the seed, so the
demo needs no camera, microphone, network or server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.live import Live
from rich.table import Table

from edgesplit.output import console, err_console, fail, write_json


@dataclass
class DemoEvent:
    device: str
    workload: str
    request: int
    truth: str
    answer: str
    confidence: float
    latency_ms: float
    correct: bool
    ran_on: str = "device"


def audio_stream(n_utterances: int, seed: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Utterances by held-out voices separated by 0.6-1.4 s of quiet noise; (onset, word) truth."""
    from device.audio.kws_data import KEYWORDS, UNKNOWN_WORDS
    from device.audio.synth import ACCENTS, Utterance, split_variants, synthesize

    rng = np.random.default_rng(seed)
    variants = split_variants()["test"]
    pieces, truth, pos = [], [], 0
    for _ in range(n_utterances):
        gap = rng.normal(0, 0.003, int(rng.uniform(0.6, 1.4) * 16_000)).astype(np.float32)
        pieces.append(gap)
        pos += gap.size
        word = str(rng.choice(KEYWORDS)) if rng.random() < 0.85 else str(rng.choice(UNKNOWN_WORDS))
        utt = Utterance(
            word,
            str(rng.choice(ACCENTS)),
            str(rng.choice(variants)),
            int(rng.integers(140, 200)),
            int(rng.integers(35, 65)),
        )
        speech = synthesize(utt)
        speech = 0.6 * speech / (np.abs(speech).max() + 1e-9)
        pieces.append(speech + rng.normal(0, 0.003, speech.size).astype(np.float32))
        truth.append((pos, word))
        pos += speech.size
    pieces.append(np.zeros(16_000, np.float32))
    return np.concatenate(pieces), truth


def earbuds_events(n: int, seed: int, threads: int) -> Iterator[DemoEvent]:
    from device.audio.features import CLIP_SAMPLES
    from device.audio.kws_data import KEYWORDS, UNKNOWN
    from device.audio.vad import SileroVad
    from device.workloads import kws

    audio, truth = audio_stream(n, seed)
    vad = SileroVad(threads=1)
    spotter = kws.KeywordSpotter(kws.model_path("int8"), threads)
    for i, seg in enumerate(vad.segments(audio)):
        t0 = time.perf_counter()
        centre = (seg.start_sample + seg.end_sample) // 2
        start = max(0, centre - CLIP_SAMPLES // 2)
        res = spotter.classify(audio[start : start + CLIP_SAMPLES])
        latency = (time.perf_counter() - t0) * 1e3
        # The truth is the utterance whose onset is nearest before the segment's end.
        onsets = [(abs(o - seg.start_sample), w) for o, w in truth]
        word = min(onsets)[1]
        expected = word if word in KEYWORDS else UNKNOWN
        yield DemoEvent(
            "earbuds",
            "earbuds-kws",
            i,
            word,
            res.label,
            res.confidence,
            latency,
            res.label == expected,
        )


def glasses_events(n: int, seed: int, threads: int) -> Iterator[DemoEvent]:
    from device.metrics import character_error_rate
    from device.vision.render import render_frame
    from device.workloads import ocr

    pipe = ocr.OcrPipeline(ocr.model_paths("int8"), threads)
    for i in range(n):
        frame = render_frame(seed * 1000 + i)
        t0 = time.perf_counter()
        res = pipe(frame.image)
        latency = (time.perf_counter() - t0) * 1e3
        cer = character_error_rate([res.text], [frame.text])
        yield DemoEvent(
            "glasses", "glasses-ocr", i, frame.text, res.text, res.confidence, latency, cer <= 0.05
        )


def phone_events(n: int, seed: int, threads: int) -> Iterator[DemoEvent]:
    """Typed/spoken requests (held-out templates): intent on the device, and where to serve it."""
    from device.text.intents import LABELS, utterances
    from device.workloads import intent

    clf = intent.IntentClassifier("int8", threads)
    texts, labels = utterances("test", per_template=1, seed=seed)
    order = np.random.default_rng(seed).permutation(len(texts))[:n]
    for i, j in enumerate(order):
        t0 = time.perf_counter()
        res = clf.classify(texts[j])
        latency = (time.perf_counter() - t0) * 1e3
        yield DemoEvent("phone", "phone-intent", i, f"{texts[j]} [{LABELS[labels[j]]}]",
                        f"{res.intent} -> {res.route}", res.confidence, latency,
                        res.intent == LABELS[labels[j]], ran_on="device")  # fmt: skip


def _events_table(events: list[DemoEvent]) -> Table:
    table = Table(title="edgesplit demo: requests answered on the device", expand=False)
    for col in ("device", "#", "ran on", "truth", "answer", "conf", "ms", "ok"):
        table.add_column(col, overflow="fold")
    for e in events[-14:]:
        table.add_row(
            e.device,
            str(e.request),
            e.ran_on,
            e.truth[:40],
            e.answer[:40],
            f"{e.confidence:.2f}",
            f"{e.latency_ms:.1f}",
            "[green]yes[/]" if e.correct else "[red]no[/]",
        )
    return table


def summarise(events: list[DemoEvent]) -> list[dict]:
    out = []
    for device in sorted({e.device for e in events}):
        ev = [e for e in events if e.device == device]
        lat = np.array([e.latency_ms for e in ev])
        out.append(
            {
                "device": device,
                "workload": ev[0].workload,
                "requests": len(ev),
                "correct_fraction": float(np.mean([e.correct for e in ev])),
                "median_ms": float(np.median(lat)),
                "p90_ms": float(np.percentile(lat, 90)),
            }
        )
    return out


def demo_command(
    frames: Annotated[int, typer.Option(min=1, help="glasses camera frames to read")] = 6,
    utterances: Annotated[
        int, typer.Option(min=1, help="spoken commands in the earbud stream")
    ] = 8,
    requests: Annotated[int, typer.Option(min=1, help="phone assistant requests")] = 6,
    seed: Annotated[int, typer.Option(help="seed for every generated input")] = 7,
    threads: Annotated[int, typer.Option(min=1, help="ORT intra-op threads")] = 1,
    headless: Annotated[bool, typer.Option(help="no live view (scripts, CI)")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="write events + summary")] = None,
) -> None:
    """Run the device on bundled streams: glasses OCR, earbud keywords, phone intents."""
    from device import workloads
    from device.errors import EdgesplitError

    try:
        for name in ("glasses-ocr", "earbuds-kws", "phone-intent"):
            wl = workloads.get(name)
            if not wl.int8_ready():
                with err_console.status(f"first run: quantising {name} to INT8..."):
                    wl.build_int8()
        events: list[DemoEvent] = []
        streams = [
            glasses_events(frames, seed, threads),
            earbuds_events(utterances, seed, threads),
            phone_events(requests, seed, threads),
        ]
        if headless:
            for stream in streams:
                events.extend(stream)
        else:
            with Live(_events_table(events), console=console, refresh_per_second=8) as live:
                for stream in streams:
                    for e in stream:
                        events.append(e)
                        live.update(_events_table(events))
    except EdgesplitError as exc:
        fail(str(exc))
    summary = summarise(events)
    table = Table(title="summary")
    for col in ("device", "workload", "requests", "correct", "median ms", "p90 ms"):
        table.add_column(col, justify="right")
    for s in summary:
        table.add_row(
            s["device"],
            s["workload"],
            str(s["requests"]),
            f"{s['correct_fraction']:.0%}",
            f"{s['median_ms']:.1f}",
            f"{s['p90_ms']:.1f}",
        )
    console.print(table)
    if json_out:
        write_json(json_out, {"events": [asdict(e) for e in events], "summary": summary})
