"""Password policy (密码策略) beyond Django's validators, following OWASP ASVS 4.0 level 2 (V2.1).

``settings.AUTH_PASSWORD_VALIDATORS`` combines Django's similarity, minimum-length (12) and
common-password (its 20,000-entry list) validators with the two below. There are no composition
rules (no "must contain a digit and a symbol"): length and refusing predictable passwords is what
ASVS and NIST SP 800-63B ask for. The rules apply when a password is *set*; an existing password
keeps working for login whatever it looks like.

* :class:`MaximumLengthValidator` — long passphrases are welcome (any Unicode, spaces included),
  up to 256 characters; the limit only stops absurd inputs from costing hashing time.
* :class:`PredictablePasswordValidator` — refuses what length alone lets through: a character or
  group repeated (``aaaaaaaaaaaa``, ``abcabcabcabc``), runs along the alphabet, the digits or the
  keyboard (``1qaz2wsx3edc``, ``qwertyuiop123``), and a common password or a common Chinese
  pinyin password (``woaini``, ``zhangwei`` … shipped in ``data/common-passwords-zh.txt``) merely
  decorated with digits and symbols (``password2026!``, ``woaini1314520``).
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from functools import cache
from pathlib import Path

from django.contrib.auth.password_validation import CommonPasswordValidator
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

__all__ = ["MaximumLengthValidator", "PredictablePasswordValidator", "policy_summary"]

DATA_DIR = Path(__file__).resolve().parent / "data"

# Sequences a person runs along: the alphabet, the digits and the rows and columns of a keyboard.
_SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "!qaz@wsx#edc$rfv%tgb^yhn&ujm*ik,(ol.)p;/",
    "qazwsxedcrfvtgbyhnujmikolp",
    "!@#$%^&*()_+",
    "1q2w3e4r5t6y7u8i9o0p",
)
_MIN_RUN = 3
_DECORATION = re.compile(r"^[\W\d_]*(.*?)[\W\d_]*$", re.UNICODE)


@cache
def _runs() -> frozenset[str]:
    """Every substring of at least _MIN_RUN characters of the sequences, forwards and backwards."""
    found = set()
    for seq in _SEQUENCES:
        for text in (seq, seq[::-1]):
            for i in range(len(text)):
                for j in range(i + _MIN_RUN, len(text) + 1):
                    found.add(text[i:j])
    return frozenset(found)


@cache
def _common_words() -> frozenset[str]:
    """Django's common-password list together with dgov's list of common Chinese (pinyin) passwords."""
    words = set(CommonPasswordValidator().passwords)
    path = DATA_DIR / "common-passwords-zh.txt"
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        words.update(line.strip().lower() for line in fh if line.strip() and not line.startswith("#"))
    return frozenset(words)


def _is_run_sequence(text: str) -> bool:
    """True when ``text`` is made entirely of keyboard/alphabet/digit runs of 3+ characters."""
    runs = _runs()
    n = len(text)
    reachable = [False] * (n + 1)
    reachable[0] = True
    for i in range(n):
        if not reachable[i]:
            continue
        for j in range(i + _MIN_RUN, min(n, i + 40) + 1):
            if text[i:j] in runs:
                reachable[j] = True
    return reachable[n]


def _is_repetition(text: str) -> bool:
    """True when ``text`` is one group of up to 4 characters repeated."""
    for size in range(1, 5):
        if len(text) % size == 0 and len(text) // size >= 3 and text == text[:size] * (len(text) // size):
            return True
    return False


def policy_summary(min_length: int = 12, max_length: int = 256) -> str:
    """The policy in one sentence, for forms and pages."""
    return _(
        "密码至少 %(min)d 个字符、最多 %(max)d 个字符，可使用任意文字、空格和符号，推荐使用由几个词组成的长密码；"
        "常见密码、简单重复或键盘顺序的密码不能使用。"
    ) % {"min": min_length, "max": max_length}


class MaximumLengthValidator:
    """Refuse passwords longer than ``max_length`` characters (default 256; ASVS asks to allow 128+)."""

    def __init__(self, max_length: int = 256):
        self.max_length = max_length

    def validate(self, password, user=None):
        """Raise ValidationError when the password is too long."""
        if len(password) > self.max_length:
            raise ValidationError(
                _("密码过长，最多 %(max)d 个字符。") % {"max": self.max_length},
                code="password_too_long",
                params={"max_length": self.max_length},
            )

    def get_help_text(self):
        """Help text shown under the password field."""
        return _("密码最多 %(max)d 个字符，可以使用较长的短语。") % {"max": self.max_length}


class PredictablePasswordValidator:
    """Refuse repetitions, keyboard/alphabet runs and decorated common passwords (see module docstring)."""

    def validate(self, password, user=None):
        """Raise ValidationError when the password is predictable."""
        text = unicodedata.normalize("NFKC", password).lower()
        compact = "".join(text.split())
        if not compact:
            return
        if _is_repetition(compact) or _is_run_sequence(compact):
            raise ValidationError(_("密码是简单重复或键盘、字母、数字顺序，容易被猜到。"), code="password_predictable")
        core = _DECORATION.match(compact).group(1)
        if core and (core in _common_words() or _is_repetition(core) or _is_run_sequence(core)):
            raise ValidationError(_("密码只是在常见密码前后加了数字或符号，容易被猜到。"), code="password_too_common")

    def get_help_text(self):
        """Help text shown under the password field."""
        return _("不能使用简单重复、键盘顺序或常见密码加数字的组合。")
