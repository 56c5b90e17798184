"""Which tracks of a library a benchmark or export uses, and what each is labelled.

A `Population` is the label (`genre_top`, the tracks' `genre` column, or `levelN`: the
track's one genre at level N of the dataset's genre tree) and the filters, applied before
any split in this order: `subset` (FMA's `set.subset`, cumulative: medium holds small) →
`genres` / `exclude_genres` (on the label) → `where` (one read-only DuckDB condition on
the `tracks` view) → then the tracks without a label or a selected feature go → and last
`min_per_genre`, counted on what remains, over every split. A `Funnel` records how many
tracks each step dropped and why each genre went, which the leaderboard keeps with the row
and the report shows.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

    from mfs.store import Store

SUBSETS = ("small", "medium", "large")  # FMA's order: each subset holds the ones before it
DEFAULT_LABEL = "genre_top"
_LEVEL = re.compile(r"^level([1-9]\d*)$")


@dataclass(frozen=True)
class Population:
    """The label and filters of a benchmark or export (the defaults: every track, labelled
    with its `genre`)."""

    label: str = DEFAULT_LABEL
    subset: str | None = None
    genres: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    where: str | None = None
    min_per_genre: int | None = None

    def __post_init__(self) -> None:
        # Lists from the Python API become tuples, so configs stay hashable and comparable.
        object.__setattr__(self, "genres", tuple(self.genres))
        object.__setattr__(self, "exclude_genres", tuple(self.exclude_genres))
        if self.label != DEFAULT_LABEL and not _LEVEL.match(self.label):
            raise ValueError(f"--label {self.label!r}: use genre_top or levelN (the track's "
                             "genre at level N of the genre tree, e.g. level2)")
        if self.subset is not None and self.subset not in SUBSETS:
            raise ValueError(f"--subset {self.subset!r} is not one of {', '.join(SUBSETS)}")
        if both := sorted(set(self.genres) & set(self.exclude_genres)):
            raise ValueError(f"genre {both[0]!r} is both in --genres and --exclude-genres")
        if self.min_per_genre is not None and self.min_per_genre < 1:
            raise ValueError(f"--min-per-genre must be at least 1, got {self.min_per_genre}")
        if self.where is not None:
            check_where(self.where)

    @property
    def level(self) -> int | None:
        match = _LEVEL.match(self.label)
        return int(match[1]) if match else None

    @property
    def filtered(self) -> bool:
        return any((self.subset, self.genres, self.exclude_genres, self.where,
                    self.min_per_genre))

    def arguments(self) -> list[str]:
        """The command-line options that give this population (none for the default)."""
        args = [] if self.label == DEFAULT_LABEL else ["--label", self.label]
        if self.subset:
            args += ["--subset", self.subset]
        if self.genres:
            args += ["--genres", ",".join(self.genres)]
        if self.exclude_genres:
            args += ["--exclude-genres", ",".join(self.exclude_genres)]
        if self.where:
            args += ["--where", self.where]
        if self.min_per_genre:
            args += ["--min-per-genre", str(self.min_per_genre)]
        return args

    def settings(self) -> dict:
        """The non-default settings, as recorded with a result."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
                if v not in (None, ()) and not (k == "label" and v == DEFAULT_LABEL)}


def parse_genres(text: str | None) -> tuple[str, ...]:
    """`--genres Rock,Hip-Hop` → ("Rock", "Hip-Hop"). FMA's genre titles hold no commas."""
    return tuple(dict.fromkeys(g.strip() for g in (text or "").split(",") if g.strip()))


def check_where(condition: str) -> None:
    """Refuse, in one line, anything but one boolean expression over the tracks' columns:
    no second statement, no subquery (which could read files), no ORDER/LIMIT/UNION tail.
    DuckDB's own parser decides; the condition also runs on a connection that reads only
    the store's files (`mfs.read_only_sql`)."""
    import duckdb

    text = condition.strip()
    refused = f"--where {condition!r}: "
    if not text:
        raise ValueError(refused + "empty; give a condition on tracks, e.g. \"subset = 'small'\"")
    try:
        result = duckdb.connect().execute(
            "SELECT json_serialize_sql($q)", {"q": f"SELECT * FROM tracks WHERE {text}"}
        ).fetchone()[0]
    except duckdb.Error as error:
        raise ValueError(refused + " ".join(str(error).split())) from None
    tree = json.loads(result)
    if tree.get("error"):
        raise ValueError(refused + "not one SQL condition (" +
                         " ".join(str(tree.get("error_message", "")).split()) + ")")
    statements = tree["statements"]
    node = statements[0]["node"] if len(statements) == 1 else {}
    plain = (node.get("type") == "SELECT_NODE" and not node.get("modifiers")
             and not node.get("cte_map", {}).get("map") and not node.get("group_expressions")
             and node.get("having") is None and node.get("qualify") is None
             and node.get("sample") is None
             and node.get("from_table", {}).get("table_name") == "tracks")
    if not plain:
        raise ValueError(refused + "must be one condition on the tracks' columns, with no "
                         "other statement, ORDER BY, LIMIT or set operation")
    if _has_subquery(node.get("where_clause")):
        raise ValueError(refused + "subqueries are refused: a condition reads only the "
                         "tracks' own columns")


def _has_subquery(tree) -> bool:
    if isinstance(tree, dict):
        if tree.get("class") == "SUBQUERY" or tree.get("type") == "SUBQUERY":
            return True
        return any(_has_subquery(value) for value in tree.values())
    if isinstance(tree, list):
        return any(_has_subquery(value) for value in tree)
    return False


def where_track_ids(store: Store, library: str, condition: str) -> set[str]:
    """The library's track ids for which `condition` holds, on a read-only connection."""
    import duckdb

    from mfs.read_only_sql import connect_read_only

    check_where(condition)
    con = connect_read_only(store)
    try:
        rows = con.execute(f"SELECT track_id FROM tracks WHERE library = $library "
                           f"AND ({condition.strip()})", {"library": library}).fetchall()
    except duckdb.Error as error:
        message = " ".join(str(error).split())
        raise ValueError(f"--where {condition!r} failed: {message}") from None
    finally:
        con.close()
    return {row[0] for row in rows}


def track_labels(tracks: pa.Table, population: Population) -> np.ndarray:
    """Per track, its label (None when it has none): `genre`, or its one genre at the
    population's level (None when it has none or several there)."""
    if population.level is None:
        return tracks.column("genre").to_numpy(zero_copy_only=False)
    genres = tracks.column("genres").to_pylist()
    levels = tracks.column("genre_levels").to_pylist()
    if any(g and lv is None for g, lv in zip(genres, levels, strict=True)):
        raise ValueError(f"--label {population.label}: this library was scanned before mfs "
                         "kept genre levels; rescan it (mfs scan --name LIBRARY)")
    labels = np.full(len(genres), None, dtype=object)
    for i, (names, depth) in enumerate(zip(genres, levels, strict=True)):
        there = {g for g, lv in zip(names or [], depth or [], strict=True)
                 if lv == population.level}
        if len(there) == 1:
            labels[i] = there.pop()
    return labels


def several_at_level(tracks: pa.Table, population: Population) -> np.ndarray:
    """Which tracks have more than one genre at the population's level (all False for
    `genre_top`)."""
    if population.level is None:
        return np.zeros(tracks.num_rows, dtype=bool)
    return np.asarray([len({g for g, lv in zip(names or [], depth or [], strict=True)
                            if lv == population.level}) > 1
                       for names, depth in zip(tracks.column("genres").to_pylist(),
                                               tracks.column("genre_levels").to_pylist(),
                                               strict=True)], dtype=bool)


@dataclass
class Funnel:
    """Tracks left after each step, and the step at which each genre lost its last track."""

    labels: np.ndarray
    splits: np.ndarray
    keep: np.ndarray = field(init=False)
    steps: list[dict] = field(default_factory=list)
    genres_dropped: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keep = np.ones(len(self.labels), dtype=bool)

    def drop(self, step: str, keep: np.ndarray) -> None:
        """Keep only the rows also in `keep`, recording what `step` removed."""
        before = self._genre_counts()
        removed = int((self.keep & ~keep).sum())
        self.keep &= keep
        for step_record in self.steps:
            if step_record["step"] == step:  # the same requirement met again (late NULLs)
                step_record["dropped"] += removed
                step_record["left"] = int(self.keep.sum())
                break
        else:
            self.steps.append({"step": step, "dropped": removed, "left": int(self.keep.sum())})
        after = self._genre_counts()
        for genre, count in before.items():
            if genre not in after:
                self.genres_dropped.setdefault(genre, f"{step} ({count} tracks)")

    def _genre_counts(self) -> dict[str, int]:
        kept = self.labels[self.keep]
        values, counts = np.unique(kept[kept != None].astype(str), return_counts=True)  # noqa: E711
        return dict(zip(values.tolist(), counts.tolist(), strict=True))

    def record(self, population: Population, library_tracks: int) -> dict:
        """What the leaderboard keeps in `population` and the report shows."""
        kept_labels, kept_splits = self.labels[self.keep], self.splits[self.keep]
        per_genre: dict[str, dict[str, int]] = {}
        for genre, split in zip(kept_labels, kept_splits, strict=True):
            if genre is None:
                continue
            counts = per_genre.setdefault(str(genre), {"tracks": 0})
            counts["tracks"] += 1
            key = str(split) if split is not None else "no split"
            counts[key] = counts.get(key, 0) + 1
        return {"label": population.label, "filters": population.settings(),
                "library_tracks": library_tracks, "steps": self.steps,
                "genres_dropped": self.genres_dropped,
                "tracks_per_genre": dict(sorted(per_genre.items(),
                                                key=lambda item: -item[1]["tracks"]))}


def narrow(funnel: Funnel, population: Population, tracks: pa.Table,
           where_ids: set[str] | None) -> None:
    """Apply the filters that come before the label and feature requirements."""
    if population.subset:
        allowed = SUBSETS[: SUBSETS.index(population.subset) + 1]
        subset = tracks.column("subset").to_numpy(zero_copy_only=False)
        if all(s is None for s in subset):
            raise ValueError(f"--subset {population.subset}: the library's tracks have no "
                             "subset (FMA's set.subset); leave the option out")
        funnel.drop(f"--subset {population.subset} (set.subset in {', '.join(allowed)})",
                    np.isin(subset.astype(str), allowed))
    labels = funnel.labels
    if population.genres or population.exclude_genres:
        _check_known(labels, population)
    if population.genres:
        funnel.drop(f"--genres {','.join(population.genres)}",
                    np.isin(labels.astype(str), population.genres) & (labels != None))  # noqa: E711
    if population.exclude_genres:
        funnel.drop(f"--exclude-genres {','.join(population.exclude_genres)}",
                    ~np.isin(labels.astype(str), population.exclude_genres)
                    | (labels == None))  # noqa: E711
    if population.where is not None:
        ids = tracks.column("track_id").to_numpy(zero_copy_only=False)
        funnel.drop(f"--where {population.where}", np.isin(ids, list(where_ids or ())))


def min_per_genre_keep(funnel: Funnel, minimum: int) -> np.ndarray:
    """Rows whose genre keeps at least `minimum` tracks among those still kept (all splits
    together); unlabelled rows go too, since they belong to no counted genre."""
    kept = funnel.labels[funnel.keep]
    values, counts = np.unique(kept[kept != None].astype(str), return_counts=True)  # noqa: E711
    enough = values[counts >= minimum]
    labels = funnel.labels
    return np.isin(labels.astype(str), enough) & (labels != None)  # noqa: E711


def check_genre_count(labels: np.ndarray, population: Population, library: str,
                      needed: str = "a benchmark needs at least two") -> None:
    """Refuse, in one line naming the filters, a population with fewer than two genres."""
    named = labels[labels != None].astype(str)  # noqa: E711
    values, counts = np.unique(named, return_counts=True)
    if len(values) >= 2:
        return
    found = ", ".join(f"{str(v)!r} ({int(c)} tracks)"
                      for v, c in zip(values, counts, strict=True))
    if not population.filtered and population.label == DEFAULT_LABEL:
        raise ValueError(f"library {library!r} has {len(values)} genre"
                         f"{'s' * (len(values) != 1)} among the tracks with these features"
                         f"{': ' + found if found else ''}; {needed}")
    options = " ".join(_quoted(population.arguments()))
    raise ValueError(f"library {library!r} with {options} leaves {len(values)} genre"
                     f"{'s' * (len(values) != 1)}{': ' + found if found else ''}; {needed}")


def _check_known(labels: np.ndarray, population: Population) -> None:
    """A genre named in --genres/--exclude-genres that no track carries is a typo."""
    present = set(labels[labels != None].astype(str))  # noqa: E711
    for option, names in (("--genres", population.genres),
                          ("--exclude-genres", population.exclude_genres)):
        unknown = [g for g in names if g not in present]
        if unknown:
            listed = ", ".join(sorted(present)[:40]) + (" …" if len(present) > 40 else "")
            raise ValueError(f"{option}: no track is labelled {unknown[0]!r} "
                             f"(--label {population.label}); labels: {listed}")


def _quoted(args: list[str]) -> list[str]:
    import shlex

    return [shlex.quote(a) for a in args]

