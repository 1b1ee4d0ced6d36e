"""Stored text made fit for XML and iCalendar, whatever the store holds.

XML 1.0 cannot carry C0 controls (but tab and newlines), lone surrogates or the
non-characters U+FFFE and U+FFFF; iCalendar readers choke on the same. Each
such character becomes U+FFFD (the replacement character), so a feed page that
holds one still answers, and says where the text was.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
UNFIT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]"
                   "|[\U0001fffe\U0001ffff\U0002fffe\U0002ffff\U0003fffe\U0003ffff\U0004fffe\U0004ffff"
                   "\U0005fffe\U0005ffff\U0006fffe\U0006ffff\U0007fffe\U0007ffff\U0008fffe\U0008ffff"
                   "\U0009fffe\U0009ffff\U000afffe\U000affff\U000bfffe\U000bffff\U000cfffe\U000cffff"
                   "\U000dfffe\U000dffff\U000efffe\U000effff\U000ffffe\U000fffff\U0010fffe\U0010ffff]")


def fit(text: str) -> str:
    """`text` with every character XML 1.0 or iCalendar cannot carry replaced by U+FFFD."""
    return UNFIT.sub(REPLACEMENT, text)
