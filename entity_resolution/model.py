"""The Splink (Fellegi-Sunter) settings of one run: its comparisons and chosen blocking rules."""

from __future__ import annotations

from splink import SettingsCreator

from c360.entity_resolution.blocking import Rule
from c360.entity_resolution.comparisons import Compared


def settings(compared: list[Compared], rules: list[Rule], link_type: str) -> SettingsCreator:
    """Splink settings: unique_id + source_dataset, the comparisons, the blocking rules that generate predictions."""
    return SettingsCreator(
        link_type=link_type, unique_id_column_name="unique_id",
        comparisons=[c.comparison for c in compared],
        blocking_rules_to_generate_predictions=[r.creator() for r in rules],
        retain_intermediate_calculation_columns=True, retain_matching_columns=True)
