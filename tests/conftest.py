from pathlib import Path

import pytest

TINY_DEMO = """\
base: demo
workers: 2
source: {kind: demo, clips_per_class: 6}
splits: {train: 10, val: 3, test: 3}
shards: {samples_per_shard: 16}
"""


@pytest.fixture
def tiny_profile(tmp_path: Path) -> Path:
    """The demo profile at the smallest size the whole chain still runs on."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_DEMO)
    return path
