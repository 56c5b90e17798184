"""The flow `export-training-table`: `mfs export` as a deployment can run it (nightly after
the extraction, say). The work is `analysis/export.py`; this only names it and reports."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from mfs.analysis.export import export
from mfs.flows import report
from mfs.flows.settings import flow_store


@flow(name="export-training-table", flow_run_name="export {library} to {out}")
def export_training_table(library: str, features: list[str], out: str, split: str = "auto",
                          folds: int = 5, seed: int = 0, store: str | None = None) -> dict:
    """Write the training table of `features` (selections such as `fma518` or
    `musicnn-mtt:tags_mean`) over `library` to `out` (.parquet, .csv or .npz)."""
    summary = export(flow_store(store), library, features, split, out, folds, seed)
    line = (f"exported {summary.rows} tracks x {summary.feature_columns} features "
            f"(split: {summary.split}) to {summary.path}")
    report.log(line)
    create_markdown_artifact(f"{line}\n\ndropped: `{summary.dropped}`",
                             key=report.artifact_key("export", library))
    return {"path": str(summary.path), "rows": summary.rows,
            "feature_columns": summary.feature_columns, "split": summary.split}
