"""Word counting, kept in a package of its own to show imports relative to the job's root."""

import re
from collections import Counter

_WORD = re.compile(r"[a-z']+")


def load_stopwords(path: str) -> frozenset[str]:
    """One word per line; blank lines and lines starting with # are ignored."""
    with open(path, encoding='utf-8') as f:
        return frozenset(line.strip() for line in f if line.strip() and not line.startswith('#'))


def count_words(text: str, stopwords: frozenset[str], top: int) -> dict[str, int]:
    """The ``top`` most frequent words of ``text`` that are not stop words, most frequent first."""
    if top < 1:
        raise ValueError('top must be at least 1')
    words = (w for w in _WORD.findall(text.lower()) if w not in stopwords)
    return dict(Counter(words).most_common(top))
