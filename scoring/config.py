"""The scoring configuration: weights, target industries, grade cut-offs, write-back fields.

The shipped `scoring/scoring.yml` is the default; `DATA_DIR/scoring.yml` replaces it.
`model_version` is derived from the file's content, so any edit gives a new version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from warehouse.user_yaml import UserYamlError, load_yaml_text, read_settings_text

DEFAULT_CONFIG = Path(__file__).with_name("scoring.yml")
SIGNALS = (
    "target_industry",
    "account_size",
    "deal_amount",
    "repeat_customer",
    "industry_trend",
    "account_history",
    "recency",
    "frequency",
    "engagement_trend",
    "stage_progress",
    "time_in_stage",
    "regressions",
    "close_date_pushes",
)


class ScoringConfigError(ValueError):
    """The scoring YAML cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class ScoringConfig:
    mode: str
    weights: dict[str, float]
    target_industries: tuple[str, ...]
    grade_cutoffs: dict[str, float]
    trend_threshold: float
    horizon_days: int
    min_won: int
    min_lost: int
    writeback: dict[str, dict[str, str]]
    content_hash: str
    path: Path
    # The gate before write-back: grades are written for the CRM only when their backtest
    # is better than chance (AUC >= min_auc on >= min_closed_deals), unless "always".
    min_auc: float = 0.55
    min_closed_deals: int = 100
    writeback_gate: str = "auto"

    @property
    def model_version(self) -> str:
        return f"rules-{self.content_hash}"

    def writeback_fields(self, source_system: str, chinese: bool = True) -> dict[str, str]:
        """The source's own field names, else the default in the source's language."""
        if source_system in self.writeback:
            return self.writeback[source_system]
        if chinese or "default_en" not in self.writeback:
            return self.writeback["default"]
        return self.writeback["default_en"]


def config_path(data_dir: Path | None) -> Path:
    if data_dir is not None and (data_dir / "scoring.yml").exists():
        return data_dir / "scoring.yml"
    return DEFAULT_CONFIG


def load_config(data_dir: Path | None = None) -> ScoringConfig:
    path = config_path(data_dir)
    try:
        text = read_settings_text(path)
        data = load_yaml_text(text, str(path)) or {}
    except UserYamlError as exc:
        raise ScoringConfigError(str(exc)) from exc
    weights = data.get("weights") or {}
    unknown = sorted(set(weights) - set(SIGNALS))
    if unknown:
        raise ScoringConfigError(
            f"{path}: weights.{unknown[0]} is not a signal (known: {', '.join(SIGNALS)})"
        )
    for name, value in weights.items():
        if not isinstance(value, int | float) or value < 0:
            raise ScoringConfigError(f"{path}: weights.{name} must be a number >= 0")
    grades = data.get("grades") or {"A": 65, "B": 52, "C": 40}
    if not grades.get("A", 0) >= grades.get("B", 0) >= grades.get("C", 0):
        raise ScoringConfigError(f"{path}: grades must satisfy A >= B >= C")
    mode = data.get("mode", "rules")
    if mode not in ("rules", "learned"):
        raise ScoringConfigError(f"{path}: mode must be 'rules' or 'learned', not {mode!r}")
    learned = data.get("learned") or {}
    gate = data.get("gate") or {}
    writeback_gate = str(data.get("writeback_gate", "auto"))
    if writeback_gate not in ("auto", "always"):
        raise ScoringConfigError(
            f"{path}: writeback_gate must be 'auto' or 'always', not {writeback_gate!r}"
        )
    default = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))["writeback"]
    return ScoringConfig(
        mode=mode,
        weights={s: float(weights.get(s, 0)) for s in SIGNALS},
        target_industries=tuple(data.get("target_industries") or ()),
        grade_cutoffs={k: float(grades[k]) for k in ("A", "B", "C")},
        trend_threshold=float(data.get("trend_threshold", 5)),
        horizon_days=int((data.get("calibration") or {}).get("horizon_days", 30)),
        min_won=int(learned.get("min_won", 200)),
        min_lost=int(learned.get("min_lost", 200)),
        writeback={**default, **(data.get("writeback") or {})},
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest()[:10],
        path=path,
        min_auc=float(gate.get("min_auc", 0.55)),
        min_closed_deals=int(gate.get("min_closed_deals", 100)),
        writeback_gate=writeback_gate,
    )
