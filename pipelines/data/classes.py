"""The five VEGAS classes the paper uses, and normalisation of the many spellings found in the wild."""

from __future__ import annotations

import re

# The authors' numbering (s2i_data): c001 Baby cry, c002 Dog, c003 Rail transport, c004 Fireworks,
# c005 Water flowing.
VEGAS_CLASSES: dict[str, str] = {
    "baby_cry": "Baby cry",
    "dog": "Dog",
    "rail_transport": "Rail transport",
    "fireworks": "Fireworks",
    "water_flowing": "Water flowing",
}

# The authors' class ids in s2i_data labels ("002..." = Dog); the audio-only batches store id - 1 (0..4).
AUTHORS_CLASS_IDS: dict[int, str] = {
    1: "baby_cry",
    2: "dog",
    3: "rail_transport",
    4: "fireworks",
    5: "water_flowing",
}

# Spellings seen in VEGAS copies and AudioSet label lists, after basic normalisation.
_ALIASES: dict[str, str] = {
    "baby_crying": "baby_cry",
    "baby_cry_infant_cry": "baby_cry",
    "crying_baby": "baby_cry",
    "dogs": "dog",
    "dog_barking": "dog",
    "rail": "rail_transport",
    "train": "rail_transport",
    "firework": "fireworks",
    "water_flow": "water_flowing",
    "flowing_water": "water_flowing",
}


def normalize_class_name(name: str) -> str:
    """'Baby cry', 'baby-crying', 'Baby_Cry' -> 'baby_cry'. Unknown names come back normalised only."""
    key = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    return _ALIASES.get(key, key)


# Held-out accuracy of the authors' informativity classifiers C1-C5, as the paper reports it (§5.3).
PAPER_CLASSIFIER_ACCURACY: dict[str, float] = {
    "baby_cry": 0.80,
    "dog": 0.80,
    "rail_transport": 0.84,
    "fireworks": 0.82,
    "water_flowing": 0.815,
}
