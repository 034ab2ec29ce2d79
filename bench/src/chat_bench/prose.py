"""Chat text for the benchmark's messages: varied like people's writing, the same on every run.

A phrase repeated to length ("chat message text chat message text...") deflates to 3% of
its size and made any compression look miraculous. These sentences draw words from a
vocabulary of a few hundred common ones with a Zipf-like skew, so gzip finds about what
it finds in real English (roughly 0.4-0.5 of the size on kilobytes, little on a line).
"""

from __future__ import annotations

import random

_VOCABULARY = """
the to and a of i it you that is in we for this on be with have not are was but so can
just do if at will my what they me all about like think know would there get one out up
now when as your time go there our from by see how more need work make some also should
could them here then today well because going want yes no thanks still back take right
good first last new call meeting team update release deploy build test tests branch
review merge issue bug fix report customer account password reset access shared folder
file files document draft plan budget numbers quarter week monday tuesday friday morning
afternoon tomorrow yesterday later soon before after again already maybe sure great
sounds looks happy sorry problem question answer idea change changes version server
client service database query page error logs alert dashboard metric latency memory disk
network cluster region backup restore schedule ticket sprint roadmap design spec notes
slides demo launch onboarding invoice contract vendor support escalate priority owner
deadline estimate scope risk blocked waiting done finished started moved updated shipped
checked confirmed agreed missed noticed found tried looked asked told sent shared wrote
read ran fixed broke pushed pulled approved rejected closed opened added removed renamed
small large quick slow late early busy free clear simple hard easy important urgent
"""
_WORDS = _VOCABULARY.split()
# Zipf-like: the word of rank n is drawn in proportion to 1/(n + 2), so the first ones are common.
_WEIGHTS = [1.0 / (rank + 2) for rank in range(len(_WORDS))]
_ENDINGS = [".", ".", ".", "?", "!", ","]


def prose(length: int, seed: int | str) -> str:
    """About ``length`` characters of sentences, cut to exactly ``length``; the same for the same seed."""
    rng = random.Random(str(seed))
    parts: list[str] = []
    size = 0
    while size < length:
        words = rng.choices(_WORDS, weights=_WEIGHTS, k=rng.randint(4, 16))
        if rng.random() < 0.2:  # ids, numbers and names appear in chat lines too
            words.insert(rng.randrange(len(words)), f"#{rng.randint(100, 99999)}")
        sentence = " ".join(words).capitalize() + rng.choice(_ENDINGS)
        parts.append(sentence)
        size += len(sentence) + 1
    return " ".join(parts)[:length]
