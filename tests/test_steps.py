"""The library steps under the model and evaluation assets, called without Dagster, and how the Dagster layer
turns their results and errors into its own."""

import pandas as pd
import pytest
from dagster import AssetCheckSeverity, Failure

from pipelines.assets.common import check_result, user_errors_fail
from pipelines.data import evaluation_steps, training_steps
from pipelines.data.steps import ArtifactFolders, CheckOutcome, StepError, markdown_table


def test_steps_read_the_trained_chain_without_dagster(trained):
    _profile, data, _result = trained
    folders = ArtifactFolders(data)
    train = training_steps.load_shards(folders, "train")
    assert train.frames.shape == (50, 96, 96, 3) and len(train.meta) == 50
    assert training_steps.split_size(folders, "val") == 15
    checkpoints = evaluation_steps.gan_checkpoints(folders, 128)
    # Every epoch's checkpoint, in order (test_model_assets may have resumed the shared chain to epoch 4).
    assert [epoch for epoch, _path in checkpoints] == list(range(1, len(checkpoints) + 1))
    assert len(checkpoints) >= 3
    assert all(path.is_file() for _epoch, path in checkpoints)
    for check in (
        training_steps.check_autoencoder,
        training_steps.check_embeddings,
        training_steps.check_gan,
    ):
        outcome = check(folders, 128)
        assert outcome.passed, (check.__name__, outcome.metadata)


def test_a_gan_without_checkpoints_is_a_step_error_that_says_how_to_train(tmp_path):
    folders = ArtifactFolders(tmp_path)
    assert evaluation_steps.gan_checkpoints(folders, 256) == []
    with pytest.raises(StepError, match=r"gan_256 has no saved checkpoint .*--select '\*gan_256'"):
        evaluation_steps.require_checkpoints(folders, 256)
    # The Dagster layer stops the step with the same message.
    with pytest.raises(Failure) as failure, user_errors_fail():
        evaluation_steps.require_checkpoints(folders, 256)
    assert failure.value.description.startswith("gan_256 has no saved checkpoint")


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(FileNotFoundError, match="materialize `shards` first"), user_errors_fail():
        training_steps.load_shards(ArtifactFolders(tmp_path), "train")


def test_a_check_outcome_becomes_an_asset_check_result():
    outcome = CheckOutcome(passed=False, metadata={"classes_short": ["dog"]}, description="dog: 3 of 9")
    result = check_result(outcome, severity=AssetCheckSeverity.WARN)
    assert result.passed is False and result.description == "dog: 3 of 9"
    assert result.severity == AssetCheckSeverity.WARN
    assert result.metadata["classes_short"].value == ["dog"]


def test_markdown_table_cuts_rows_and_escapes_bars():
    table = pd.DataFrame({"class": ["a|b", "c"], "count": [1, 2]})
    assert markdown_table(table) == "| class | count |\n|---|---|\n| a/b | 1 |\n| c | 2 |"
    assert markdown_table(table, max_rows=1).endswith("| ... 1 more |")
    assert markdown_table(table.iloc[:0]).startswith("| (none) |")
