"""What a benchmark family gives the platform (`Family`), and the helpers the families share.

A family is one kind of benchmark, evaluated one way: TOFU-style question answering against a
retain oracle, WMDP-style four-choice accuracy, image classification. It serves one or more
benches (`synth-tofu` and `tofu`: generated, or the user's) and is everything the commands ask
about them: defaults, the options a bench takes, how it is prepared, how a run's batches, model,
evaluation and saving are made, what a sweep maximises, how a report is printed. Everything a
family needs at run time is imported inside its methods, so the registry (what `--help` lists)
loads without torch.
"""

from __future__ import annotations

import multiprocessing
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ofmu_ray.cache import Prepared
from ofmu_ray.config import MODELS, FinetuneConfig, Profile, TinyLlamaSpec
from ofmu_ray.errors import UsageError
from ofmu_ray.train.attacks import ROBUST_KEY, AttackConfig

if TYPE_CHECKING:
    from ofmu_ray.models.lora import LoraSpec
    from ofmu_ray.train.spec import RunSpec
    from ofmu_ray.train.task import Task

OPTIONS = ("model", "data", "oracle", "retain_logs", "prompt", "max_new_tokens")  # besides --split, --profile


@dataclass(frozen=True, kw_only=True)
class PrepareRequest:
    """Which benchmark to prepare, as the command line names it; a family reads the options its bench takes."""

    bench: str
    split: str | None = None  # None: the family's default for the bench
    profile: str = "tiny"  # generated benches: their size
    model: str | None = None
    data: str | None = None
    oracle: str | None = None
    retain_logs: str | None = None
    prompt: str = "auto"
    max_new_tokens: str | None = None  # None: the family's default
    cache_dir: str | None = None


class Family:
    """A benchmark family. Subclasses set the class attributes and implement `prepare`, `make_task`,
    `evaluate` and `print_report`; one line in `families/__init__.py` registers the instance."""

    name: ClassVar[str]  # its folder under families/
    label: ClassVar[str]  # what help texts call it, e.g. "TOFU-style"
    benches: ClassVar[dict[str, tuple[str, ...]]]  # each bench it serves -> the `OPTIONS` that bench takes
    default_splits: ClassVar[dict[str, str]]  # bench -> what `--split` means when it is not given
    modality: ClassVar[str]  # "qa", "corpus" or "image": which methods apply (`Method.modalities`)
    default_steps: ClassVar[int]  # forget batches of a run when neither `--steps` nor `--epochs` is given
    default_epochs: ClassVar[float | None] = None  # or passes over the forget split, when set (TOFU-style)
    default_methods: ClassVar[tuple[str, ...]]  # what a sweep runs when `--methods` is not given
    objectives: ClassVar[tuple[str, str]]  # what a sweep maximises by default
    allowed_objectives: ClassVar[tuple[str, ...]]  # what `--objectives` may name
    attacks: ClassVar[tuple[str, ...]] = ()  # what `--attacks` may name (`train.attacks.ATTACKS` it scores)
    attack_defaults: ClassVar[AttackConfig] = AttackConfig()  # how hard they push unless `--attack-set` says
    keep_best: ClassVar[tuple[str, ...]]  # what `--keep-best` may maximise
    result_files: ClassVar[tuple[str, str]]  # (per-item results, summary): written by a run and by `eval`
    results_label: ClassVar[str] = "per-item results"  # how `eval` names the first of them
    seed_metrics: ClassVar[tuple[str, ...]] = ()  # shown beside the objectives in the seed re-runs' table
    # The best value each x objective can take, where the anchored hypervolume's box ends (`tune.pareto.Region`)
    ideal_x: ClassVar[dict[str, float]] = {}
    # A target above this x cannot show forgetting on that split: its anchored hypervolume is "not measurable"
    measurable_below: ClassVar[dict[str, float]] = {}
    profiles: ClassVar[dict[str, Profile]] = {}  # generated benches: the sizes `--profile` names
    help: ClassVar[dict[str, str]] = {}  # CLI option -> this family's part of its help text (argparse's %%)

    def accepts(self, bench: str, option: str, command: str) -> bool:
        """Whether `bench` takes `option` (one of `OPTIONS`) in `command`."""
        return option in self.benches[bench]

    def check_attacks(self, attacks: tuple[str, ...], settings: dict | None = None) -> None:
        """`--attacks` names only attacks this family has, and `--attack-set` is what they take
        (checked before anything starts).

        Raises:
            UsageError: an unknown attack, or settings without attacks.
        """
        if settings and not attacks:
            raise UsageError("--attack-set without --attacks: which attacks should it set?")
        unknown = [a for a in attacks if a not in self.attacks]
        if unknown:
            have = (f"choose from {', '.join(self.attacks)}" if self.attacks
                    else f"{self.label} benchmarks have none yet")
            raise UsageError(f"unknown attack(s) {', '.join(unknown)}; {have}")
        self.attack_config(settings)

    def attack_config(self, settings: dict | None) -> AttackConfig:
        """This family's attack defaults with `--attack-set` pairs applied.

        Raises:
            UsageError: an unknown key or a value out of range.
        """
        return self.attack_defaults.parse(settings or {})

    def prepare(self, request: PrepareRequest, *, rebuild: bool = False, progress: bool = True) -> Prepared:
        """The prepared benchmark (generated and trained once, or the user's data and models checked and
        cached); with `rebuild`, built again.

        Raises:
            UsageError, DataError: an argument the bench cannot take, or data outside its schema.
            CacheError: the cached folder is damaged.
        """
        raise NotImplementedError

    def data_summary(self, request: PrepareRequest) -> dict | None:
        """What `prepare` reports when the request names data but nothing to prepare yet (None: prepare it)."""
        return None

    def references(self, prepared: Prepared, split: str, dtype: str, attacks: tuple[str, ...] = (),
                   attack_settings: dict | None = None) -> dict[str, dict[str, float]]:
        """Checks the split and computes what every run is measured against, once, before any run (and
        not in a worker). Returns the points a sweep's fronts are read against, named as a run's
        metrics: the target's (`"target"`; with `attacks`, also its worst case over them,
        `robust/<metric>`) and, where the benchmark has a retain oracle, the oracle's (`"oracle"`).
        By default, the target's evaluation alone (no robust point: a family with attacks overrides it)."""
        return {"target": self.evaluate(prepared, "target", split=split, dtype=dtype)[0]}

    def floors(self, prepared: Prepared, split: str, attacks: tuple[str, ...] = ()) -> dict[str, float]:
        """Per split key ("", "/<hard split>", and "/robust" with attacks), the x of the hypervolume's
        reference point; 0 for objectives that are shares or percentages."""
        return {"": 0.0} | ({ROBUST_KEY: 0.0} if attacks else {})

    def forget_rows(self, prepared: Prepared, split: str) -> int:
        """How many examples the forget split holds: what an epoch (`--epochs`) passes over."""
        raise NotImplementedError

    def make_task(self, spec: RunSpec, device) -> Task:
        """What the run loop unlearns on a worker: the model, its batches, its evaluation and its saving.
        Called on every rank; under Ray Train in the worker's process, which unpickles the bound method as
        its family's class and name (families hold no state)."""
        raise NotImplementedError

    def evaluate(self, prepared: Prepared, which: str, *, split: str, retain_logs: str | None = None,
                 dtype: str = "fp32") -> tuple[dict, dict | None]:
        """(summary metrics, per-item results or None) of `target`, `oracle` or a model folder."""
        raise NotImplementedError

    def print_report(self, prepared: Prepared) -> None:
        """The prepare report for a person (`ofmu-ray prepare` without `--json`)."""
        raise NotImplementedError


def prepare_command(bench: str, **options: str | None) -> str:
    """The command that rebuilds a prepared benchmark (named by a damaged folder's error)."""
    given = "".join(f" --{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in options.items() if v is not None)
    return f"ofmu-ray prepare --bench {bench}{given} --rebuild"


def embedded_model(profiles: dict[str, Profile], profile: str, model: str | None, own_bench: str,
                   pretrained: bool = False) -> str:
    """The embedded model a generated benchmark's `profile` is prepared with: `model`, else the profile's.
    With `pretrained`, a pretrained model's name (`models.pretrained.PRETRAINED`) is one too.

    Raises:
        UsageError: an unknown profile, or a model that is not embedded (pointing to `own_bench`,
            where the user's own models go).
    """
    from ofmu_ray.models.pretrained import PRETRAINED

    if profile not in profiles:
        raise UsageError(f"unknown profile {profile!r}; choose from: {', '.join(profiles)}")
    model = model or profiles[profile].model
    known = [*MODELS, *(PRETRAINED if pretrained else ())]
    if model not in known:
        raise UsageError(f"--model {model!r} is not an embedded model; choose from: {', '.join(known)} "
                         f"(your own model: --bench {own_bench} --data DIR --model PATH)")
    return model


def model_ref(option: str, ref: str, cache_dir: str | Path | None = None) -> str:
    """The user's model: a folder made absolute (checked to hold a model), a hub id (checked to
    load), or a pretrained model's name (`models.pretrained.PRETRAINED`: its folder, converted into
    `cache_dir` on first use).

    Raises:
        UsageError: naming `option`, when the folder holds no model or the hub id does not load.
    """
    from ofmu_ray.models.pretrained import PRETRAINED, pretrained_folder

    if ref in PRETRAINED:
        ref = pretrained_folder(ref, cache_dir)
    path = Path(ref).expanduser()
    if not path.exists():
        if ref.startswith((".", "/", "~")) or ref.count("/") > 1:
            raise UsageError(f"{option} {ref}: no such folder (and not a hub id such as org/name)")
        from transformers import AutoConfig

        try:  # now, not in the middle of a sweep
            AutoConfig.from_pretrained(ref)
        except OSError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(f"{option} {ref}: cannot load it from the hub or its cache ({first}); "
                             "download it first or pass a model folder") from e
        return ref
    if not ((path / "config.json").is_file() or (path / "adapter_config.json").is_file()):
        raise UsageError(f"{option} {ref}: not a model folder (no config.json or adapter_config.json)")
    return str(path.resolve())


def model_folder(path: str) -> str:
    """`--evaluate PATH`, checked to be a model folder (a safetensors model or a LoRA adapter).

    Raises:
        UsageError: not a folder, or a folder without a model's config.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise UsageError(f"--evaluate {path}: not 'target', 'oracle' or a model folder")
    if not ((folder / "config.json").is_file() or (folder / "adapter_config.json").is_file()):
        raise UsageError(f"--evaluate {path}: not a model folder (no config.json or adapter_config.json)")
    return path


def load_model(prepared: Prepared, name_or_path: str, dtype: str = "fp32"):
    """(model, tokenizer) of a prepared model (`target`, `oracle-<split>`) or a model folder, in the
    benchmark's prompt format."""
    from ofmu_ray.models.factory import load_causal_lm, load_tokenizer

    where = name_or_path if Path(name_or_path).is_dir() else prepared.model_dir(name_or_path)
    return load_causal_lm(where, dtype), load_tokenizer(where, prepared.prompt)


def progress_bar(total: int, progress: bool):
    """The one bar a prepare shows on stderr (every 15 s when stderr is not a terminal)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="prepare", unit="step", disable=not progress, file=sys.stderr,
                mininterval=1 if sys.stderr.isatty() else 15)


def train_job(out: Path, tokenizer_dir: Path | str, rows: list[dict], cfg: FinetuneConfig,
              model: TinyLlamaSpec | Path | str, threads: int = 1, lora: LoraSpec | None = None, steps=None) -> None:
    """Trains one model of a prepare (in a process of its own under `in_processes`) and saves it
    with its tokenizer to `out`, asked in the tokenizer's own prompt format (`prompt.resolve_prompt`).

    Args:
        model: an embedded model's shape (a `config.MODELS` entry: built from scratch, seeded by
            `cfg.seed`; the shape itself, since a job's process sees only the registry as imported)
            or a model folder (or hub id) to fine-tune further.
        threads: torch threads: one per process when several train at once, as these small matmuls
            gain little from a second thread and the processes would contend for the cores.
        lora: fine-tune adapters only, then save them merged into the weights (a plain model folder).
        steps: a queue that gets one item per optimizer step (the parent's progress bar; `in_processes`
            passes it last, so callers give every argument before it).
    """
    import torch

    from ofmu_ray.models.factory import build_tiny_llama, load_causal_lm, load_tokenizer
    from ofmu_ray.models.lora import add_lora
    from ofmu_ray.train.finetune import finetune

    torch.set_num_threads(threads)
    tokenizer = load_tokenizer(tokenizer_dir)
    net = (build_tiny_llama(model, tokenizer, seed=cfg.seed) if isinstance(model, TinyLlamaSpec)
           else load_causal_lm(model))
    if lora is not None:
        torch.manual_seed(cfg.seed)  # the adapters' initialisation
        net = add_lora(net, lora)
    finetune(net, tokenizer, rows, cfg, on_step=(lambda loss: steps.put(1)) if steps is not None else None)
    if lora is not None:
        net = net.merge_and_unload()
    net.save_pretrained(out)
    tokenizer.save_pretrained(out)


# Jobs' processes are forked from one server process that imported these once and never ran torch:
# a pool of two took 0.05-0.07 s to start after the first, against 3.9-4.8 s spawned (each process
# importing them again). Plain fork would copy the parent's torch threads and locks. The server
# stays until the parent exits, 0.4 GB resident (a sweep that prepared first keeps it).
_START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
_PRELOAD = ("torch", "transformers", "ofmu_ray.models.factory", "ofmu_ray.metrics.formulas")


def in_processes(fn, jobs: list[tuple], on_step=None, at_once: int | None = None) -> list:
    """`fn(*job)` for every job, each in a process of its own (`_START_METHOD`), `at_once` at a time
    (default: as many as there are cores); with `on_step`, each job gets a queue as its last argument
    and `on_step()` is called for every item it puts there (progress). Returns the results in the
    jobs' order.

    More jobs than cores at once pays when they are of a size: three one-thread jobs on two cores
    share them and end together after 1.5 job-times, where two at a time take 2. Jobs of unequal
    sizes, longest first, do better as many as the cores.
    """
    import os
    import queue
    from concurrent.futures import ProcessPoolExecutor, wait

    context = multiprocessing.get_context(_START_METHOD)
    if _START_METHOD == "forkserver":
        context.set_forkserver_preload(list(_PRELOAD))  # read when the server starts, at first use
    workers = min(len(jobs), at_once or os.cpu_count() or 1)
    with context.Manager() as manager, ProcessPoolExecutor(workers, mp_context=context) as pool:
        steps = manager.Queue()
        futures = [pool.submit(fn, *job, *((steps,) if on_step else ())) for job in jobs]
        while wait(futures, timeout=0.5).not_done or not steps.empty():
            while on_step:
                try:
                    steps.get_nowait()
                except queue.Empty:
                    break
                on_step()
        return [f.result() for f in futures]
