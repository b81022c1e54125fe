"""Comparisons: for each role, ordered agreement levels as SQL over two prepared records ``l`` and ``r``.

A comparison maps a record pair to a level γ: ``-1`` when either side has no value (no evidence
either way), ``0`` for "different", and 1…k for increasingly close agreement, the highest being
exact equality. Each level gets an m- and a u-probability in training (:mod:`dgov.linkage.model`)
and so a match weight log2(m/u). The SQL runs in DuckDB over the columns that
:mod:`dgov.linkage.engine` prepares (``fam``, ``giv_py``, ``birth`` …), vectorized over all
candidate pairs at once.

The Chinese-aware levels are here: look-alike characters and traditional forms (``*_cn``
columns), homophones (equal toneless pinyin), fuzzy pinyin (模糊音), transposed or mistyped digits
(Damerau–Levenshtein distance 1 on dates, ID numbers and phones), swapped month and day, 15- vs
18-digit ID numbers (upgraded when prepared), addresses compared below the county.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Level:
    """One agreement level: its label (shown in outputs) and its SQL condition."""

    label: str
    sql: str


@dataclass(frozen=True)
class Comparison:
    """A role comparison: the prepared columns it needs and its levels, closest first.

    ``exact_columns`` name the columns whose plain equality is the top level (its u-probability is
    then computed exactly from value counts); ``tf_column`` names the column of per-value
    frequencies used for term-frequency adjustment of the top level. By default the comparison has
    no value (γ = -1) when any of ``columns`` is missing on either side; ``null_sql`` overrides that.
    """

    name: str
    role: str
    columns: tuple[str, ...]
    levels: tuple[Level, ...]
    exact_columns: tuple[str, ...] = ()
    tf_column: str | None = None
    else_label: str = "different"
    null_sql: str | None = None

    @property
    def top(self) -> int:
        """γ of the closest level (levels are numbered k … 1, "different" is 0)."""
        return len(self.levels)

    def labels(self) -> list[str]:
        """Level labels indexed by γ (0 = different)."""
        return [self.else_label, *(level.label for level in reversed(self.levels))]

    def gamma_sql(self) -> str:
        """``CASE`` expression giving γ for the pair ``l``, ``r``."""
        nulls = self.null_sql or " OR ".join(f"l.{c} IS NULL OR r.{c} IS NULL" for c in self.columns)
        parts = [f"WHEN {nulls} THEN -1"]
        for index, level in enumerate(self.levels):
            parts.append(f"WHEN {level.sql} THEN {self.top - index}")
        return "CAST(CASE " + " ".join(parts) + " ELSE 0 END AS TINYINT)"

    def tf_sql(self) -> str | None:
        """The value's frequency when the top level holds, else NULL (for term-frequency weights)."""
        if not self.tf_column:
            return None
        column = self.exact_columns[0]
        return f"CASE WHEN l.{column} = r.{column} THEN l.{self.tf_column} END"


def _one_edit(column: str, transpositions: bool = True) -> str:
    """At most one typo, insertion or deletion, and with ``transpositions`` one swap of neighbours.

    Edit distances are costly, so cheap tests decide most pairs: equal lengths use the Hamming
    distance (≤ 1: one typo; = 2: a transposition only if Damerau–Levenshtein says so); lengths
    that differ by one need one insertion, which leaves the first or the last ``(n - 2) // 2``
    characters (n the shorter length) equal. ``CASE`` evaluates the edit distance only on the pairs
    that get that far.
    """
    a, b = f"l.{column}", f"r.{column}"
    half = f"(least(length({a}), length({b})) - 2) // 2"
    swap = f"damerau_levenshtein({a}, {b}) <= 1" if transpositions else "FALSE"
    return (
        f"(CASE WHEN length({a}) = length({b}) THEN "
        f"(CASE WHEN hamming({a}, {b}) <= 1 THEN TRUE WHEN hamming({a}, {b}) = 2 THEN {swap} ELSE FALSE END) "
        f"WHEN abs(length({a}) - length({b})) > 1 THEN FALSE "
        f"WHEN left({a}, {half}) = left({b}, {half}) OR right({a}, {half}) = right({b}, {half}) "
        f"THEN levenshtein({a}, {b}) <= 1 ELSE FALSE END)"
    )


FAMILY_NAME = Comparison(
    name="family_name",
    role="name",
    columns=("fam",),
    levels=(
        Level("exact", "l.fam = r.fam"),
        Level("variant", "l.fam_cn = r.fam_cn OR l.fam_py = r.fam_py"),
    ),
    exact_columns=("fam",),
    tf_column="fam_tf",
)

GIVEN_NAME = Comparison(
    name="given_name",
    role="name",
    columns=("giv",),
    levels=(
        Level("exact", "l.giv = r.giv"),
        Level("lookalike", "l.giv_cn = r.giv_cn"),
        Level("homophone", "l.giv_py = r.giv_py"),
        Level("fuzzy_pinyin", "l.giv_fz = r.giv_fz"),
        Level("one_char", _one_edit("giv", transpositions=False)),
    ),
    exact_columns=("giv",),
    tf_column="giv_tf",
)

ORG_NAME = Comparison(
    name="name",
    role="name",
    columns=("oname",),
    levels=(
        Level("exact", "l.oname = r.oname"),
        Level("same_core", "l.ocore = r.ocore"),
        Level("variant", "l.ocn = r.ocn OR l.opy = r.opy"),
        Level("similar", "jaro_winkler_similarity(l.ocore, r.ocore) >= 0.92"),
        Level("alike", "jaro_winkler_similarity(l.ocore, r.ocore) >= 0.8"),
    ),
    exact_columns=("oname",),
    tf_column="oname_tf",
)

BIRTH_DATE = Comparison(
    name="birth_date",
    role="birth_date",
    columns=("birth",),
    levels=(
        Level("exact", "l.birth = r.birth"),
        Level(
            "transposed_or_typo",
            f"{_one_edit('birth')} OR (left(l.birth, 4) = left(r.birth, 4) "
            "AND substr(l.birth, 5, 2) = substr(r.birth, 7, 2) AND substr(l.birth, 7, 2) = substr(r.birth, 5, 2))",
        ),
        Level("same_year", "left(l.birth, 4) = left(r.birth, 4)"),
    ),
    exact_columns=("birth",),
)

IDENTIFIER = Comparison(
    name="identifier",
    role="identifier",
    columns=("ident",),
    levels=(
        Level("exact", "l.ident = r.ident"),
        Level("transposed_or_typo", f"left(l.ident, 17) = left(r.ident, 17) OR {_one_edit('ident')}"),
        Level("different_unverified", "NOT (l.ident_valid AND r.ident_valid)"),
    ),
    exact_columns=("ident",),
    else_label="different_valid",
)

SEX = Comparison(
    name="sex",
    role="sex",
    columns=("sex",),
    levels=(Level("same", "l.sex = r.sex"),),
    exact_columns=("sex",),
)

PHONE = Comparison(
    name="phone",
    role="phone",
    columns=("phone",),
    levels=(
        Level("exact", "l.phone = r.phone"),
        Level("transposed_or_typo", f"right(l.phone, 8) = right(r.phone, 8) OR {_one_edit('phone')}"),
    ),
    exact_columns=("phone",),
)

ADDRESS = Comparison(
    name="address",
    role="address",
    columns=("addr",),
    levels=(
        Level("exact", "l.addr = r.addr"),
        Level("same_below_county", "l.addr_detail = r.addr_detail"),
        Level("one_char", _one_edit("addr_detail", transpositions=False)),
        Level("similar", "jaro_winkler_similarity(l.addr_detail, r.addr_detail) >= 0.9"),
    ),
    exact_columns=("addr",),
)

# Address and phone together: members of one household share both, so treating the two as
# independent evidence (the product of their u) would link relatives. Compared jointly, the u of
# "same address and same phone" is the household rate that random pairs show.
CONTACT = Comparison(
    name="contact",
    role="contact",
    columns=("addr", "phone"),
    null_sql="(l.addr IS NULL OR r.addr IS NULL) AND (l.phone IS NULL OR r.phone IS NULL)",
    levels=(
        Level("address_and_phone", "l.addr_detail = r.addr_detail AND l.phone = r.phone"),
        Level("phone_address_unknown", "l.phone = r.phone AND (l.addr IS NULL OR r.addr IS NULL)"),
        Level("address_phone_unknown", "l.addr_detail = r.addr_detail AND (l.phone IS NULL OR r.phone IS NULL)"),
        Level("phone_only", "l.phone = r.phone"),
        Level("address_only", "l.addr_detail = r.addr_detail"),
        Level(
            "near",
            f"right(l.phone, 8) = right(r.phone, 8) OR {_one_edit('phone')} "
            f"OR {_one_edit('addr_detail', transpositions=False)}",
        ),
    ),
    exact_columns=("addr_detail", "phone"),
)

POSTCODE = Comparison(
    name="postcode",
    role="postcode",
    columns=("postcode",),
    levels=(
        Level("exact", "l.postcode = r.postcode"),
        Level("same_area", "left(l.postcode, 4) = left(r.postcode, 4)"),
    ),
    exact_columns=("postcode",),
)

CITY = Comparison(
    name="city",
    role="city",
    columns=("city",),
    levels=(Level("exact", "l.city = r.city"),),
    exact_columns=("city",),
)

TEXT = Comparison(
    name="text",
    role="text",
    columns=("txt",),
    levels=(
        Level("exact", "l.txt = r.txt"),
        Level("similar", "jaccard(l.txt, r.txt) >= 0.8"),
        Level("alike", "jaccard(l.txt, r.txt) >= 0.5"),
    ),
    exact_columns=("txt",),
)

PERSON_COMPARISONS = (
    FAMILY_NAME,
    GIVEN_NAME,
    BIRTH_DATE,
    IDENTIFIER,
    SEX,
    CONTACT,
    PHONE,
    ADDRESS,
    POSTCODE,
    CITY,
    TEXT,
)
ORGANIZATION_COMPARISONS = (ORG_NAME, IDENTIFIER, CONTACT, PHONE, ADDRESS, POSTCODE, CITY, TEXT)
# A joint comparison replaces the comparisons of its parts when all of them are available.
REPLACES = {"contact": ("phone", "address")}
