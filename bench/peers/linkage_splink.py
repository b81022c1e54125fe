"""The Splink contender of ``bench/bench_linkage.py`` (Splink 4 API, DuckDB backend).

Run by the bench in ``bench/.venv-linkage-peers``: ``python linkage_splink.py SPEC.json``. It
prepares both tables with :mod:`linkage_prep` (the same input recordlinkage gets), trains and
predicts as Splink's documentation recommends, writes the scored pairs (``left_id, right_id,
score, accepted``) and prints one JSON line with timings and settings.

Settings (stated in docs/benchmarks.md), as Splink's documentation recommends them:

* link type ``link_only``; blocking for prediction on the ID number, the phone, name pinyin + birth
  year, name pinyin + birth month-day, birth date + family pinyin, birth date + given pinyin (dgov's
  default rules, without the optional name-pinyin-alone rule dgov adds while it stays small:
  adding it left Splink's F1 unchanged and lowered recordlinkage's);
* comparisons: family name (exact with term frequencies · same pinyin · else), given name (exact
  with term frequencies · same pinyin · Levenshtein ≤ 1 · else), ``DateOfBirthComparison`` (exact ·
  Damerau–Levenshtein ≤ 1 · within a month · a year · ten years), ID number and phone
  (Damerau–Levenshtein at 1 and 2), sex (exact), address (exact · Jaccard ≥ 0.9 · ≥ 0.7);
* λ from deterministic rules (equal ID number; equal phone and birth date) with recall 0.7;
* u by random sampling (``max_pairs`` from the spec: default 1e6, Splink's own default; 1e7, which
  its documentation suggests for real work, gave the same F1 in four times the time; seed fixed);
* m by EM in two sessions, blocked on the birth date and on the name pinyin;
* accepted: match probability ≥ the spec's threshold (0.9, dgov's default).
"""

from __future__ import annotations

import logging
import sys

import linkage_prep
import splink
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on


def main(spec_path: str) -> None:
    """Run Splink as the spec says and print the result line."""
    logging.getLogger("splink").setLevel(logging.WARNING)
    spec = linkage_prep.load_spec(spec_path)
    clock = linkage_prep.Clock()
    left, right = (linkage_prep.prepare_table(t) for t in spec["tables"])
    clock.lap("prepare")

    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        blocking_rules_to_generate_predictions=[
            block_on("id_number"),
            block_on("phone"),
            block_on("name_py", "birth_year"),
            block_on("name_py", "birth_md"),
            block_on("birth", "family_py"),
            block_on("birth", "given_py"),
        ],
        comparisons=[
            cl.CustomComparison(
                output_column_name="family",
                comparison_levels=[
                    cll.NullLevel("family"),
                    cll.ExactMatchLevel("family", term_frequency_adjustments=True),
                    cll.ExactMatchLevel("family_py"),
                    cll.ElseLevel(),
                ],
            ),
            cl.CustomComparison(
                output_column_name="given",
                comparison_levels=[
                    cll.NullLevel("given"),
                    cll.ExactMatchLevel("given", term_frequency_adjustments=True),
                    cll.ExactMatchLevel("given_py"),
                    cll.LevenshteinLevel("given", 1),
                    cll.ElseLevel(),
                ],
            ),
            cl.DateOfBirthComparison("birth", input_is_string=True),
            cl.DamerauLevenshteinAtThresholds("id_number", [1, 2]),
            cl.ExactMatch("sex"),
            cl.DamerauLevenshteinAtThresholds("phone", [1, 2]),
            cl.JaccardAtThresholds("address", [0.9, 0.7]),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    db_api = DuckDBAPI()
    aliases = [f"t_{t['name']}" for t in spec["tables"]]
    linker = Linker([left, right], settings, db_api=db_api, input_table_aliases=aliases)
    clock.lap("setup")
    linker.training.estimate_probability_two_random_records_match(
        [block_on("id_number"), block_on("phone", "birth")], recall=0.7
    )
    clock.lap("lambda")
    max_pairs = float(spec.get("u_max_pairs", 1e6))
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=1)
    clock.lap("u")
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("name_py"))
    clock.lap("em")
    floor = float(spec.get("floor", 0.01))
    threshold = float(spec["threshold"])
    predictions = linker.inference.predict(threshold_match_probability=floor)
    clock.lap("predict")
    pairs_path = spec["pairs"]
    sql = f"""
        COPY (SELECT CASE WHEN source_dataset_l = '{aliases[0]}' THEN unique_id_l ELSE unique_id_r END AS left_id,
                     CASE WHEN source_dataset_l = '{aliases[0]}' THEN unique_id_r ELSE unique_id_l END AS right_id,
                     match_probability AS score, match_probability >= {threshold!r} AS accepted
              FROM {predictions.physical_name})
        TO '{pairs_path}' (HEADER, DELIMITER ',')
    """
    db_api._execute_sql_against_backend(sql)
    clock.lap("write")
    linkage_prep.emit(
        {
            "contender": "splink",
            "version": splink.__version__,
            "seconds": clock.total,
            "phases": clock.phases,
            "pairs": pairs_path,
            "settings": {"threshold": threshold, "u_max_pairs": max_pairs, "em_blocking": ["birth", "name_py"]},
        }
    )


if __name__ == "__main__":
    main(sys.argv[1])
