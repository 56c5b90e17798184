"""What `mfs extract` / `mfs backfill` check and plan before any Prefect flow starts.

Everything here is plain and cheap (no Prefect import, no model load): the specs, the
extractors' availability, the library, the writer lock, the rescan and the anti-join.
So a mistake is one line before a temporary Prefect server is paid for, and a run with
nothing missing never starts one.
"""

from __future__ import annotations

from dataclasses import dataclass

from mfs.extractors import registry
from mfs.extractors.base import Extractor, ExtractorUnavailable
from mfs.flows.plan import MAX_ATTEMPTS, Plan, plan_missing
from mfs.flows.scan import run_scan
from mfs.store import Store
from mfs.store.lock import raise_if_locked

DEFAULT_EXTRACTORS = ("fma518", "musicnn-mtt")


def create_extractors(specs: list[str]) -> list[Extractor]:
    """One unloaded extractor per spec; a ValueError/KeyError/ExtractorUnavailable line
    names the first spec at fault."""
    if not specs:
        raise ValueError("no extractor given: pass --extractor NAME (see `mfs extractors`)")
    extractors = [registry.create_from_spec(spec) for spec in specs]
    for extractor in extractors:
        if reason := extractor.unavailable_reason():
            raise ExtractorUnavailable(f"extractor {extractor.name}: {reason}")
    return extractors


@dataclass
class Prepared:
    """The checked extractors (by spec), what each is missing, and the rescan's summary."""

    extractors: dict[str, Extractor]
    plans: dict[str, Plan]
    scan: dict | None

    @property
    def missing(self) -> int:
        return sum(len(plan.todo) for plan in self.plans.values())

    def nothing_done(self) -> dict:
        """The summary a run that extracts nothing returns (the flow's result shape)."""
        counts = {spec: {"planned": 0, "ok": 0, "failed": 0, "skipped": plan.skipped,
                         "config_hash": self.extractors[spec].config_hash()}
                  for spec, plan in self.plans.items()}
        return {"scan": self.scan, "extractors": counts}


def prepare_extract(store: Store, library: str | None, specs: list[str],
                    rescan: bool = False, max_attempts: int = MAX_ATTEMPTS) -> Prepared:
    """Check everything a run needs, rescan `library` if asked, and plan what is missing.

    `library=None` means every library (backfill). Raises one-line errors for a bad spec,
    an extractor that cannot run here, an unknown library or a store another writer holds.
    """
    specs = list(dict.fromkeys(specs))  # `--extractor a --extractor a` runs `a` once
    extractors = dict(zip(specs, create_extractors(specs), strict=True))
    if library is not None:
        store.library_config(library)  # an unknown library: what to scan, in one line
    raise_if_locked(store.root)
    scan = run_scan(store, library) if rescan and library is not None else None
    plans = {spec: plan_missing(store, library, extractor, max_attempts)
             for spec, extractor in extractors.items()}
    return Prepared(extractors, plans, scan)


def check_device(extractors: list[Extractor], device: str) -> None:
    """Refuse, before any Prefect flow starts, a `--device` this machine lacks and a
    precision the device cannot run (float16 off CUDA), in one line. Called only when
    there is work: it imports torch, which a run with nothing to do never needs."""
    from mfs.extractors.device import pick_device
    from mfs.extractors.precision import resolve_precision

    chosen = pick_device(device)
    for extractor in extractors:
        requested = getattr(extractor.config, "precision", None)
        if requested is not None:
            try:
                resolve_precision(requested, chosen)
            except ValueError as error:
                raise ValueError(f"extractor {extractor.name}: {error}") from None

